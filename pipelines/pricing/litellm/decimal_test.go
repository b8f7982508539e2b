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
	_, err := shiftDecimal("2.9999900000000002e-06", 6) // 2.9999900000000002 per 1M
	var ie *InexactError
	if !errors.As(err, &ie) || ie.Digits != 16 {
		t.Fatalf("err = %v, want 16 fraction digits", err)
	}
}

// TestShiftDecimalAgainstBigRat compares the conversion of random numbers,
// written in every JSON form, with exact rational arithmetic.
func TestShiftDecimalAgainstBigRat(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		text := randomNumber(r)
		shift := 6
		if r.IntN(4) == 0 {
			shift = 0
		}
		got, err := shiftDecimal(text, shift)
		checkAgainstRat(t, text, shift, got, err)
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
	case !scaled.IsInt():
		if !errors.As(err, &ie) {
			t.Fatalf("shiftDecimal(%q) = %q, %v; want InexactError", text, got, err)
		}
	case x.Cmp(big.NewRat(pricing.MaxPriceUSD, 1)) > 0:
		if err != errTooLarge {
			t.Fatalf("shiftDecimal(%q) = %q, %v; want errTooLarge", text, got, err)
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

func FuzzShiftDecimal(f *testing.F) {
	for _, s := range []string{"3e-06", "1.25e-07", "3E-6", "0", "-0", "1e-19", "2.9999900000000002e-06", "1e999", "01", "1.", "5E+2"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, text string, perMillion bool) {
		shift := 0
		if perMillion {
			shift = 6
		}
		got, err := shiftDecimal(text, shift)
		// big.Rat would take long on huge exponents; those are checked by
		// the error's kind only.
		if i := strings.IndexAny(text, "eE"); i >= 0 && len(text)-i > 6 {
			if err == nil && got != "0" {
				if _, perr := pricing.ParsePico(got); perr != nil {
					t.Fatalf("shiftDecimal(%q) = %q, unparsable: %v", text, got, perr)
				}
			}
			return
		}
		checkAgainstRat(t, text, shift, got, err)
	})
}

func TestWholeNumber(t *testing.T) {
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
