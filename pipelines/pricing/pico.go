package pricing

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"strconv"

	"github.com/shopspring/decimal"
)

// PicoDigits is the number of fraction digits of a Pico: one Pico unit is
// 10^-12 USD, the scale of the ClickHouse column type Decimal(38,12).
const PicoDigits = 12

// Pico is an exact amount of money: a signed 128-bit count of 10^-12 USD
// (pico-dollars). Its range is that of ClickHouse Decimal(38,12):
// ±(10^26 − 10^-12) USD. The zero value is zero USD.
//
// Pico is a plain value (two machine words): comparable with ==, safe to copy
// and to use from any goroutine. Arithmetic never allocates and never wraps:
// a result outside the range saturates at the bound, which Saturated reports,
// so an overflowing sum is visible instead of silently wrong.
//
// The package also uses Pico for other quantities with 12 fraction digits:
// prices in USD per 1M tokens, per GPU-hour or per request, and discount
// rates (a fraction between 0 and 1).
type Pico struct {
	hi int64
	lo uint64
}

// maxPico is 10^38 − 1 units (10^26 USD − 1 pico-dollar), the largest value
// of Decimal(38,12).
var maxPico = Pico{hi: 0x4b3b4ca85a86c47a, lo: 0x098a223fffffffff}

// minPico is −maxPico.
var minPico = maxPico.neg()

// errPicoSyntax and errPicoRange are wrapped by ParsePico's errors.
var (
	errPicoSyntax = errors.New("not a decimal number")
	errPicoRange  = errors.New("out of range ±10^26")
)

// FromPicos returns n pico-dollars (n × 10^-12 USD).
func FromPicos(n int64) Pico {
	return Pico{hi: n >> 63, lo: uint64(n)}
}

// FromInt128 returns the Pico whose two's-complement 128-bit count of
// 10^-12 USD has the high word hi and the low word lo (the inverse of
// Int128). It fails when the value is outside ±(10^38 − 1) units.
func FromInt128(hi int64, lo uint64) (Pico, error) {
	p := Pico{hi: hi, lo: lo}
	if p.cmp(maxPico) > 0 || p.cmp(minPico) < 0 {
		return Pico{}, fmt.Errorf("cannot use 128-bit value %s as Pico: %w", p.bigInt(), errPicoRange)
	}
	return p, nil
}

// ParsePico parses a decimal number of USD such as "12", "-0.5" or
// "0.000123450000": an optional sign, at least one digit, and optionally a
// point followed by 1 to 12 digits. Exponents, separators, spaces and more
// than 12 fraction digits are rejected, so parsing is exact.
func ParsePico(s string) (Pico, error) {
	p, err := parsePico(s)
	if err != nil {
		return Pico{}, fmt.Errorf("cannot parse %q as a decimal: %w", truncate(s, 64), err)
	}
	return p, nil
}

// MustParsePico is ParsePico for constants known to be valid; it panics on a
// malformed value. Do not use it on user input.
func MustParsePico(s string) Pico {
	p, err := ParsePico(s)
	if err != nil {
		panic(err)
	}
	return p
}

func parsePico(s string) (Pico, error) {
	i, neg := 0, false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var x u128
	sig := 0 // significant integer digits (leading zeros do not count)
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if sig == 0 && s[i] == '0' {
			continue
		}
		if sig++; sig > 26 {
			return Pico{}, errPicoRange
		}
		x = x.mul64(10).add64(uint64(s[i] - '0'))
	}
	if i == start {
		return Pico{}, errPicoSyntax
	}
	var frac uint64
	fracDigits := 0
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if i-fs >= PicoDigits {
				return Pico{}, fmt.Errorf("more than %d fraction digits", PicoDigits)
			}
			frac = frac*10 + uint64(s[i]-'0')
		}
		fracDigits = i - fs
		if fracDigits == 0 {
			return Pico{}, errPicoSyntax
		}
	}
	if i != len(s) {
		return Pico{}, errPicoSyntax
	}
	for ; fracDigits < PicoDigits; fracDigits++ {
		frac *= 10
	}
	// x < 10^26, so x·10^12 + frac ≤ 10^38 − 1: always in range.
	x = x.mul64(1e12).add64(frac)
	p := Pico{hi: int64(x.hi), lo: x.lo}
	if neg {
		p = p.neg()
	}
	return p, nil
}

