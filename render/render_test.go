package render

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// sample is a table with every kind, a nested JSON object, a table-only
// and a data-only column, a column hidden when empty, and a footer.
func sample() *Table {
	day := time.Date(2026, 1, 15, 10, 42, 7, 0, time.UTC)
	return &Table{
		Title: "title",
		Columns: []Column{
			{Name: "tenant", Kind: KindText},
			{Name: "requests", Kind: KindUint},
			{Name: "delta", Kind: KindInt},
			{Name: "cost_usd", Head: "COST USD", Kind: KindMoney, Unit: UnitUSD},
			{Name: "lat_p50_ms", JSON: "lat_ms.p50", Head: "P50 MS", Kind: KindFloat, Unit: UnitMs, Nullable: true},
			{Name: "lat_count", JSON: "lat_ms.count", Kind: KindUint, Show: ShowData},
			{Name: "share", Kind: KindFloat, Unit: UnitShare, Show: ShowTable},
			{Name: "gpu", Kind: KindFloat, HideEmpty: true},
			{Name: "ts", Kind: KindTime},
			{Name: "day", Kind: KindDate, Nullable: true},
			{Name: "daily", Kind: KindFloats},
			{Name: "days", Kind: KindDates, Show: ShowData},
		},
		Rows: [][]Value{
			{Text("=acme"), Uint(1234567), Int(-1234), Money(pricing.MustParsePico("1234.5")), Float(3000.4), Uint(3), Float(0.4567), Float(0),
				Time(day), Date(day), Floats([]float64{0, 1, 2, 4}), Dates([]time.Time{day, day.AddDate(0, 0, 1)})},
			{Text(""), Uint(0), Int(0), Money(pricing.MustParsePico("0.0001234567")), Null(), Uint(0), Float(0.1), Float(0),
				Time(day.Add(time.Hour)), Null(), Floats(nil), Dates(nil)},
		},
		Footer: [][]Value{{Text("TOTAL"), Uint(1234567), Blank(), Money(pricing.MustParsePico("1234.500123")), Null(), Blank(), Float(1), Blank(),
			Blank(), Blank(), Blank(), Blank()}},
		Notes: []string{"a note"},
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, sample()); err != nil {
		t.Fatal(err)
	}
	want := "title\n" +
		"TENANT   REQUESTS   DELTA  COST USD  P50 MS   SHARE  TS                DAY         DAILY\n" +
		"=acme   1,234,567  -1,234  1,234.50   3,000   45.7%  2026-01-15 10:42  2026-01-15   ▃▅█\n" +
		"-               0       0  0.000123       -   10.0%  2026-01-15 11:42  -\n" +
		"------  ---------  ------  --------  ------  ------  ----------------  ----------  -----\n" +
		"TOTAL   1,234,567          1,234.50       -  100.0%\n" +
		"a note\n"
	// Numbers right, text left, no blanks at the ends of lines; GPU is
	// hidden (all zero), lat_count and days are data only.
	if got := b.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	empty := &Table{Empty: "no usage", Columns: sample().Columns}
	b.Reset()
	if err := WriteTable(&b, empty); err != nil || b.String() != "no usage\n" {
		t.Errorf("empty table: %q, %v", b.String(), err)
	}
	view := &Table{Columns: []Column{{Name: "x", Kind: KindText}}, Rows: [][]Value{{Text("data")}},
		View: &Table{Columns: []Column{{Name: "y", Kind: KindText}}, Rows: [][]Value{{Text("people")}}}}
	b.Reset()
	if err := WriteTable(&b, view); err != nil || b.String() != "Y\npeople\n" {
		t.Errorf("view: %q, %v", b.String(), err)
	}
	bad := &Table{Columns: []Column{{Name: "x", Kind: KindText}}, Rows: [][]Value{{Text("a"), Text("b")}}}
	if err := WriteTable(&b, bad); err == nil {
		t.Error("a row wider than the columns was accepted")
	}
}

