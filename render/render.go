// Package render writes costpipe's reports: one Table model, built once per
// report from analytics results (usage.go, latency.go, top.go, series.go,
// growth.go, forecast.go hold their column definitions), and one writer per
// format (table.go for people; json.go, csv.go and arrow.go for machines).
// `costpipe query`, the demo report, the alerts and any HTTP API render
// through it, so a field has one name and one encoding everywhere.
//
// Money stays exact in every machine format (decimal text in JSON and CSV,
// decimal128(38,12) in Arrow), and estimates of USD (forecasts) are
// written the same way, rounded to 10⁻¹² USD (OptUSD); an unknown value
// is null (JSON null, an empty CSV cell, an Arrow null, "-" in tables).
// CSV cells are defused against formula injection. Tables are aligned,
// numbers right-aligned with thousands separators, units in the headers,
// and lists of values drawn as sparklines.
//
// A Table is a plain value: build it, then hand it to any number of
// writers, from any goroutine, as long as nobody modifies it meanwhile.
package render

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// Format is an output format.
type Format string

// The formats.
const (
	FormatTable Format = "table" // aligned text for people
	FormatJSON  Format = "json"  // an array of objects
	FormatCSV   Format = "csv"   // a header and one line per row
	FormatArrow Format = "arrow" // an Arrow IPC stream of one record batch
)

// ParseFormat returns the format named s, or an error naming the valid
// ones.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatTable, FormatJSON, FormatCSV, FormatArrow:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q: want table, json, csv or arrow", s)
}

// Write writes t to w in format f.
func Write(w io.Writer, f Format, t *Table) error {
	switch f {
	case FormatTable:
		return WriteTable(w, t)
	case FormatJSON:
		return WriteJSON(w, t)
	case FormatCSV:
		return WriteCSV(w, t)
	case FormatArrow:
		return WriteArrow(w, t)
	}
	return fmt.Errorf("unknown format %q: want table, json, csv or arrow", f)
}

// Table is one report: columns, and a value per column in every row.
// Title, Empty, Footer, Notes and View only concern the table format.
type Table struct {
	// Title is the line above the table format's header; "" for none.
	Title string
	// Empty is what the table format prints instead of a table without
	// rows ("no usage in …").
	Empty string
	// Columns describe the values of every row, in order.
	Columns []Column
	// Rows hold one Value per column.
	Rows [][]Value
	// Footer rows follow the rows in the table format, under a rule
	// (TOTAL, with Blank beside the label). One Value per column.
	Footer [][]Value
	// Notes are lines printed after the table format's table.
	Notes []string
	// View, when set, is what the table format prints instead of this
	// table: the same data arranged for people (a long series pivoted to a
	// column per group). The machine formats ignore it.
	View *Table
}

// Column describes one column of a Table.
type Column struct {
	// Name is the column's machine name: the CSV header, the Arrow field
	// and, unless JSON says otherwise, the JSON key.
	Name string
	// JSON is the column's JSON key when it is not Name. A key "obj.key"
	// puts the value in the object "obj" with the key "key"; the members
	// of one object are consecutive columns, and the object is left out
	// of a row when each of its members there is null or zero.
	JSON string
	// Head is the table format's header; "" is Name upper-cased with
	// spaces for underscores.
	Head string
	// Kind is the kind of the column's values; a null is allowed in any
	// kind of column that is Nullable.
	Kind Kind
	// Unit chooses how the table format prints numbers (see Unit).
	Unit Unit
	// Nullable allows nulls (an Arrow nullable field).
	Nullable bool
	// Show selects the formats the column appears in; zero is all.
	Show Show
	// HideEmpty leaves the column out of the table format when every row
	// (the footer aside) is null, zero or "".
	HideEmpty bool
}

// head is the column's table header.
func (c *Column) head() string {
	if c.Head != "" {
		return c.Head
	}
	return strings.ToUpper(strings.ReplaceAll(c.Name, "_", " "))
}

// jsonKey is the column's JSON key path.
func (c *Column) jsonKey() string {
	if c.JSON != "" {
		return c.JSON
	}
	return c.Name
}

// Show selects the formats a column appears in.
type Show uint8

// The choices of Show.
const (
	ShowAll   Show = iota // every format
	ShowTable             // the table format only: a view for people
	ShowData              // json, csv and arrow only
)

