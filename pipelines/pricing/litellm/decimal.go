package litellm

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// Why a price cannot be converted.
var (
	errNotNumber = errors.New("not a JSON number")
	errNegative  = errors.New("negative")
	errTooLarge  = fmt.Errorf("exceeds the catalog's maximum of %d", pricing.MaxPriceUSD)
)

// InexactError is a price that a catalog cannot hold exactly: after the
// conversion it has more than pricing.PicoDigits fraction digits. Import
// rounds such a price (half to even, to pricing.PicoDigits digits) unless
// Options.Strict, where it fails with this error.
type InexactError struct {
	// Digits is the number of fraction digits the converted price needs.
	Digits int
}

func (e *InexactError) Error() string {
	return fmt.Sprintf("has %d fraction digits after the conversion, more than the catalog's %d (strict mode: not rounded)",
		e.Digits, pricing.PicoDigits)
}

// maxIntDigits is the number of digits of pricing.MaxPriceUSD (1 000 000).
const maxIntDigits = 7

// shiftDecimal converts num, the text of a JSON number, to the decimal text
// of num·10^shift: shift 6 turns a LiteLLM per-token price into USD per 1M
// tokens, shift 0 keeps a per-request price. The conversion works on the
// digits, never through floating point, so 1.25e-07 becomes "0.125" and
// 3E-6 "3". The result is the shortest decimal text of the value (no
// exponent, no leading or trailing zeros: "0", "2.5", "15", "0.075").
//
// It fails for text that is not a JSON number, for negative values (-0 is
// 0), for values above pricing.MaxPriceUSD and, with an *InexactError, for
// values with more than pricing.PicoDigits fraction digits.
func shiftDecimal(num string, shift int) (string, error) {
	s, _, err := convertDecimal(num, shift, false)
	return s, err
}

// roundDecimal is shiftDecimal, except that a value with more than
// pricing.PicoDigits fraction digits is rounded half to even to
// pricing.PicoDigits fraction digits (decimal rounding of the exact value
// of the text, never through floating point) instead of failing; rounded
// reports it. 2.9999900000000002e-06 with shift 6 is "2.99999", rounded; a
// value below half of 10^-PicoDigits rounds to "0".
func roundDecimal(num string, shift int) (s string, rounded bool, err error) {
	return convertDecimal(num, shift, true)
}

func convertDecimal(num string, shift int, round bool) (string, bool, error) {
	digits, e, neg, err := parseNumber(num)
	if err != nil {
		return "", false, err
	}
	if digits == "" {
		return "0", false, nil // 0, -0, 0.000e5 …
	}
	if neg {
		return "", false, errNegative
	}
	e += int64(shift)
	rounded := false
	if -e > pricing.PicoDigits {
		// The value has a nonzero fraction digit (digits has no trailing
		// zeros), so an integer part of 7 digits or more is above
		// MaxPriceUSD whatever the rounding.
		if int64(len(digits))+e >= maxIntDigits {
			return "", false, errTooLarge
		}
		if !round {
			fd := -e
			if fd > 1<<30 {
				fd = 1 << 30
			}
			return "", false, &InexactError{Digits: int(fd)}
		}
		digits, e = roundHalfEven(digits, e, pricing.PicoDigits)
		rounded = true
		if digits == "" {
			return "0", true, nil
		}
	}
	var intText, fracText string
	switch {
	case e >= 0:
		if int64(len(digits))+e > maxIntDigits {
			return "", false, errTooLarge
		}
		intText = digits + strings.Repeat("0", int(e))
	default:
		fd := -e // at most PicoDigits here
		if int64(len(digits)) > fd {
			intText, fracText = digits[:int64(len(digits))-fd], digits[int64(len(digits))-fd:]
		} else {
			intText, fracText = "0", strings.Repeat("0", int(fd)-len(digits))+digits
		}
	}
	if len(intText) > maxIntDigits || len(intText) == maxIntDigits && (intText > "1000000" || fracText != "") {
		return "", false, errTooLarge
	}
	if fracText == "" {
		return intText, rounded, nil
	}
	return intText + "." + fracText, rounded, nil
}