func TestCell(t *testing.T) {
	for _, tc := range []struct {
		v    Value
		u    Unit
		want string
	}{
		{Null(), UnitUSD, "-"},
		{Blank(), UnitUSD, ""},
		{Text(""), 0, "-"},
		{Uint(999), 0, "999"},
		{Uint(1000), 0, "1,000"},
		{Int(-1234567), 0, "-1,234,567"},
		{Money(pricing.MustParsePico("12.5")), UnitUSD, "12.50"},
		// Money for people: cents from a dollar up, three significant
		// digits below it (at most 6 decimals).
		{Money(pricing.MustParsePico("-1234567.0000005")), UnitUSD, "-1,234,567.00"},
		{Money(pricing.MustParsePico("42894.753891")), UnitUSD, "42,894.75"},
		{Money(pricing.MustParsePico("7791.575")), UnitUSD, "7,791.58"},
		{Money(pricing.MustParsePico("0.999999")), UnitUSD, "1.00"},
		{Money(pricing.MustParsePico("0.5")), UnitUSD, "0.50"},
		{Money(pricing.MustParsePico("0.123456")), UnitUSD, "0.123"},
		{Money(pricing.MustParsePico("0.0593")), UnitUSD, "0.0593"},
		{Money(pricing.MustParsePico("0.0001234567")), UnitUSD, "0.000123"},
		{Money(pricing.MustParsePico("-0.0001234567")), UnitUSD, "-0.000123"},
		// A cost too small for 6 decimals is not shown as no cost.
		{Money(pricing.MustParsePico("0.0000001")), UnitUSD, "0.0000001"},
		{Money(pricing.MustParsePico("-0.0000001")), UnitUSD, "-0.0000001"},
		{Money(pricing.MustParsePico("0.00000235")), UnitUSD, "0.00000235"},
		{Money(pricing.MustParsePico("0.000000000001")), UnitUSD, "0.000000000001"},
		{Money(pricing.Pico{}), UnitUSD, "0.00"},
		{Float(1234.567), UnitUSD, "1,234.57"},
		{Float(-0.5), UnitUSD, "-0.50"},
		{Float(0.0593), UnitUSD, "0.0593"},
		{Float(0.000123456), UnitUSD, "0.000123"},
		{Float(-0.0000001), UnitUSD, "-0.0000001"},
		{Float(1e-15), UnitUSD, "0.00"},
		{Float(0), UnitUSD, "0.00"},
		{Float(1234.5), UnitCount, "1,235"},
		{Float(78.91), UnitMs, "78.9"},
		{Float(0.1234), UnitMs, "0.123"},
		{Float(12345.6), UnitMs, "12,346"},
		{Float(0.000343), UnitHours, "0.000343"},
		{Float(12.345), UnitPercent, "+12.3%"},
		{Float(-3), UnitPercent, "-3.0%"},
		{Float(0.1234), UnitShare, "12.3%"},
		{Float(0.8), UnitRatio, "0.80"},
		{Float(5.04), UnitDays, "5.0 d"},
		{Float(1234567.8), UnitNone, "1,234,568"},
		{Float(math.NaN()), UnitMs, "-"},
		{Float(math.Inf(1)), UnitUSD, "-"},
		{Floats([]float64{1, 8}), 0, "▂█"},
		{Dates([]time.Time{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 28, 0, 0, 0, 0, time.UTC)}), 0, "2026-01-01 … 2026-01-28"},
	} {
		if got := Cell(tc.v, tc.u); got != tc.want {
			t.Errorf("Cell(%+v, %d) = %q, want %q", tc.v, tc.u, got, tc.want)
		}
	}
}

