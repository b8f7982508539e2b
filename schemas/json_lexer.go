package schemas

// The JSON lexer of the Decoder: whitespace, strings (with escapes), numbers,
// skipping unknown values, and syntax errors with their byte offset.

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// maxSkipDepth is the nesting limit in skipped values, as in encoding/json.
const maxSkipDepth = 10000

func skipWS(data []byte, i int) int {
	for i < len(data) {
		c := data[i]
		if c > ' ' || (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
			return i
		}
		i++
	}
	return i
}

// strPlain marks the bytes that stand for themselves inside a JSON string and
// are ASCII.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString scans the JSON string whose opening quote is data[i]. It returns
// the unescaped content, the index after the closing quote, and whether the
// content has bytes ≥ 0x80 (the caller decides whether to check UTF-8). The
// content aliases data when the string has no escapes, else d.scratch.
func (d *Decoder) scanString(data []byte, i int) ([]byte, int, bool, error) {
	start := i + 1
	nonASCII := false
	j := start
	for {
		// Skip plain ASCII eight bytes at a time (SWAR): find the first byte
		// that is '"', '\\', a control character or ≥ 0x80. Borrows in the
		// subtractions can only mark bytes above a real match, so the lowest
		// marked byte is exact.
		for len(data)-j >= 8 {
			w := binary.LittleEndian.Uint64(data[j:])
			q := w ^ (lsb * '"')
			s := w ^ (lsb * '\\')
			m := ((q - lsb) &^ q) | ((s - lsb) &^ s) | ((w - lsb*0x20) &^ w) | w
			if m &= msb; m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		if j >= len(data) {
			break
		}
		c := data[j]
		if c == '"' {
			return data[start:j], j + 1, nonASCII, nil
		}
		if strPlain[c] {
			j++
			continue
		}
		switch {
		case c == '\\':
			return d.scanEscaped(data, start, j, nonASCII)
		case c < 0x20:
			return nil, j, false, syntaxErr(data, j, "control character in string (must be escaped)")
		}
		nonASCII = true
		j++
	}
	return nil, len(data), false, syntaxErr(data, len(data), "unterminated string")
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// scanEscaped continues scanString from the first backslash at data[j],
// unescaping into d.scratch.
func (d *Decoder) scanEscaped(data []byte, start, j int, nonASCII bool) ([]byte, int, bool, error) {
	buf := append(d.scratch[:0], data[start:j]...)
	for j < len(data) {
		c := data[j]
		switch {
		case c == '"':
			d.scratch = buf
			return buf, j + 1, nonASCII, nil
		case c < 0x20:
			d.scratch = buf
			return nil, j, false, syntaxErr(data, j, "control character in string (must be escaped)")
		case c != '\\':
			if c >= 0x80 {
				nonASCII = true
			}
			buf = append(buf, c)
			j++
			continue
		}
		if j+1 >= len(data) {
			break
		}
		switch data[j+1] {
		case '"', '\\', '/':
			buf = append(buf, data[j+1])
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r := hex4(data, j+2)
			if r < 0 {
				d.scratch = buf
				return nil, j, false, &SyntaxError{Offset: j, Msg: `invalid \u escape in string (want 4 hex digits)`}
			}
			j += 6
			if utf16.IsSurrogate(r) {
				// A valid pair is consumed whole; anything else gives U+FFFD
				// and leaves a following escape to be read on its own.
				if j+1 < len(data) && data[j] == '\\' && data[j+1] == 'u' {
					if r2 := hex4(data, j+2); r2 >= 0 {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							r = dec
							j += 6
						}
					}
				}
				if utf16.IsSurrogate(r) {
					r = utf8.RuneError
					d.lones++
				}
			}
			if r >= 0x80 {
				nonASCII = true
			}
			buf = utf8.AppendRune(buf, r)
			continue
		default:
			d.scratch = buf
			return nil, j, false, syntaxErr(data, j+1, "invalid escape in string")
		}
		j += 2
	}
	d.scratch = buf
	return nil, len(data), false, syntaxErr(data, len(data), "unterminated string")
}

// hex4 decodes the four hex digits at data[i:i+4], or returns -1.
func hex4(data []byte, i int) rune {
	if len(data)-i < 4 {
		return -1
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case c-'0' <= 9:
			c -= '0'
		case c|0x20-'a' <= 'f'-'a':
			c = c | 0x20 - 'a' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// scanNumber checks the JSON number grammar at data[i] and returns the index
// after the number.
func scanNumber(data []byte, i int) (int, error) {
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return i, syntaxErr(data, i, "invalid number, expected a digit")
	case data[i] == '0':
		i++
	case data[i]-'1' <= 8:
		for i++; i < len(data) && data[i]-'0' <= 9; i++ {
		}
	default:
		return i, syntaxErr(data, i, "invalid number, expected a digit")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || data[i]-'0' > 9 {
			return i, syntaxErr(data, i, "invalid number, expected a digit after '.'")
		}
		for i < len(data) && data[i]-'0' <= 9 {
			i++
		}
	}
	if i < len(data) && data[i]|0x20 == 'e' {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || data[i]-'0' > 9 {
			return i, syntaxErr(data, i, "invalid number, expected a digit in the exponent")
		}
		for i < len(data) && data[i]-'0' <= 9 {
			i++
		}
	}
	return i, nil
}

// intValue parses the JSON number at data[i] (which starts with '-' or a
// digit) as an int64. A number that is valid JSON but not an acceptable
// integer returns a non-empty reason; malformed JSON returns a *SyntaxError.
func intValue(data []byte, i int) (v int64, next int, reason string, err error) {
	j := i
	neg := data[j] == '-'
	if neg {
		j++
	}
	start := j
	var u uint64
	for j < len(data) && data[j]-'0' <= 9 && j-start < 18 {
		u = u*10 + uint64(data[j]-'0')
		j++
	}
	n := j - start
	if n > 0 && (n == 1 || data[start] != '0') &&
		(j >= len(data) || (data[j]-'0' > 9 && data[j] != '.' && data[j]|0x20 != 'e')) {
		// Fast path: at most 18 digits, no fraction or exponent.
		v = int64(u)
		if neg {
			v = -v
		}
		return v, j, "", nil
	}
	// Slow path: long numbers, fractions and exponents, and syntax errors.
	next, err = scanNumber(data, i)
	if err != nil {
		return 0, next, "", err
	}
	f, _ := strconv.ParseFloat(unsafeString(data[i:next]), 64)
	switch {
	case f != math.Trunc(f): // also NaN, which cannot occur
		return 0, next, "must be an integer", nil
	case f > MaxTokens*1e6: // far beyond every limit; avoids int64 overflow
		return 0, next, "out of range", nil
	case f < -MaxTokens*1e6:
		return 0, next, "out of range", nil
	}
	return int64(f), next, "", nil
}

// pow10 holds the powers of ten that are exact in a float64.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// floatValue parses the JSON number at data[i] (which starts with '-' or a
// digit). Plain decimals of at most 15 significant digits take an exact fast
// path: the digits form an integer below 2^53 and dividing it by an exact
// power of ten is one correctly rounded IEEE operation, the same result
// strconv.ParseFloat gives. Everything else goes to strconv.ParseFloat.
func floatValue(data []byte, i int) (float64, int, error) {
	j := i
	neg := data[j] == '-'
	if neg {
		j++
	}
	start := j
	var mant uint64
	for j < len(data) && data[j]-'0' <= 9 {
		mant = mant*10 + uint64(data[j]-'0')
		j++
	}
	intDigits := j - start
	fracDigits := 0
	if j < len(data) && data[j] == '.' {
		j++
		fs := j
		for j < len(data) && data[j]-'0' <= 9 {
			mant = mant*10 + uint64(data[j]-'0')
			j++
		}
		fracDigits = j - fs
		if fracDigits == 0 {
			j = -1 // malformed: let scanNumber report it
		}
	}
	if j >= 0 && intDigits > 0 && intDigits+fracDigits <= 15 && (intDigits == 1 || data[start] != '0') &&
		(j >= len(data) || data[j]|0x20 != 'e') {
		f := float64(mant) / pow10[fracDigits]
		if neg {
			f = -f
		}
		return f, j, nil
	}
	next, err := scanNumber(data, i)
	if err != nil {
		return 0, next, err
	}
	// The syntax is valid, so the only possible error is ErrRange: ±Inf for
	// overflow (the caller reports it), or a correctly rounded tiny value.
	f, _ := strconv.ParseFloat(unsafeString(data[i:next]), 64)
	return f, next, nil
}

func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// skipValue checks the syntax of the JSON value at data[i] (not whitespace)
// and returns the index after it. It does not recurse: open containers are
// kept on d.stack, at most maxSkipDepth deep.
func (d *Decoder) skipValue(data []byte, i int) (int, error) {
	stack := d.stack[:0]
	defer func() { d.stack = stack[:0] }()
	for {
		// data[i] starts a value.
		if i >= len(data) {
			return i, syntaxErr(data, i, "expected a value")
		}
		switch c := data[i]; {
		case c == '"':
			_, next, nonASCII, err := d.scanString(data, i)
			if err != nil {
				return next, err
			}
			if nonASCII && !utf8.Valid(data[i:next]) {
				return next, &SyntaxError{Offset: i, Msg: "invalid UTF-8 in string"}
			}
			i = next
		case c == '{' || c == '[':
			if len(stack) >= maxSkipDepth {
				return i, &SyntaxError{Offset: i, Msg: "nesting deeper than " + strconv.Itoa(maxSkipDepth) + " levels"}
			}
			isObj := c == '{'
			i = skipWS(data, i+1)
			if i < len(data) && data[i] == c+2 { // '}' or ']'
				i++
				break
			}
			stack = append(stack, isObj)
			if isObj {
				next, err := d.skipKey(data, i)
				if err != nil {
					return next, err
				}
				i = next
			}
			continue
		case c == '-' || c-'0' <= 9:
			next, err := scanNumber(data, i)
			if err != nil {
				return next, err
			}
			i = next
		case c == 't' && len(data)-i >= 4 && string(data[i:i+4]) == "true":
			i += 4
		case c == 'f' && len(data)-i >= 5 && string(data[i:i+5]) == "false":
			i += 5
		case c == 'n' && isNull(data, i):
			i += 4
		default:
			return i, syntaxErr(data, i, "expected a value")
		}
		// After a value: close containers or move to the next element.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = skipWS(data, i)
			isObj := stack[len(stack)-1]
			if i < len(data) && data[i] == ',' {
				i = skipWS(data, i+1)
				if isObj {
					next, err := d.skipKey(data, i)
					if err != nil {
						return next, err
					}
					i = next
				}
				break
			}
			if i < len(data) && ((isObj && data[i] == '}') || (!isObj && data[i] == ']')) {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if isObj {
				return i, syntaxErr(data, i, "expected ',' or '}' after object value")
			}
			return i, syntaxErr(data, i, "expected ',' or ']' after array element")
		}
	}
}

// skipKey checks `"key" :` at data[i] and returns the index of the value.
func (d *Decoder) skipKey(data []byte, i int) (int, error) {
	if i >= len(data) || data[i] != '"' {
		return i, syntaxErr(data, i, "expected '\"' to start an object key")
	}
	key, next, nonASCII, err := d.scanString(data, i)
	if err != nil {
		return next, err
	}
	if nonASCII && !utf8.Valid(key) {
		return i, &SyntaxError{Offset: i, Msg: "invalid UTF-8 in object key"}
	}
	i = skipWS(data, next)
	if i >= len(data) || data[i] != ':' {
		return i, syntaxErr(data, i, "expected ':' after object key")
	}
	i = skipWS(data, i+1)
	if i >= len(data) {
		return i, syntaxErr(data, i, "expected a value after ':'")
	}
	return i, nil
}

// syntaxErr reports msg at offset i, naming what was found there.
func syntaxErr(data []byte, i int, msg string) error {
	var found string
	switch {
	case i >= len(data):
		found = "end of input"
	case data[i] >= 0x20 && data[i] < 0x7f:
		found = "'" + string(data[i]) + "'"
	default:
		found = "byte 0x" + strconv.FormatUint(uint64(data[i]), 16)
	}
	return &SyntaxError{Offset: i, Msg: msg + ", found " + found}
}