// roundHalfEven rounds digits·10^e, with digits as parseNumber returns
// them (no leading or trailing zeros) and -e > places, half to even to a
// multiple of 10^-places. It returns the result in the same form: "" for
// zero.
func roundHalfEven(digits string, e int64, places int) (string, int64) {
	drop := -e - int64(places) // > 0: the digits below 10^-places
	n := int64(len(digits))
	if drop > n {
		return "", 0 // below a tenth of 10^-places
	}
	kept := digits[:n-drop]
	first, rest := digits[n-drop], digits[n-drop+1:]
	// rest, when not empty, is nonzero: digits has no trailing zeros.
	odd := kept != "" && (kept[len(kept)-1]-'0')%2 == 1
	if first > '5' || first == '5' && (rest != "" || odd) {
		kept = increment(kept)
	}
	trimmed := strings.TrimRight(kept, "0")
	if trimmed == "" {
		return "", 0
	}
	return trimmed, -int64(places) + int64(len(kept)-len(trimmed))
}

// increment adds one to the decimal digits s ("" is 0).
func increment(s string) string {
	b := []byte(s)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != '9' {
			b[i]++
			return string(b)
		}
		b[i] = '0'
	}
	return "1" + string(b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseNumber splits the text of a JSON number into its significant digits
// (no leading or trailing zeros; "" for zero) and a power of ten e, so that
// the value is ±digits·10^e. e is exact for |exponents| up to 10^12 and
// clamped beyond, where every nonzero value is out of any range we accept.
func parseNumber(num string) (digits string, e int64, neg bool, err error) {
	s := num
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	// JSON grammar: int ("0" or [1-9][0-9]*), optional frac, optional exp.
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[:i]
	if intPart == "" || (len(intPart) > 1 && intPart[0] == '0') {
		return "", 0, false, errNotNumber
	}
	fracPart := ""
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		fracPart = s[i+1 : j]
		if fracPart == "" {
			return "", 0, false, errNotNumber
		}
		i = j
	}
	var exp int64
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		expNeg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg = s[i] == '-'
			i++
		}
		j := i
		for i < len(s) && isDigit(s[i]) {
			if exp < 1e12 {
				exp = exp*10 + int64(s[i]-'0')
			}
			i++
		}
		if i == j {
			return "", 0, false, errNotNumber
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != len(s) {
		return "", 0, false, errNotNumber
	}
	digits = strings.TrimLeft(intPart+fracPart, "0")
	if digits == "" {
		return "", 0, neg, nil
	}
	e = exp - int64(len(fracPart))
	trimmed := strings.TrimRight(digits, "0")
	e += int64(len(digits) - len(trimmed))
	return trimmed, e, neg, nil
}

// wholeNumber returns the value of the text of a JSON number that is a
// whole number in [0, 10^12].
func wholeNumber(num string) (int64, bool) {
	digits, e, neg, err := parseNumber(num)
	if err != nil || e < 0 || (neg && digits != "") || int64(len(digits))+e > 13 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(digits); i++ {
		n = n*10 + int64(digits[i]-'0')
	}
	for ; e > 0; e-- {
		n *= 10
	}
	return n, n <= 1e12
}

// scaleDecimal returns x·num/den, decimal texts in the canonical form,
// rounded half to even to pricing.PicoDigits fraction digits; false when
// den is zero or a text is not a decimal.
func scaleDecimal(x, num, den string) (string, bool) {
	var rx, rn, rd big.Rat
	if _, ok := rx.SetString(x); !ok {
		return "", false
	}
	if _, ok := rn.SetString(num); !ok {
		return "", false
	}
	if _, ok := rd.SetString(den); !ok || rd.Sign() == 0 {
		return "", false
	}
	rx.Mul(&rx, &rn)
	rx.Quo(&rx, &rd)
	// Half to even at PicoDigits: scale, round the integer, scale back.
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(pricing.PicoDigits), nil)
	v := new(big.Rat).Mul(&rx, new(big.Rat).SetInt(scale))
	q, r := new(big.Int).QuoRem(v.Num(), v.Denom(), new(big.Int))
	twice := new(big.Int).Mul(r, big.NewInt(2))
	if c := twice.CmpAbs(v.Denom()); c > 0 || c == 0 && q.Bit(0) == 1 {
		q.Add(q, big.NewInt(int64(v.Num().Sign())))
	}
	out := new(big.Rat).SetFrac(q, scale).FloatString(pricing.PicoDigits)
	if strings.Contains(out, ".") {
		out = strings.TrimRight(strings.TrimRight(out, "0"), ".")
	}
	return out, true
}
