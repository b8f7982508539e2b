package pricing

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestParsePicoRoundTrip(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0", "0.000000000000"},
		{"-0", "0.000000000000"},
		{"+1", "1.000000000000"},
		{"2.5", "2.500000000000"},
		{"-0.5", "-0.500000000000"},
		{"0.000123450000", "0.000123450000"},
		{"0.000000000001", "0.000000000001"},
		{"-0.000000000001", "-0.000000000001"},
		{"18446744.073709551616", "18446744.073709551616"}, // 2^64 units
		{"123456789012345678901.5", "123456789012345678901.500000000000"},
		{"0000000000000000000000000000000001.25", "1.250000000000"}, // leading zeros do not count
		{"99999999999999999999999999.999999999999", "99999999999999999999999999.999999999999"},
		{"-99999999999999999999999999.999999999999", "-99999999999999999999999999.999999999999"},
	} {
		p, err := ParsePico(tc.in)
		if err != nil {
			t.Errorf("ParsePico(%q): %v", tc.in, err)
			continue
		}
		if got := p.String(); got != tc.want {
			t.Errorf("ParsePico(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		back, err := ParsePico(p.String())
		if err != nil || back != p {
			t.Errorf("round trip of %q: %v, %v", tc.in, back, err)
		}
		if got := p.Decimal().StringFixed(PicoDigits); got != tc.want {
			t.Errorf("ParsePico(%q).Decimal() = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParsePicoRejects(t *testing.T) {
	for _, tc := range []struct{ in, wantErr string }{
		{"", "not a decimal number"},
		{"-", "not a decimal number"},
		{"1.", "not a decimal number"},
		{".5", "not a decimal number"},
		{"2,50", "not a decimal number"},
		{"1e5", "not a decimal number"},
		{" 1", "not a decimal number"},
		{"1 ", "not a decimal number"},
		{"0x10", "not a decimal number"},
		{"1_000", "not a decimal number"},
		{"NaN", "not a decimal number"},
		{"1.0000000000001", "more than 12 fraction digits"},
		{"100000000000000000000000000", "out of range"},
		{"-100000000000000000000000000.5", "out of range"},
		{strings.Repeat("9", 200), "out of range"},
	} {
		_, err := ParsePico(tc.in)
		if err == nil {
			t.Errorf("ParsePico(%q) succeeded, want error", tc.in)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "cannot parse ") {
			t.Errorf("ParsePico(%q) error %q, want it to contain %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestPicoArithmetic(t *testing.T) {
	lo := mustInt128(t, 0, math.MaxUint64) // 2^64 − 1 units
	one := FromPicos(1)
	carried := lo.Add(one)
	if got := carried.String(); got != "18446744.073709551616" {
		t.Errorf("(2^64−1) + 1 = %s, want 18446744.073709551616", got)
	}
	if hi, l := carried.Int128(); hi != 1 || l != 0 {
		t.Errorf("(2^64−1) + 1 words = %d, %d, want 1, 0", hi, l)
	}
	if got := carried.Sub(one); got != lo {
		t.Errorf("borrow: 2^64 − 1 = %s, want %s", got, lo)
	}
	if got := carried.Neg().String(); got != "-18446744.073709551616" {
		t.Errorf("−2^64 = %s", got)
	}
	if got := carried.Neg().Add(carried); !got.IsZero() {
		t.Errorf("−2^64 + 2^64 = %s, want 0", got)
	}
	if got := FromPicos(-1).String(); got != "-0.000000000001" {
		t.Errorf("FromPicos(-1) = %s", got)
	}
	if got := FromPicos(math.MinInt64).String(); got != "-9223372.036854775808" {
		t.Errorf("FromPicos(MinInt64) = %s", got)
	}
	a, b := MustParsePico("0.1"), MustParsePico("0.2")
	if got := a.Add(b); got != MustParsePico("0.3") {
		t.Errorf("0.1 + 0.2 = %s, want exactly 0.3", got)
	}
	if got := a.Sub(b).String(); got != "-0.100000000000" {
		t.Errorf("0.1 − 0.2 = %s", got)
	}
	if a.Cmp(b) != -1 || b.Cmp(a) != 1 || a.Cmp(a) != 0 || carried.Neg().Cmp(a) != -1 {
		t.Error("Cmp is wrong")
	}
	if a.Sign() != 1 || a.Neg().Sign() != -1 || (Pico{}).Sign() != 0 || !(Pico{}).IsZero() || a.IsZero() {
		t.Error("Sign/IsZero is wrong")
	}
	if got := MustParsePico("-1.5").Float64(); got != -1.5 {
		t.Errorf("Float64(-1.5) = %v", got)
	}
	if got := carried.BigInt().String(); got != "18446744073709551616" {
		t.Errorf("BigInt = %s", got)
	}
}

func mustInt128(t *testing.T, hi int64, lo uint64) Pico {
	t.Helper()
	p, err := FromInt128(hi, lo)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPicoOverflowSaturates(t *testing.T) {
	max := MustParsePico("99999999999999999999999999.999999999999")
	min := max.Neg()
	one := FromPicos(1)
	if max.Saturated() != true || min.Saturated() != true || one.Saturated() {
		t.Fatal("Saturated is wrong")
	}
	if max.Sub(one).Saturated() {
		t.Error("max − 1 is not saturated")
	}
	for name, got := range map[string]Pico{
		"max+1":       max.Add(one),
		"max+max":     max.Add(max), // wraps int128 without the check
		"max−min":     max.Sub(min),
		"(max−1)+2":   max.Sub(one).Add(FromPicos(2)),
		"max+big":     max.Add(MustParsePico("50000000000000000000000000")),
		"big+big+big": MustParsePico("60000000000000000000000000").Add(MustParsePico("60000000000000000000000000")),
	} {
		if got != max || !got.Saturated() {
			t.Errorf("%s = %s, want saturated at max", name, got)
		}
	}
	for name, got := range map[string]Pico{
		"min−1":   min.Sub(one),
		"min+min": min.Add(min),
		"min−max": min.Sub(max),
	} {
		if got != min || !got.Saturated() {
			t.Errorf("%s = %s, want saturated at min", name, got)
		}
	}
	if _, err := FromInt128(math.MaxInt64, math.MaxUint64); err == nil {
		t.Error("FromInt128 accepted 2^127 − 1")
	}
	if _, err := FromInt128(math.MinInt64, 0); err == nil {
		t.Error("FromInt128 accepted −2^127")
	}
	if p, err := FromInt128(min.Int128()); err != nil || p != min {
		t.Errorf("FromInt128(min) = %s, %v", p, err)
	}
}

func TestPicoText(t *testing.T) {
	type doc struct {
		Cost Pico `json:"cost"`
	}
	in := doc{Cost: MustParsePico("12.000000000345")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"cost":"12.000000000345"}` {
		t.Errorf("json = %s", b)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("json round trip = %v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"cost":"1e3"}`), &out); err == nil {
		t.Error("UnmarshalText accepted 1e3")
	}
	if got, _ := MustParsePico("-7").AppendText([]byte("x=")); string(got) != "x=-7.000000000000" {
		t.Errorf("AppendText = %s", got)
	}
}

func TestPicoAddAllocs(t *testing.T) {
	p, q := MustParsePico("1.5"), MustParsePico("0.000000000001")
	if n := testing.AllocsPerRun(100, func() { p = p.Add(q) }); n != 0 {
		t.Errorf("Add allocates %v times", n)
	}
}

func FuzzParsePico(f *testing.F) {
	for _, s := range []string{"0", "-1.5", "0.000000000001", "99999999999999999999999999.999999999999", "1e5", "+.", "18446744.073709551616"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePico(s)
		if err != nil {
			return
		}
		str := p.String()
		back, err := ParsePico(str)
		if err != nil || back != p {
			t.Fatalf("ParsePico(%q) = %s, which parses back as %s, %v", s, str, back, err)
		}
		if got := p.Decimal().StringFixed(PicoDigits); got != str {
			t.Fatalf("Decimal %s != String %s", got, str)
		}
		if sum := p.Add(p.Neg()); !sum.IsZero() {
			t.Fatalf("p + −p = %s", sum)
		}
	})
}