// inTable and inData report whether a column with s appears in the table
// format and in the machine formats.
func (s Show) inTable() bool { return s != ShowData }
func (s Show) inData() bool  { return s != ShowTable }

// Kind is the kind of a column's values.
type Kind uint8

// The kinds of values, with their JSON, CSV and Arrow encodings.
const (
	KindText   Kind = iota + 1 // JSON string; CSV text; Arrow utf8
	KindUint                   // JSON number; CSV digits; Arrow uint64
	KindInt                    // JSON number; CSV digits; Arrow int64
	KindFloat                  // JSON number (null for NaN or ±Inf); CSV shortest decimal; Arrow float64
	KindMoney                  // pricing.Pico: JSON string "1.500000000000" (most JSON readers would turn a number into a binary float); CSV the same digits; Arrow decimal128(38, 12)
	KindTime                   // JSON and CSV RFC 3339 in UTC; Arrow timestamp[s, UTC]
	KindDate                   // a calendar day: JSON and CSV 2006-01-02; Arrow date32
	KindFloats                 // a list: JSON array; Arrow list<float64>; not in CSV; a sparkline in tables
	KindDates                  // a list of days: JSON array of dates; Arrow list<date32>; not in CSV
)

// kindBlank is the kind of Blank: a null that tables print as nothing.
const kindBlank Kind = 255

// numeric reports whether values of k are numbers (right-aligned).
func (k Kind) numeric() bool {
	return k == KindUint || k == KindInt || k == KindFloat || k == KindMoney
}

// list reports whether values of k are lists (left out of CSV).
func (k Kind) list() bool { return k == KindFloats || k == KindDates }

// Unit says what a number measures, for the table format.
type Unit uint8

// The units. Integers (KindUint, KindInt) print with thousands separators
// whatever their unit.
const (
	UnitNone    Unit = iota // floats: 3 significant digits (at least), thousands separators
	UnitCount               // floats counting things: rounded to an integer, thousands separators
	UnitUSD                 // money: 2 to 6 decimals (exact Money) or 2 (float estimates), thousands separators
	UnitMs                  // milliseconds: no decimals from 100 up, else 3 significant digits
	UnitHours               // 3 significant digits
	UnitPercent             // a value in percent, signed: +12.3%
	UnitShare               // a fraction (0.123) as a percent: 12.3%
	UnitRatio               // 2 decimals (MASE, coverage, probabilities)
	UnitDays                // 1 decimal and " d"
)

// Value is one cell: a null (the zero Value) or a value of one Kind. Make
// values with the functions named after the kinds.
//
// A report holds one Value per cell, up to millions of them (a series of
// minutes per model), so a Value keeps every kind in the same 48 bytes:
// a text in s; a number, an amount or an instant in the two words of n;
// a list's first element in list and its length in n[0].
type Value struct {
	kind Kind // 0: null
	s    string
	// n is KindUint's value, KindInt's two's complement, KindFloat's
	// IEEE 754 bits, KindMoney's high and low words (pricing.Pico's
	// Int128), KindTime's and KindDate's Unix seconds and nanoseconds, or
	// a list's length.
	n    [2]uint64
	list unsafe.Pointer // KindFloats: *float64; KindDates: *time.Time
}

// valueSize is the size of a Value in memory (TestValueIsSmall).
const valueSize = 48

func (v Value) asUint() uint64      { return v.n[0] }
func (v Value) asInt() int64        { return int64(v.n[0]) }
func (v Value) asFloat() float64    { return math.Float64frombits(v.n[0]) }
func (v Value) asTime() time.Time   { return time.Unix(int64(v.n[0]), int64(v.n[1])).UTC() }
func (v Value) asFloats() []float64 { return unsafe.Slice((*float64)(v.list), v.n[0]) }
func (v Value) asDates() []time.Time {
	return unsafe.Slice((*time.Time)(v.list), v.n[0])
}

// asMoney is KindMoney's amount; every pair of words a Money value holds
// came from a Pico, so FromInt128 cannot fail on it.
func (v Value) asMoney() pricing.Pico {
	p, _ := pricing.FromInt128(int64(v.n[0]), v.n[1])
	return p
}

// instant is a Value of kind k holding t.
func instant(k Kind, t time.Time) Value {
	return Value{kind: k, n: [2]uint64{uint64(t.Unix()), uint64(t.Nanosecond())}}
}

// Null is the unknown value.
func Null() Value { return Value{} }

