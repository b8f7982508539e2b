package litellm

import (
	"encoding/json"
	"errors"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

func TestShiftDecimal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in    string
		shift int
		want  string // "" with err
		err   error  // errInexact stands for any *InexactError
	}{
		{"3e-06", 6, "3", nil},
		{"3E-6", 6, "3", nil},
		{"3e-6", 6, "3", nil},
		{"1.25e-07", 6, "0.125", nil},
		{"1.25E-07", 6, "0.125", nil},
		{"2.5e-06", 6, "2.5", nil},
		{"0.0000025", 6, "2.5", nil},
		{"0.000002500000", 6, "2.5", nil},
		{"1.0e-6", 6, "1", nil},
		{"100e-8", 6, "1", nil},
		{"12e-7", 6, "1.2", nil},
		{"7.5e-08", 6, "0.075", nil},
		{"6.25e-08", 6, "0.0625", nil},
		{"1e-18", 6, "0.000000000001", nil},
		{"1.5e-05", 6, "15", nil},
		{"0.00001", 6, "10", nil},
		{"1", 6, "1000000", nil}, // MaxPriceUSD exactly
		{"1.0", 6, "1000000", nil},
		{"0", 6, "0", nil},
		{"0.0", 6, "0", nil},
		{"-0", 6, "0", nil},
		{"-0.0e-5", 6, "0", nil},
		{"0e999999999999999999999", 6, "0", nil},
		{"0.005", 0, "0.005", nil},
		{"5E+2", 0, "500", nil},
		{"5e+2", 6, "", errTooLarge},
		{"1.000001", 6, "", errTooLarge},
		{"1000000.000001", 0, "", errTooLarge},
		{"1000000", 0, "1000000", nil},
		{"1e999999999999999999999", 6, "", errTooLarge},
		{"1e-19", 6, "", errInexact},
		{"1e-30", 6, "", errInexact},
		{"1e-999999999999999999999", 6, "", errInexact},
		{"1.0000000000000000001", 6, "", errTooLarge}, // too large before inexact
		{"2.9999900000000002e-06", 6, "", errInexact},
		{"0.0000000000001", 0, "", errInexact},
		{"-1e-6", 6, "", errNegative},
		{"-3", 0, "", errNegative},
		{"", 6, "", errNotNumber},
		{"-", 6, "", errNotNumber},
		{"+1", 6, "", errNotNumber},
		{"01", 6, "", errNotNumber},
		{"1.", 6, "", errNotNumber},
		{".5", 6, "", errNotNumber},
		{"1e", 6, "", errNotNumber},
		{"1e+", 6, "", errNotNumber},
		{"1e-6x", 6, "", errNotNumber},
		{"0x10", 6, "", errNotNumber},
		{"NaN", 6, "", errNotNumber},
		{"Infinity", 6, "", errNotNumber},
		{"1 ", 6, "", errNotNumber},
		{"1_000", 6, "", errNotNumber},
	} {
		got, err := shiftDecimal(tc.in, tc.shift)
		switch {
		case tc.err == errInexact:
			var ie *InexactError
			if !errors.As(err, &ie) || ie.Digits <= pricing.PicoDigits {
				t.Errorf("shiftDecimal(%q, %d) = %q, %v; want an InexactError", tc.in, tc.shift, got, err)
			}
		case tc.err != nil:
			if err != tc.err {
				t.Errorf("shiftDecimal(%q, %d) = %q, %v; want %v", tc.in, tc.shift, got, err, tc.err)
			}
		case err != nil || got != tc.want:
			t.Errorf("shiftDecimal(%q, %d) = %q, %v; want %q", tc.in, tc.shift, got, err, tc.want)
		}
	}
}

// errInexact marks the test cases that want an *InexactError.
var errInexact = errors.New("inexact")

func TestInexactDigits(t *testing.T) {
	t.Parallel()
	_, err := shiftDecimal("2.9999900000000002e-06", 6) // 2.9999900000000002 per 1M
	var ie *InexactError
	if !errors.As(err, &ie) || ie.Digits != 16 {
		t.Fatalf("err = %v, want 16 fraction digits", err)
	}
}

