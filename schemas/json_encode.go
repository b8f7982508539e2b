package schemas

import (
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the canonical JSON encoding of e to dst and returns the
// extended buffer. The output is compact, with fields in contract order:
//   - the required fields always (timestamp as RFC 3339 in UTC, with a
//     fraction only when the nanoseconds are non-zero, trailing zeros trimmed);
//   - optional strings, token counts and gpu_ms only when non-zero;
//   - latency_ms and ttft_ms whenever HasLatency / HasTTFT, even when 0;
//   - attributes, when non-empty, with keys in sorted order.
//
// Numbers are written in the shortest form that parses back to the same
// float64. AppendJSON does not validate e, yet always produces valid JSON:
// bytes that are not valid UTF-8 become U+FFFD, and non-finite durations are
// written as the strings "NaN", "+Inf" or "-Inf", which the decoder rejects
// with a *FieldError naming the field, as Validate would. For a valid event,
// decoding the output gives an Equal event, provided its timestamp is in UTC
// or at least a day inside the years 1970–9999: Validate checks the year in
// the timestamp's own location, while the encoding is in UTC.
func AppendJSON(dst []byte, e *Event) []byte {
	dst = append(dst, `{"event_id":`...)
	dst = appendString(dst, e.EventID)
	dst = append(dst, `,"timestamp":"`...)
	dst = appendTimestamp(dst, e.Timestamp)
	dst = append(dst, `","tenant":`...)
	dst = appendString(dst, e.Tenant)
	dst = append(dst, `,"provider":`...)
	dst = appendString(dst, e.Provider)
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, e.Model)
	dst = append(dst, `,"status":"`...)
	dst = append(dst, e.Status.String()...)
	dst = append(dst, '"')
	dst = appendOptString(dst, `,"error_type":`, e.ErrorType)
	dst = appendOptString(dst, `,"application":`, e.Application)
	dst = appendOptString(dst, `,"operation":`, e.Operation)
	dst = appendOptString(dst, `,"region":`, e.Region)
	dst = appendOptInt(dst, `,"input_tokens":`, e.InputTokens)
	dst = appendOptInt(dst, `,"cached_input_tokens":`, e.CachedInputTokens)
	dst = appendOptInt(dst, `,"cache_write_tokens":`, e.CacheWriteTokens)
	dst = appendOptInt(dst, `,"output_tokens":`, e.OutputTokens)
	dst = appendOptInt(dst, `,"reasoning_tokens":`, e.ReasoningTokens)
	dst = appendOptInt(dst, `,"cache_write_1h_tokens":`, e.CacheWrite1hTokens)
	dst = appendOptString(dst, `,"service_tier":`, e.ServiceTier)
	if e.HasLatency {
		dst = append(dst, `,"latency_ms":`...)
		dst = appendFloat(dst, e.LatencyMs)
	}
	if e.HasTTFT {
		dst = append(dst, `,"ttft_ms":`...)
		dst = appendFloat(dst, e.TTFTMs)
	}
	if e.GPUMs != 0 {
		dst = append(dst, `,"gpu_ms":`...)
		dst = appendFloat(dst, e.GPUMs)
	}
	if len(e.Attributes) > 0 {
		dst = appendAttributes(dst, e.Attributes)
	}
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler with AppendJSON. It validates e first
// and returns the Validate error for an invalid event, so encoding/json never
// emits an event the decoder would reject. The receiver is a value so that
// encoding/json uses it for Event values as well as pointers.
func (e Event) MarshalJSON() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return AppendJSON(make([]byte, 0, 384), &e), nil
}

func appendOptString(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	dst = append(dst, key...)
	return appendString(dst, s)
}

func appendOptInt(dst []byte, key string, v int64) []byte {
	if v == 0 {
		return dst
	}
	dst = append(dst, key...)
	return strconv.AppendInt(dst, v, 10)
}

func appendAttributes(dst []byte, m map[string]string) []byte {
	var arr [MaxAttributes]string
	keys := arr[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, `,"attributes":{`...)
	for n, k := range keys {
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, m[k])
	}
	return append(dst, '}')
}

// appendFloat writes f as encoding/json does: the shortest decimal that
// round-trips, in exponent form only for very small or large magnitudes.
func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Inf"`...)
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
		// Shorten e-07 to e-7, as encoding/json does.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
		return dst
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// appendTimestamp writes t in UTC as RFC 3339 with the fraction trimmed, like
// time.RFC3339Nano, by hand for years 0–9999 (the only ones RFC 3339 can
// express); other years fall back to time.Time.AppendFormat.
func appendTimestamp(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, time.RFC3339Nano)
	}
	hour, minute, sec := t.Clock()
	dst = append(dst,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10))
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		dst = append(dst, frac[:n]...)
	}
	return append(dst, 'Z')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. It escapes '"', '\\', control
// characters, and U+2028/U+2029 (for JavaScript embedders), writes other
// characters as they are (including '<', '>' and '&'), and replaces bytes
// that are not valid UTF-8 with U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if strPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
