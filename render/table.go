package render

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// WriteTable writes t for people (t.View instead when set): the title, a
// header, the rows in aligned columns two spaces apart (numbers right,
// text left), the footer under a rule of dashes, then the notes. A table
// without rows prints t.Empty instead.
func WriteTable(w io.Writer, t *Table) error {
	if t.View != nil {
		t = t.View
	}
	if err := t.check(); err != nil {
		return err
	}
	var b strings.Builder
	if len(t.Rows) == 0 {
		empty := t.Empty
		if empty == "" {
			empty = "no rows"
		}
		b.WriteString(printable(empty) + "\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	if t.Title != "" {
		b.WriteString(printable(t.Title) + "\n")
	}
	cols := t.visible(true)
	widths := make([]int, len(cols))
	heads := make([]string, len(cols))
	for j, i := range cols {
		heads[j] = t.Columns[i].head()
		widths[j] = utf8.RuneCountInString(heads[j])
	}
	cells := func(rows [][]Value) [][]string {
		out := make([][]string, len(rows))
		for r, row := range rows {
			out[r] = make([]string, len(cols))
			for j, i := range cols {
				out[r][j] = Cell(row[i], t.Columns[i].Unit)
				widths[j] = max(widths[j], utf8.RuneCountInString(out[r][j]))
			}
		}
		return out
	}
	body, foot := cells(t.Rows), cells(t.Footer)
	line := func(vals []string) {
		var l strings.Builder
		for j, v := range vals {
			if j > 0 {
				l.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[j]-utf8.RuneCountInString(v))
			if t.Columns[cols[j]].Kind.numeric() {
				l.WriteString(pad + v)
			} else {
				l.WriteString(v + pad)
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	line(heads)
	for _, r := range body {
		line(r)
	}
	if len(foot) > 0 {
		rule := make([]string, len(cols))
		for j := range rule {
			rule[j] = strings.Repeat("-", widths[j])
		}
		line(rule)
		for _, r := range foot {
			line(r)
		}
	}
	for _, n := range t.Notes {
		b.WriteString(printable(n) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Cell is v as the table format prints it in a column of unit u: "-" for
// null and "", nothing for Blank, thousands separators, the unit's
// precision, lists as sparklines.
func Cell(v Value, u Unit) string {
	switch v.kind {
	case 0:
		return "-"
	case kindBlank:
		return ""
	case KindText:
		if v.s == "" {
			return "-"
		}
		return printable(v.s)
	case KindUint:
		return Thousands(v.asUint())
	case KindInt:
		if i := v.asInt(); i < 0 {
			return "-" + Thousands(uint64(-i))
		}
		return Thousands(v.asUint())
	case KindMoney:
		return USD(v.asMoney())
	case KindFloat:
		return floatCell(v.asFloat(), u)
	case KindTime:
		return v.asTime().Format("2006-01-02 15:04")
	case KindDate:
		return v.asTime().Format(time.DateOnly)
	case KindFloats:
		return Sparkline(v.asFloats())
	case KindDates:
		ds := v.asDates()
		if len(ds) == 0 {
			return "-"
		}
		return ds[0].Format(time.DateOnly) + " … " + ds[len(ds)-1].Format(time.DateOnly)
	}
	return "?"
}

// printable is s with every character a terminal would not print as one
// visible glyph written as its Go escape (\x1b, \u202e, \ufffd for
// invalid UTF-8 written \xff): the escape sequences that would move the
// cursor, clear the screen or set the window title, the line breaks that
// would cut a row, the bidirectional controls that would reorder it, in
// cells, notes, the title and the empty table's line. (A backslash is
// printed as it is: text that already reads \x1b is not told apart.) Text
// stored before costpipe rejected control characters at ingest, or by
// another writer, still reaches the table format; CSV, JSON and Arrow
// keep it as it is, for programs.
func printable(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case r == ' ' || unicode.IsPrint(r) || r == zwnj || r == zwj:
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r) // '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// The joiners are format characters that join or keep apart the
// characters beside them (Persian words, emoji sequences) and cannot
// reorder or hide anything: printed as they are.
const zwnj, zwj = '\u200c', '\u200d'

// floatCell prints f in unit u.
func floatCell(f float64, u Unit) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "-"
	}
	switch u {
	case UnitCount:
		return signed(math.Round(f), func(a float64) string { return group(strconv.FormatFloat(a, 'f', 0, 64)) })
	case UnitUSD:
		return usdFloat(f)
	case UnitMs:
		if f >= 100 {
			return group(strconv.FormatFloat(f, 'f', 0, 64))
		}
		return sig(f)
	case UnitHours:
		return sig(f)
	case UnitPercent:
		return fmt.Sprintf("%+.1f%%", f)
	case UnitShare:
		return strconv.FormatFloat(100*f, 'f', 1, 64) + "%"
	case UnitRatio:
		return strconv.FormatFloat(f, 'f', 2, 64)
	case UnitDays:
		return strconv.FormatFloat(f, 'f', 1, 64) + " d"
	}
	return signed(f, func(a float64) string { return group(sig(a)) })
}

// signed prints |f| with p, and a minus sign when f < 0.
func signed(f float64, p func(float64) string) string {
	if f < 0 {
		return "-" + p(-f)
	}
	return p(f)
}

// Thousands formats n with comma separators: 1234567 → "1,234,567".
func Thousands(n uint64) string { return group(strconv.FormatUint(n, 10)) }

// group puts comma separators into the integer part of the unsigned
// decimal s: "1234567.5" → "1,234,567.5".
func group(s string) string {
	end := strings.IndexByte(s, '.')
	if end < 0 {
		end = len(s)
	}
	if end <= 3 {
		return s
	}
	var b strings.Builder
	lead := end % 3
	b.WriteString(s[:lead])
	for i := lead; i < end; i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	b.WriteString(s[end:])
	return b.String()
}

// USD prints an exact amount for people: cents from one dollar up, below
// it three significant digits (down to 10⁻¹², costpipe's precision, so
// no cost prints as zero), rounded half away from zero, trailing zeros
// dropped beyond the second decimal, thousands separators: 1234.5 →
// "1,234.50", 42894.753891 → "42,894.75", 0.5 → "0.50", 0.0593 →
// "0.0593", 0.0001234567 → "0.000123", 0.0000001 → "0.0000001". JSON, CSV
// and Arrow carry the exact amount.
func USD(p pricing.Pico) string {
	d := p.Decimal()
	n := int32(usdDecimals(d.Abs().InexactFloat64()))
	return cents(d.Round(n).StringFixed(n))
}

// usdDecimals is how many decimals USD and a float in UnitUSD print of an
// amount a ≥ 0: 2 from one dollar up (and for 0), below it enough for
// three significant digits, at most 12 (amounts are exact to 10⁻¹²; at 6,
// a cost of 10⁻⁷ printed as 0.00, like no cost at all).
func usdDecimals(a float64) int {
	if a >= 1 || a == 0 {
		return 2
	}
	return min(max(2-int(math.Floor(math.Log10(a))), 2), 12)
}

// trimCents drops the trailing zeros of the decimal s beyond its second
// decimal: "0.500" → "0.50", "0.000120" → "0.00012".
func trimCents(s string) string {
	for strings.HasSuffix(s, "0") && len(s)-strings.IndexByte(s, '.') > 3 {
		s = s[:len(s)-1]
	}
	return s
}

// usdFloat is USD of a float amount.
func usdFloat(f float64) string {
	return cents(strconv.FormatFloat(f, 'f', usdDecimals(math.Abs(f)), 64))
}

// cents prints the rounded decimal s as USD does: trailing zeros dropped
// beyond the second decimal, thousands separators, no sign on a zero.
func cents(s string) string {
	s = trimCents(s)
	if neg, ok := strings.CutPrefix(s, "-"); ok {
		if strings.Trim(neg, "0.") == "" {
			return neg // rounded to zero: no sign
		}
		return "-" + group(neg)
	}
	return group(s)
}

// sig prints v ≥ 0 in fixed notation with at least 3 significant digits
// and at most 9 decimals: 1234, 12.3, 0.000343, 0.
func sig(v float64) string {
	if v == 0 {
		return "0"
	}
	prec := 2 - int(math.Floor(math.Log10(v)))
	return strconv.FormatFloat(v, 'f', min(max(prec, 0), 9), 64)
}

// sparkBars are the levels of a sparkline, lowest to highest.
var sparkBars = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws values as block characters, one per value, scaled to
// the largest; a value ≤ 0 (or not a number) is a space.
func Sparkline(xs []float64) string {
	hi := 0.0
	for _, x := range xs {
		if x > hi && !math.IsInf(x, 1) {
			hi = x
		}
	}
	var b strings.Builder
	for _, x := range xs {
		if hi <= 0 || !(x > 0) || math.IsInf(x, 1) {
			b.WriteRune(' ')
			continue
		}
		b.WriteRune(sparkBars[min(len(sparkBars)-1, int(x/hi*float64(len(sparkBars)-1)+0.5))])
	}
	return b.String()
}

// Downsample returns xs in at most n points, each the mean of consecutive
// values, for a sparkline of a long series; xs itself when it is short
// enough.
func Downsample(xs []float64, n int) []float64 {
	if n <= 0 || len(xs) <= n {
		return xs
	}
	per := (len(xs) + n - 1) / n
	out := make([]float64, 0, n)
	for i := 0; i < len(xs); i += per {
		end := min(i+per, len(xs))
		s := 0.0
		for _, x := range xs[i:end] {
			s += x
		}
		out = append(out, s/float64(end-i))
	}
	return out
}