func TestRoundDecimal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		shift   int
		want    string // "" with err
		rounded bool
		err     error
	}{
		// The float artefacts of the 2026-07-24 snapshot (databricks).
		{"2.9999900000000002e-06", 6, "2.99999", true, nil},
		{"1.5000020000000002e-05", 6, "15.00002", true, nil},
		{"7.500003000000001e-05", 6, "75.00003", true, nil},
		{"3.0001999999999996e-07", 6, "0.30002", true, nil},
		{"2.4997000000000006e-07", 6, "0.24997", true, nil},
		{"9.999990000000002e-06", 6, "9.99999", true, nil},
		// Exact prices are not rounded.
		{"3e-06", 6, "3", false, nil},
		{"1e-18", 6, "0.000000000001", false, nil},
		{"0.005", 0, "0.005", false, nil},
		{"0", 6, "0", false, nil},
		// Half to even, on the exact decimal value of the text.
		{"5e-19", 6, "0", true, nil}, // 0.5e-12: to even 0
		{"5.000000000000000001e-19", 6, "0.000000000001", true, nil},
		{"1.5e-18", 6, "0.000000000002", true, nil}, // 1.5e-12: to even 2
		{"2.5e-18", 6, "0.000000000002", true, nil}, // 2.5e-12: to even 2
		{"2.50001e-18", 6, "0.000000000003", true, nil},
		{"4.9999e-19", 6, "0", true, nil},
		{"1e-19", 6, "0", true, nil},
		{"1e-999999999999999999999", 6, "0", true, nil},
		{"0.0000000000005", 0, "0", true, nil},
		{"0.0000000000015", 0, "0.000000000002", true, nil},
		{"123.4567891234565", 0, "123.456789123456", true, nil},
		{"123.4567891234575", 0, "123.456789123458", true, nil},
		{"123.45678912345650000000001", 0, "123.456789123457", true, nil},
		// A carry through every digit.
		{"9.9999999999999999e-06", 6, "10", true, nil},
		{"0.9999999999999999995", 6, "1000000", true, nil},
		{"999999.9999999999995", 0, "1000000", true, nil},
		// Bounds and errors are those of shiftDecimal.
		{"1.0000000000000000001", 6, "", false, errTooLarge},
		{"1000000.0000000000001", 0, "", false, errTooLarge},
		{"12345678.0000000000001", 0, "", false, errTooLarge},
		{"-1e-30", 6, "", false, errNegative},
		{"1e-30x", 6, "", false, errNotNumber},
	} {
		got, rounded, err := roundDecimal(tc.in, tc.shift)
		if err != tc.err || got != tc.want || rounded != tc.rounded {
			t.Errorf("roundDecimal(%q, %d) = %q, %v, %v; want %q, %v, %v", tc.in, tc.shift, got, rounded, err, tc.want, tc.rounded, tc.err)
		}
	}
}

// TestShiftDecimalAgainstBigRat compares the conversion of random numbers,
// written in every JSON form, with exact rational arithmetic, strict and
// rounding.
func TestShiftDecimalAgainstBigRat(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		text := randomNumber(r)
		shift := 6
		if r.IntN(4) == 0 {
			shift = 0
		}
		got, err := shiftDecimal(text, shift)
		checkAgainstRat(t, text, shift, got, err)
		got, rounded, err := roundDecimal(text, shift)
		checkRoundAgainstRat(t, text, shift, got, rounded, err)
	}
}

func randomNumber(r *rand.Rand) string {
	var b strings.Builder
	if r.IntN(10) == 0 {
		b.WriteString("-")
	}
	mant := strconv.FormatUint(r.Uint64N(1_000_000_000), 10)
	switch r.IntN(3) {
	case 0:
		b.WriteString(mant)
	case 1:
		b.WriteString(mant[:1])
		if len(mant) > 1 {
			b.WriteString(".")
			b.WriteString(mant[1:])
		}
	default:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", r.IntN(8)))
		b.WriteString(mant)
	}
	if r.IntN(2) == 0 {
		b.WriteString([]string{"e", "E"}[r.IntN(2)])
		b.WriteString([]string{"", "+", "-", "-"}[r.IntN(4)])
		b.WriteString(strconv.Itoa(r.IntN(25)))
	}
	return b.String()
}

// checkAgainstRat checks shiftDecimal's answer for text with big.Rat.
func checkAgainstRat(t *testing.T, text string, shift int, got string, err error) {
	t.Helper()
	isNumber := json.Valid([]byte(text)) && strings.TrimSpace(text) == text && text != "" &&
		(text[0] == '-' || isDigit(text[0]))
	x, ok := new(big.Rat).SetString(text)
	if !ok || !isNumber {
		if err != errNotNumber {
			t.Fatalf("shiftDecimal(%q) = %q, %v; want errNotNumber", text, got, err)
		}
		return
	}
	x.Mul(x, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(shift)), nil)))
	scaled := new(big.Rat).Mul(x, new(big.Rat).SetInt64(1e12))
	var ie *InexactError
	switch {
	case x.Sign() < 0:
		if err != errNegative {
			t.Fatalf("shiftDecimal(%q) = %q, %v; want errNegative", text, got, err)
		}
	case x.Cmp(big.NewRat(pricing.MaxPriceUSD, 1)) > 0: // inexact or not
		if err != errTooLarge {
			t.Fatalf("shiftDecimal(%q) = %q, %v; want errTooLarge", text, got, err)
		}
	case !scaled.IsInt():
		if !errors.As(err, &ie) {
			t.Fatalf("shiftDecimal(%q) = %q, %v; want InexactError", text, got, err)
		}
	default:
		if err != nil {
			t.Fatalf("shiftDecimal(%q) = %v", text, err)
		}
		g, ok := new(big.Rat).SetString(got)
		if !ok || g.Cmp(x) != 0 {
			t.Fatalf("shiftDecimal(%q, %d) = %q, want %s", text, shift, got, x.FloatString(12))
		}
		if p, err := pricing.ParsePico(got); err != nil || p.Sign() < 0 {
			t.Fatalf("shiftDecimal(%q) = %q, which the catalog cannot parse: %v", text, got, err)
		}
		// Canonical: no exponent, no leading zero but one, no trailing zeros.
		if strings.ContainsAny(got, "eE+-") || (strings.Contains(got, ".") && strings.HasSuffix(got, "0")) ||
			(len(got) > 1 && got[0] == '0' && got[1] != '.') {
			t.Fatalf("shiftDecimal(%q) = %q, not canonical", text, got)
		}
	}
}