// Add returns p + q, saturated to the range of Decimal(38,12).
func (p Pico) Add(q Pico) Pico {
	lo, carry := bits.Add64(p.lo, q.lo, 0)
	hi := p.hi + q.hi + int64(carry)
	// Signed overflow of the 128-bit sum: both operands have the same sign
	// and the result has the other one. Only sums of saturated-size values
	// get here, but they must not wrap.
	if (p.hi^q.hi) >= 0 && (p.hi^hi) < 0 {
		if p.hi < 0 {
			return minPico
		}
		return maxPico
	}
	if hi > minPico.hi && hi < maxPico.hi { // far from the bounds: the common case
		return Pico{hi: hi, lo: lo}
	}
	return Pico{hi: hi, lo: lo}.clamp()
}

// Sub returns p − q, saturated to the range of Decimal(38,12).
func (p Pico) Sub(q Pico) Pico {
	return p.Add(q.neg()) // q is in range, so −q is too
}

// Neg returns −p.
func (p Pico) Neg() Pico { return p.neg() }

func (p Pico) neg() Pico {
	lo, borrow := bits.Sub64(0, p.lo, 0)
	return Pico{hi: -p.hi - int64(borrow), lo: lo}
}

func (p Pico) clamp() Pico {
	if p.hi > maxPico.hi || (p.hi == maxPico.hi && p.lo > maxPico.lo) {
		return maxPico
	}
	if p.hi < minPico.hi || (p.hi == minPico.hi && p.lo < minPico.lo) {
		return minPico
	}
	return p
}

// Cmp returns −1, 0 or +1 as p is less than, equal to or greater than q.
func (p Pico) Cmp(q Pico) int { return p.cmp(q) }

func (p Pico) cmp(q Pico) int {
	switch {
	case p.hi < q.hi:
		return -1
	case p.hi > q.hi:
		return 1
	case p.lo < q.lo:
		return -1
	case p.lo > q.lo:
		return 1
	}
	return 0
}

// Sign returns −1, 0 or +1 as p is negative, zero or positive.
func (p Pico) Sign() int {
	switch {
	case p.hi < 0:
		return -1
	case p.hi == 0 && p.lo == 0:
		return 0
	}
	return 1
}

// IsZero reports whether p is zero.
func (p Pico) IsZero() bool { return p.hi == 0 && p.lo == 0 }

// Saturated reports whether p is at a bound of the range, ±(10^26 − 10^-12)
// USD: the result of an overflowing Add or Sub. Treat it as an error.
func (p Pico) Saturated() bool { return p == maxPico || p == minPico }

// Int128 returns p as a two's-complement 128-bit count of 10^-12 USD split
// into its high and low 64-bit words (the layout of ClickHouse's Decimal128).
func (p Pico) Int128() (hi int64, lo uint64) { return p.hi, p.lo }

// BigInt returns p as a new big.Int count of 10^-12 USD.
func (p Pico) BigInt() *big.Int { return p.bigInt() }

func (p Pico) bigInt() *big.Int {
	neg := p.hi < 0
	m := p
	if neg {
		m = p.neg()
	}
	var b big.Int
	b.SetUint64(uint64(m.hi))
	b.Lsh(&b, 64)
	b.Or(&b, new(big.Int).SetUint64(m.lo))
	if neg {
		b.Neg(&b)
	}
	return &b
}