func TestSparkline(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want string
	}{
		{nil, ""},
		{[]float64{0, 0}, "  "},
		{[]float64{0, 1, 2, 3, 4, 5, 6, 7}, " ▂▃▄▅▆▇█"}, // bars scale from zero: 1/7 of the top is the second
		{[]float64{-1, 0.01, 100, math.NaN()}, " ▁█ "},
	} {
		if got := Sparkline(tc.in); got != tc.want {
			t.Errorf("Sparkline(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Downsample([]float64{1, 3, 5, 7, 9}, 2); len(got) != 2 || got[0] != 3 || got[1] != 8 {
		t.Errorf("Downsample = %v, want [3 8] (means of 3 and of 2)", got)
	}
	if got := Downsample([]float64{1, 2}, 5); len(got) != 2 {
		t.Errorf("Downsample of a short series = %v", got)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sample()); err != nil {
		t.Fatal(err)
	}
	// Data-only columns are in, table-only out; the nested object is
	// compact and left out where all its members are null or zero; lists
	// stay; JSON escapes like encoding/json.
	want := "[\n" +
		`  {"tenant": "=acme", "requests": 1234567, "delta": -1234, "cost_usd": "1234.500000000000", "lat_ms": {"p50":3000.4,"count":3}, ` +
		`"gpu": 0, "ts": "2026-01-15T10:42:07Z", "day": "2026-01-15", "daily": [0,1,2,4], "days": ["2026-01-15","2026-01-16"]},` + "\n" +
		`  {"tenant": "", "requests": 0, "delta": 0, "cost_usd": "0.000123456700", ` +
		`"gpu": 0, "ts": "2026-01-15T11:42:07Z", "day": null, "daily": [], "days": []}` + "\n]\n"
	if got := b.String(); got != want {
		t.Errorf("json:\n%s\nwant:\n%s", got, want)
	}
	num := &Table{Columns: []Column{{Name: "to_date", Kind: KindMoney}, {Name: "f", Kind: KindFloat, Nullable: true},
		{Name: "s", Kind: KindText}},
		Rows: [][]Value{{Money(pricing.MustParsePico("-0.5")), Float(math.NaN()), Text("<a&b>\"\n")}, {Money(pricing.Pico{}), Float(1e-7), Text("")}}}
	b.Reset()
	if err := WriteJSON(&b, num); err != nil {
		t.Fatal(err)
	}
	want = "[\n  {\"to_date\": \"-0.500000000000\", \"f\": null, \"s\": \"\\u003ca\\u0026b\\u003e\\\"\\n\"},\n  {\"to_date\": \"0.000000000000\", \"f\": 1e-7, \"s\": \"\"}\n]\n"
	if b.String() != want {
		t.Errorf("json:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteJSON(&b, &Table{Columns: num.Columns}); err != nil || b.String() != "[]\n" {
		t.Errorf("empty json %q, %v", b.String(), err)
	}
}

func TestWriteCSV(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, sample()); err != nil {
		t.Fatal(err)
	}
	// No table-only column, no lists; nulls empty; the formula defused.
	want := "tenant,requests,delta,cost_usd,lat_p50_ms,lat_count,gpu,ts,day\n" +
		"'=acme,1234567,-1234,1234.500000000000,3000.4,3,0,2026-01-15T10:42:07Z,2026-01-15\n" +
		",0,0,0.000123456700,,0,0,2026-01-15T11:42:07Z,\n"
	if b.String() != want {
		t.Errorf("csv:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteCSV(&b, &Table{Columns: sample().Columns}); err != nil || !strings.HasPrefix(b.String(), "tenant,requests,") || strings.Count(b.String(), "\n") != 1 {
		t.Errorf("empty csv %q, %v: want the header only", b.String(), err)
	}
}

func TestWriteArrow(t *testing.T) {
	var b bytes.Buffer
	if err := WriteArrow(&b, sample()); err != nil {
		t.Fatal(err)
	}
	rd, err := ipc.NewReader(&b)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	if !rd.Next() {
		t.Fatalf("no record: %v", rd.Err())
	}
	rec := rd.Record()
	var types []string
	for _, f := range rec.Schema().Fields() {
		types = append(types, f.Name+":"+f.Type.String()+map[bool]string{true: "?", false: ""}[f.Nullable])
	}
	want := "tenant:utf8 requests:uint64 delta:int64 cost_usd:decimal(38, 12) lat_p50_ms:float64? lat_count:uint64 gpu:float64 " +
		"ts:timestamp[s, tz=UTC] day:date32? daily:list<item: float64, nullable> days:list<item: date32, nullable>"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("schema\n%s\nwant\n%s", got, want)
	}
	if rec.NumRows() != 2 {
		t.Fatalf("%d rows", rec.NumRows())
	}
	cost := rec.Column(3).(*array.Decimal128).Value(1)
	ts := rec.Column(7).(*array.Timestamp).Value(0)
	day := rec.Column(8).(*array.Date32)
	daily := rec.Column(9).(*array.List)
	if cost.ToString(12) != "0.000123456700" || ts != arrow.Timestamp(time.Date(2026, 1, 15, 10, 42, 7, 0, time.UTC).Unix()) ||
		day.Value(0).ToTime().Format(time.DateOnly) != "2026-01-15" || !day.IsNull(1) || !rec.Column(4).IsNull(1) {
		t.Errorf("values: cost %s ts %v day %v null %v", cost.ToString(12), ts, day.Value(0), day.IsNull(1))
	}
	if start, end := daily.ValueOffsets(0); end-start != 4 {
		t.Errorf("daily of row 0 has %d values, want 4", end-start)
	}
	for _, bad := range []*Table{
		{Columns: []Column{{Name: "x", Kind: KindUint}}, Rows: [][]Value{{Null()}}},
		{Columns: []Column{{Name: "x", Kind: KindUint}}, Rows: [][]Value{{Text("1")}}},
	} {
		if err := WriteArrow(&b, bad); err == nil {
			t.Errorf("%+v: no error", bad.Rows)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, s := range []string{"table", "json", "csv", "arrow"} {
		if f, err := ParseFormat(s); err != nil || string(f) != s {
			t.Errorf("ParseFormat(%q) = %q, %v", s, f, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil || err.Error() != `unknown format "xml": want table, json, csv or arrow` {
		t.Errorf("ParseFormat(xml) err = %v", err)
	}
}

// TestTableEscapesWhatTerminalsInterpret: text a terminal would act on
// (escape sequences, line breaks, bidirectional controls, invalid UTF-8)
// is printed as its escape in the table format, in cells and notes, so a
// model name stored with one cannot clear the screen or cut or reorder a
// row; plain and accented text is printed as it is, and CSV keeps the
// value unchanged.
func TestTableEscapesWhatTerminalsInterpret(t *testing.T) {
	for in, want := range map[string]string{
		"gpt\x1b[2J":   `gpt\x1b[2J`,
		"a\u202eb":     `a\u202eb`,
		"two\nlines\r": `two\nlines\r`,
		"bad\xffbyte":  `bad\xffbyte`,
		"nb\u00a0sp":   `nb\u00a0sp`,
		"c1\u009b31m":  `c1\u009b31m`,
		"café – 東京 ok": "café – 東京 ok",
		"می‌خواهم 👩‍💻": "می‌خواهم 👩‍💻", // the joiners stay
	} {
		if got := Cell(Text(in), 0); got != want {
			t.Errorf("Cell(%q) = %s, want %s", in, got, want)
		}
	}
	var b0 bytes.Buffer
	if err := WriteTable(&b0, &Table{Title: "usage of \x1b[2J", Empty: "none", Columns: []Column{{Name: "m", Kind: KindText}}, Rows: [][]Value{{Text("x")}}}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b0.String(), `usage of \x1b[2J`+"\n") {
		t.Errorf("title: %q", b0.String())
	}
	tb := &Table{Columns: []Column{{Name: "model", Kind: KindText}, {Name: "requests", Kind: KindUint}},
		Rows:  [][]Value{{Text("evil\x1b]0;title\x07"), Uint(1)}, {Text("plain"), Uint(22)}},
		Notes: []string{"note: model \x1b[31mred"}}
	var b bytes.Buffer
	if err := WriteTable(&b, tb); err != nil {
		t.Fatal(err)
	}
	want := "MODEL               REQUESTS\n" +
		`evil\x1b]0;title\a         1` + "\n" +
		"plain                     22\n" +
		`note: model \x1b[31mred` + "\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteCSV(&b, tb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "evil\x1b]0;title\x07,1") {
		t.Errorf("CSV changed the value: %q", b.String())
	}
}

// TestValueIsSmall: a report holds a Value per cell, up to millions of
// them, so every kind keeps to valueSize bytes and reads back what it was
// made of.
func TestValueIsSmall(t *testing.T) {
	if got := unsafe.Sizeof(Value{}); got > valueSize {
		t.Errorf("a Value takes %d bytes, want at most %d", got, valueSize)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 29, 2, 30, 15, 123456789, berlin)
	for _, tm := range []time.Time{at, {}, time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)} {
		if got := Time(tm).asTime(); !got.Equal(tm) || got.Location() != time.UTC {
			t.Errorf("Time(%v) reads back %v", tm, got)
		}
		if got := Time(tm).empty(); got != tm.IsZero() {
			t.Errorf("Time(%v).empty() = %v", tm, got)
		}
	}
	if got, want := Date(at).asTime(), time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Date(%v) reads back %v, want %v", at, got, want)
	}
	for _, i := range []int{0, -1, math.MinInt64, math.MaxInt64} {
		if got := Int(i).asInt(); got != int64(i) {
			t.Errorf("Int(%d) reads back %d", i, got)
		}
	}
	if got := Uint(math.MaxUint64).asUint(); got != math.MaxUint64 {
		t.Errorf("Uint(max) reads back %d", got)
	}
	for _, f := range []float64{0, math.Copysign(0, -1), -1.5, math.Inf(1), math.SmallestNonzeroFloat64} {
		if got := Float(f).asFloat(); math.Float64bits(got) != math.Float64bits(f) {
			t.Errorf("Float(%v) reads back %v", f, got)
		}
	}
	if !math.IsNaN(Float(math.NaN()).asFloat()) {
		t.Error("Float(NaN) does not read back NaN")
	}
	for _, s := range []string{"0", "-0.000000000001", "99999999999999999999999999.999999999999", "-99999999999999999999999999.999999999999", "12.5"} {
		p := pricing.MustParsePico(s)
		if got := Money(p).asMoney(); got != p {
			t.Errorf("Money(%s) reads back %s", p, got)
		}
		if got := Money(p).empty(); got != p.IsZero() {
			t.Errorf("Money(%s).empty() = %v", p, got)
		}
	}
	fs := []float64{1, 2, 3}
	if got := Floats(fs).asFloats(); len(got) != 3 || &got[0] != &fs[0] {
		t.Errorf("Floats reads back %v", got)
	}
	if got := Floats(nil).asFloats(); got != nil || !Floats(nil).empty() {
		t.Errorf("Floats(nil) reads back %v", got)
	}
	ds := Dates([]time.Time{at, at.AddDate(0, 0, 1)}).asDates()
	if len(ds) != 2 || !ds[1].Equal(time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Dates reads back %v", ds)
	}
}

// writeSizes is a writer that keeps what it is given and the size of each
// write.
type writeSizes struct {
	buf   bytes.Buffer
	sizes []int
}

func (w *writeSizes) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	return w.buf.Write(p)
}

// TestWriteJSONInPieces: a large table's JSON goes out in pieces of about
// jsonChunk bytes, not built whole in memory first, and the pieces make
// the same document.
func TestWriteJSONInPieces(t *testing.T) {
	tab := &Table{Columns: []Column{{Name: "tenant", Kind: KindText}, {Name: "ts", Kind: KindTime}, {Name: "n", Kind: KindUint}}}
	at := time.Date(2026, 1, 14, 0, 0, 0, 0, time.UTC)
	for i := range 20000 {
		tab.Rows = append(tab.Rows, []Value{Text("acme"), Time(at.Add(time.Duration(i) * time.Minute)), Uint(uint64(i))})
	}
	var w writeSizes
	if err := WriteJSON(&w, tab); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(w.buf.Bytes(), &rows); err != nil || len(rows) != 20000 || rows[19999]["n"] != float64(19999) {
		t.Fatalf("%d rows, last %v: %v", len(rows), rows[len(rows)-1], err)
	}
	if len(w.sizes) < w.buf.Len()/jsonChunk || slices.Max(w.sizes) > jsonChunk+1024 {
		t.Errorf("%d bytes in %d writes, the largest %d: want pieces of about %d", w.buf.Len(), len(w.sizes), slices.Max(w.sizes), jsonChunk)
	}
}