// checkRoundAgainstRat checks roundDecimal's answer for text with big.Rat:
// the value·10^shift rounded half to even to a multiple of 10^-12
// (roundPico), rounded reporting whether that changed it.
func checkRoundAgainstRat(t *testing.T, text string, shift int, got string, rounded bool, err error) {
	t.Helper()
	isNumber := json.Valid([]byte(text)) && strings.TrimSpace(text) == text && text != "" &&
		(text[0] == '-' || isDigit(text[0]))
	x, ok := new(big.Rat).SetString(text)
	if !ok || !isNumber {
		if err != errNotNumber {
			t.Fatalf("roundDecimal(%q) = %q, %v; want errNotNumber", text, got, err)
		}
		return
	}
	x.Mul(x, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(shift)), nil)))
	switch {
	case x.Sign() < 0:
		if err != errNegative {
			t.Fatalf("roundDecimal(%q) = %q, %v; want errNegative", text, got, err)
		}
	case x.Cmp(big.NewRat(pricing.MaxPriceUSD, 1)) > 0:
		if err != errTooLarge {
			t.Fatalf("roundDecimal(%q) = %q, %v; want errTooLarge", text, got, err)
		}
	default:
		want := roundPico(x)
		if err != nil {
			t.Fatalf("roundDecimal(%q) = %v", text, err)
		}
		g, ok := new(big.Rat).SetString(got)
		if !ok || g.Cmp(want) != 0 || rounded != (want.Cmp(x) != 0) {
			t.Fatalf("roundDecimal(%q, %d) = %q, %v; want %s, %v", text, shift, got, rounded, want.FloatString(12), want.Cmp(x) != 0)
		}
		if p, err := pricing.ParsePico(got); err != nil || p.Sign() < 0 {
			t.Fatalf("roundDecimal(%q) = %q, which the catalog cannot parse: %v", text, got, err)
		}
		if strings.ContainsAny(got, "eE+-") || (strings.Contains(got, ".") && strings.HasSuffix(got, "0")) ||
			(len(got) > 1 && got[0] == '0' && got[1] != '.') {
			t.Fatalf("roundDecimal(%q) = %q, not canonical", text, got)
		}
	}
}

func FuzzShiftDecimal(f *testing.F) {
	for _, s := range []string{"3e-06", "1.25e-07", "3E-6", "0", "-0", "1e-19", "2.9999900000000002e-06", "1e999", "01", "1.", "5E+2",
		"5e-19", "1.5e-18", "0.9999999999999999995", "9.9999999999999999e-06", "1.0000000000000000001"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, text string, perMillion bool) {
		shift := 0
		if perMillion {
			shift = 6
		}
		got, err := shiftDecimal(text, shift)
		rgot, rounded, rerr := roundDecimal(text, shift)
		// Rounding changes only what strict conversion calls inexact.
		var ie *InexactError
		if errors.As(err, &ie) {
			if !rounded || rerr != nil {
				t.Fatalf("roundDecimal(%q) = %q, %v, %v; want it rounded, as shiftDecimal says %v", text, rgot, rounded, rerr, err)
			}
		} else if rerr != err || rgot != got || rounded {
			t.Fatalf("roundDecimal(%q) = %q, %v, %v; shiftDecimal %q, %v", text, rgot, rounded, rerr, got, err)
		}
		// big.Rat would take long on huge exponents; those are checked by
		// the error's kind only.
		if i := strings.IndexAny(text, "eE"); i >= 0 && len(text)-i > 6 {
			for _, s := range []string{got, rgot} {
				if s != "" && s != "0" {
					if _, perr := pricing.ParsePico(s); perr != nil {
						t.Fatalf("conversion of %q = %q, unparsable: %v", text, s, perr)
					}
				}
			}
			return
		}
		checkAgainstRat(t, text, shift, got, err)
		checkRoundAgainstRat(t, text, shift, rgot, rounded, rerr)
	})
}

func TestWholeNumber(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"0": 0, "256000": 256000, "256000.0": 256000, "2.56e5": 256000, "1e12": 1e12, "-0": 0} {
		if got, ok := wholeNumber(in); !ok || got != want {
			t.Errorf("wholeNumber(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"1.5", "-1", "1e13", "1e-1", "x", "", "1e999999999999999999"} {
		if got, ok := wholeNumber(in); ok {
			t.Errorf("wholeNumber(%q) = %d, want failure", in, got)
		}
	}
}