// Blank is an empty table cell, such as the dimensions beside a footer's
// TOTAL; machine formats read it as null.
func Blank() Value { return Value{kind: kindBlank} }

// Text is a text value.
func Text(s string) Value { return Value{kind: KindText, s: s} }

// Uint is a count.
func Uint(u uint64) Value { return Value{kind: KindUint, n: [2]uint64{u}} }

// Int is a signed integer.
func Int(i int) Value { return Value{kind: KindInt, n: [2]uint64{uint64(int64(i))}} }

// Float is a measurement or an estimate.
func Float(f float64) Value { return Value{kind: KindFloat, n: [2]uint64{math.Float64bits(f)}} }

// OptFloat is *f, or null when f is nil.
func OptFloat(f *float64) Value {
	if f == nil {
		return Null()
	}
	return Float(*f)
}

// Money is an exact amount of USD.
func Money(p pricing.Pico) Value {
	hi, lo := p.Int128()
	return Value{kind: KindMoney, n: [2]uint64{uint64(hi), lo}}
}

// OptUSD is an estimate of *f USD (a forecast, a sum of float daily
// values) as Money rounded to 10⁻¹² USD, so that every amount of USD in a
// report is written the same way (a decimal string in JSON, decimal128 in
// Arrow); null when f is nil, not finite or beyond Money's range.
func OptUSD(f *float64) Value {
	if f == nil || math.IsNaN(*f) || math.IsInf(*f, 0) {
		return Null()
	}
	p, err := pricing.ParsePico(strconv.FormatFloat(*f, 'f', pricing.PicoDigits, 64))
	if err != nil { // beyond ±10^26 USD
		return Null()
	}
	return Money(p)
}

// Time is an instant, written in UTC to the second.
func Time(t time.Time) Value { return instant(KindTime, t) }

// Date is the calendar day of t in t's location.
func Date(t time.Time) Value {
	y, m, d := t.Date()
	return instant(KindDate, time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
}

// Floats is a list of floats (a series); the table format draws it as a
// sparkline.
func Floats(fs []float64) Value {
	return Value{kind: KindFloats, n: [2]uint64{uint64(len(fs))}, list: unsafe.Pointer(unsafe.SliceData(fs))}
}

// Dates is a list of calendar days.
func Dates(ts []time.Time) Value {
	ds := make([]time.Time, len(ts))
	for i, t := range ts {
		ds[i] = Date(t).asTime()
	}
	return Value{kind: KindDates, n: [2]uint64{uint64(len(ds))}, list: unsafe.Pointer(unsafe.SliceData(ds))}
}

// IsNull reports whether v is the unknown value (or Blank).
func (v Value) IsNull() bool { return v.kind == 0 || v.kind == kindBlank }

// Kind is v's kind, 0 for null.
func (v Value) Kind() Kind {
	if v.IsNull() {
		return 0
	}
	return v.kind
}

// empty reports whether v is null, zero, "" or an empty list.
func (v Value) empty() bool {
	switch v.kind {
	case 0, kindBlank:
		return true
	case KindText:
		return v.s == ""
	case KindUint, KindInt:
		return v.n[0] == 0
	case KindFloat:
		return v.asFloat() == 0
	case KindMoney:
		return v.n == [2]uint64{}
	case KindFloats, KindDates:
		return v.n[0] == 0
	}
	return v.asTime().IsZero()
}

// visible returns the indexes of t's columns that format shows: the table
// format (table) or the machine formats.
func (t *Table) visible(table bool) []int {
	var out []int
	for i := range t.Columns {
		c := &t.Columns[i]
		if table && !c.Show.inTable() || !table && !c.Show.inData() {
			continue
		}
		if table && c.HideEmpty && t.allEmpty(i) {
			continue
		}
		out = append(out, i)
	}
	return out
}

// allEmpty reports whether column i is empty in every row.
func (t *Table) allEmpty(i int) bool {
	for _, r := range t.Rows {
		if !r[i].empty() {
			return false
		}
	}
	return true
}

// check reports a row whose width is not the number of columns, a
// programming error of the report's builder.
func (t *Table) check() error {
	for _, rows := range [][][]Value{t.Rows, t.Footer} {
		for i, r := range rows {
			if len(r) != len(t.Columns) {
				return fmt.Errorf("render: row %d has %d values for %d columns", i, len(r), len(t.Columns))
			}
		}
	}
	return nil
}