// Decimal returns p as a shopspring decimal with exponent −12, the value
// clickhouse-go accepts for a Decimal(38,12) column. It allocates.
func (p Pico) Decimal() decimal.Decimal {
	return decimal.NewFromBigInt(p.bigInt(), -PicoDigits)
}

// Float64 returns p in USD as the nearest float64. For display only: never
// sum or store the result.
func (p Pico) Float64() float64 {
	neg := p.hi < 0
	m := p
	if neg {
		m = p.neg()
	}
	u := u128{hi: uint64(m.hi), lo: m.lo}
	whole, frac := u.div64(1e12)
	f := float64(whole.hi)*0x1p64 + float64(whole.lo) + float64(frac)/1e12
	if neg {
		f = -f
	}
	return f
}

// String returns p in USD with exactly 12 fraction digits, e.g.
// "0.000123450000" or "-3.000000000000".
func (p Pico) String() string {
	var buf [48]byte
	return string(p.appendText(buf[:0]))
}

// AppendText appends the String form of p to b. It never fails; it
// implements encoding.TextAppender.
func (p Pico) AppendText(b []byte) ([]byte, error) { return p.appendText(b), nil }

// MarshalText returns the String form of p; it implements encoding.TextMarshaler,
// so JSON carries the exact decimal as a string.
func (p Pico) MarshalText() ([]byte, error) { return p.appendText(nil), nil }

// UnmarshalText parses text with ParsePico; it implements encoding.TextUnmarshaler.
func (p *Pico) UnmarshalText(text []byte) error {
	v, err := ParsePico(string(text))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

func (p Pico) appendText(b []byte) []byte {
	m := p
	if p.hi < 0 {
		b = append(b, '-')
		m = p.neg()
	}
	whole, frac := u128{hi: uint64(m.hi), lo: m.lo}.div64(1e12)
	if whole.hi == 0 {
		b = strconv.AppendUint(b, whole.lo, 10)
	} else {
		// whole < 10^26, so whole / 10^19 fits in one word.
		q, r := whole.div64(1e19)
		b = strconv.AppendUint(b, q.lo, 10)
		b = appendPadded(b, r, 19)
	}
	b = append(b, '.')
	return appendPadded(b, frac, PicoDigits)
}

// appendPadded appends v in decimal, left-padded with zeros to width digits.
func appendPadded(b []byte, v uint64, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for ; width > 0; width-- {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[i:]...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// u128 is an unsigned 128-bit integer, used for intermediate cost arithmetic.
type u128 struct{ hi, lo uint64 }

func (x u128) add(y u128) u128 {
	lo, c := bits.Add64(x.lo, y.lo, 0)
	return u128{hi: x.hi + y.hi + c, lo: lo}
}

func (x u128) add64(y uint64) u128 {
	lo, c := bits.Add64(x.lo, y, 0)
	return u128{hi: x.hi + c, lo: lo}
}

// mul64 returns x·y modulo 2^128; callers keep the operands small enough.
func (x u128) mul64(y uint64) u128 {
	hi, lo := bits.Mul64(x.lo, y)
	return u128{hi: hi + x.hi*y, lo: lo}
}

// div64 returns x / d and x % d; d must not be zero.
func (x u128) div64(d uint64) (u128, uint64) {
	qhi, r := x.hi/d, x.hi%d
	qlo, r := bits.Div64(r, x.lo, d)
	return u128{hi: qhi, lo: qlo}, r
}

func (x u128) less(y u128) bool { return x.hi < y.hi || (x.hi == y.hi && x.lo < y.lo) }

// mul64to192 returns x·y as a 192-bit number (top, mid, low words).
func mul64to192(x u128, y uint64) (w2, w1, w0 uint64) {
	h0, l0 := bits.Mul64(x.lo, y)
	h1, l1 := bits.Mul64(x.hi, y)
	w0 = l0
	w1, c := bits.Add64(h0, l1, 0)
	w2 = h1 + c
	return w2, w1, w0
}
