package schemas

// This file holds the Decoder, its entry points and the object walk; the
// field mapping is in json_fields.go, the lexer in json_lexer.go, the intern
// table in json_intern.go and timestamps in rfc3339.go.

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// maxErrValueLen is how many bytes of an offending value a FieldError keeps.
const maxErrValueLen = 128

// Decoder decodes JSON events. It owns a bounded intern table that lets
// repeated low-cardinality strings (tenant, provider, model, application,
// operation, region, service_tier, error_type, attribute keys) be decoded
// without allocating.
//
// A Decoder is not safe for concurrent use: keep one per goroutine (e.g. per
// partition). The zero value is ready to use and decodes without interning.
type Decoder struct {
	strs   map[string]string         // intern table; nil disables interning
	recent *[recentSize]recentString // cache in front of strs; non-nil with strs
	// maxEntries and maxBytes bound strs (NewDecoderSized); 0 takes
	// internMaxEntries and internMaxBytes.
	maxEntries, maxBytes int
	// text has bit f set when label field f of the event being decoded is
	// known to be valid text (see internText).
	text     uint32
	strBytes int    // bytes held by strs
	scratch  []byte // unescaped content of the last escaped string
	ids      []byte // arena of event ids; see idString
	stack    []bool // open containers while skipping; true = object
	// lones counts the escaped lone UTF-16 surrogates scanEscaped has
	// replaced with U+FFFD; a known field whose string changed it is
	// rejected (loneSurrogate).
	lones int

	tsPrefix [2]uint64 // first 16 bytes of the last RFC 3339 timestamp
	tsMinute int64     // its local minute, see parseRFC3339Minute
	tsCached bool      // tsPrefix and tsMinute are set
}

// NewDecoder returns a Decoder with an intern table of at most 65536 strings
// and 4 MiB (plus a cache of 512 recent strings).
func NewDecoder() *Decoder {
	return &Decoder{strs: make(map[string]string, 64), recent: new([recentSize]recentString)}
}

// NewDecoderSized returns a Decoder whose intern table holds at most
// entries strings and bytes bytes of them (at most NewDecoder's): for many
// short-lived decoders, such as one per request, whose tables would
// otherwise each grow to NewDecoder's bounds.
func NewDecoderSized(entries, bytes int) *Decoder {
	d := NewDecoder()
	d.maxEntries, d.maxBytes = min(max(entries, 1), internMaxEntries), min(max(bytes, 1), internMaxBytes)
	return d
}

// DecodeJSON decodes one event with a throwaway Decoder (no interning). See
// Decoder.Decode.
func DecodeJSON(data []byte, e *Event) error {
	var d Decoder
	return d.Decode(data, e)
}

// UnmarshalJSON implements json.Unmarshaler with DecodeJSON, so the event is
// validated too. A JSON null leaves e unchanged, as encoding/json expects.
func (e *Event) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	return DecodeJSON(data, e)
}

// SyntaxError is input that is not a JSON object, with the byte offset at
// which the problem was found.
type SyntaxError struct {
	Offset int    // byte offset into the input
	Msg    string // what was expected or found
}

// Error reads like `cannot parse event JSON at offset 57: expected ':' after object key, found '}'`.
func (e *SyntaxError) Error() string {
	return "cannot parse event JSON at offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// Decode parses one JSON object from data into e and validates it
// (Event.Validate). e is reset first. Decoded strings never alias data, so the
// caller may reuse the buffer.
//
// The decoder is a single-pass scanner specialised for the v1 event: no
// reflection, no intermediate tree, and no allocation except for attribute
// values, strings missing from the intern table, and event_id (which a
// Decoder from NewDecoder cuts from 16 KiB chunks: see idString). What it
// accepts, beyond plain JSON:
//   - Keys match field names exactly (case-sensitive, unlike encoding/json).
//     Unknown keys are ignored; their values, however nested (up to 10000
//     levels), are skipped after their syntax is checked.
//   - A duplicated key: the last one wins. A repeated "attributes" object
//     replaces the earlier one rather than merging with it.
//   - null for any field means absent: the field keeps its zero value (so a
//     required field fails validation as missing). Attribute values must be
//     strings, not null.
//   - Token counts must be integers. A number with a fraction or exponent is
//     accepted when its float64 value is integral (12.0, 1e3), since some
//     producers (Python, JavaScript) emit floats for counts.
//   - Durations are any JSON number, rounded to the nearest float64.
//   - timestamp is an RFC 3339 string (fraction optional and truncated to
//     nanoseconds, any offset, "t" and "z" accepted in lower case as RFC 3339
//     §5.6 allows; the result is in UTC) or a number of unix milliseconds (an
//     integer by the same rule as token counts).
//   - Strings may use every JSON escape. An escaped lone UTF-16 surrogate
//     (\ud800 not followed by a low surrogate, or \udc00 alone) is not a
//     character: a known field holding one is rejected (encoding/json would
//     make it U+FFFD, and two event ids that differ only there would be one
//     id to the dedupe); elsewhere it decodes to U+FFFD. Raw bytes that are not valid
//     UTF-8 are rejected: in a known field by validation, elsewhere as a
//     syntax error. A known field (attribute keys and values included) must
//     not hold control characters, escaped (\n, \t, \u001b) or raw (DEL,
//     C1): validation rejects them (see ValidText).
//   - Only whitespace may follow the object.
//
// Errors are a *SyntaxError (with the byte offset) for malformed JSON, or a
// *FieldError naming the field for a value of the wrong type or a contract
// violation. Syntax and type errors are reported as they are met, scanning
// left to right; contract violations are checked once the whole object has
// parsed. After an error e holds partial content and should not be used.
func (d *Decoder) Decode(data []byte, e *Event) error {
	e.Reset()
	d.text = 0
	if err := d.decodeObject(data, e); err != nil {
		return err
	}
	return e.validate(d.text)
}

func (d *Decoder) decodeObject(data []byte, e *Event) error {
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return syntaxErr(data, i, "expected '{' at the start of an event")
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		expect := 0 // index in eventFields of the key that most likely comes next
		for {
			if i >= len(data) || data[i] != '"' {
				return syntaxErr(data, i, "expected '\"' to start an object key")
			}
			// Producers mostly write fields in contract order, leaving
			// out absent optional ones: try the key after the previous one
			// and the few after it with plain compares before scanning.
			var (
				f    = fieldUnknown
				next int
			)
			keys := (*[predictAhead]keyPattern)(eventKeys[expect:])
			if n := keys[0].match(data, i); n > 0 {
				f, next = expect, i+n-1 // at the ':'
			} else if n := keys[1].match(data, i); n > 0 {
				f, next = expect+1, i+n-1
			} else if n := keys[2].match(data, i); n > 0 {
				f, next = expect+2, i+n-1
			} else {
				key, n, nonASCII, err := d.scanString(data, i)
				if err != nil {
					return err
				}
				if nonASCII && !utf8.Valid(key) {
					return &SyntaxError{Offset: i, Msg: "invalid UTF-8 in object key"}
				}
				f, next = fieldIndex(key), n
			}
			if f >= 0 && f+1 < len(eventFields) {
				expect = f + 1
			}
			i = skipWS(data, next)
			if i >= len(data) || data[i] != ':' {
				return syntaxErr(data, i, "expected ':' after object key")
			}
			i = skipWS(data, i+1)
			if i >= len(data) {
				return syntaxErr(data, i, "expected a value after ':'")
			}
			var err error
			if i, err = d.decodeField(data, i, f, e); err != nil {
				return err
			}
			i = skipWS(data, i)
			if i < len(data) && data[i] == ',' {
				i = skipWS(data, i+1)
				continue
			}
			if i < len(data) && data[i] == '}' {
				i++
				break
			}
			return syntaxErr(data, i, "expected ',' or '}' after object value")
		}
	}
	if i = skipWS(data, i); i != len(data) {
		return syntaxErr(data, i, "unexpected data after the event object")
	}
	return nil
}

func isNull(data []byte, i int) bool {
	return len(data)-i >= 4 && string(data[i:i+4]) == "null"
}

// typeError skips the value at data[i] and reports it as a *FieldError, or
// reports the syntax error found while skipping.
func (d *Decoder) typeError(data []byte, i int, field, reason string) (int, error) {
	end, err := d.skipValue(data, i)
	if err != nil {
		return end, err
	}
	return end, &FieldError{Field: field, Value: errValue(data[i:end]), Reason: reason}
}

// errValue copies at most maxErrValueLen bytes of an offending value.
func errValue(b []byte) string {
	if len(b) > maxErrValueLen {
		// Copy a little more so truncate can cut at a character boundary.
		return truncate(string(b[:min(len(b), maxErrValueLen+utf8.UTFMax)]), maxErrValueLen)
	}
	return string(b)
}

// loneSurrogate is the error of a known field whose string value v held an
// escaped lone UTF-16 surrogate (decoded as U+FFFD).
func loneSurrogate(field string, v []byte) error {
	return &FieldError{Field: field, Value: errValue(v),
		Reason: "holds an escaped lone UTF-16 surrogate (shown as U+FFFD), which is not a character: escape a character above U+FFFF as a surrogate pair, or send it as UTF-8"}
}

// stringValue reads a string field; null gives nil. The result may alias data
// or d.scratch and must be copied before the next scan.
func (d *Decoder) stringValue(data []byte, i int, field string) ([]byte, int, error) {
	if data[i] == '"' {
		s, next, _, err := d.scanString(data, i)
		return s, next, err
	}
	if isNull(data, i) {
		return nil, i + 4, nil
	}
	next, err := d.typeError(data, i, field, "must be a string")
	return nil, next, err
}

func (d *Decoder) statusValue(data []byte, i int) (Status, int, error) {
	s, next, err := d.stringValue(data, i, "status")
	if err != nil || s == nil {
		return StatusUnset, next, err
	}
	if st, ok := ParseStatus(string(s)); ok {
		return st, next, nil
	}
	return StatusUnset, next, &FieldError{Field: "status", Value: errValue(s), Reason: `must be "ok" or "error"`}
}

// maxUnixMilli is 9999-12-31T23:59:59.999Z, the last instant Validate accepts.
const maxUnixMilli = 253402300799999

func (d *Decoder) timestampValue(data []byte, i int) (time.Time, int, error) {
	switch c := data[i]; {
	case c == '"':
		s, next, _, err := d.scanString(data, i)
		if err != nil {
			return time.Time{}, next, err
		}
		t, ok := d.parseTimestamp(s)
		if !ok {
			return time.Time{}, next, &FieldError{Field: "timestamp", Value: errValue(s),
				Reason: `must be an RFC 3339 date-time such as "2025-01-02T15:04:05.123Z" or integer unix milliseconds`}
		}
		if t.IsZero() {
			// 0001-01-01T00:00:00Z is Go's zero time, which Validate
			// would call missing.
			return time.Time{}, next, &FieldError{Field: "timestamp", Value: errValue(s), Reason: "outside years 1970–9999"}
		}
		return t, next, nil
	case c == '-' || c-'0' <= 9:
		ms, next, reason, err := intValue(data, i)
		if err != nil {
			return time.Time{}, next, err
		}
		if reason == "" && (ms < 0 || ms > maxUnixMilli) {
			reason = "outside years 1970–9999"
		}
		if reason != "" {
			return time.Time{}, next, &FieldError{Field: "timestamp", Value: errValue(data[i:next]), Reason: reason}
		}
		return time.UnixMilli(ms).UTC(), next, nil
	case isNull(data, i):
		return time.Time{}, i + 4, nil
	}
	next, err := d.typeError(data, i, "timestamp", "must be an RFC 3339 string or integer unix milliseconds")
	return time.Time{}, next, err
}

func (d *Decoder) tokenValue(data []byte, i int, field string) (int64, int, error) {
	if c := data[i]; c == '-' || c-'0' <= 9 {
		v, next, reason, err := intValue(data, i)
		if err == nil && reason != "" {
			err = &FieldError{Field: field, Value: errValue(data[i:next]), Reason: reason}
		}
		return v, next, err
	}
	if isNull(data, i) {
		return 0, i + 4, nil
	}
	next, err := d.typeError(data, i, field, "must be an integer")
	return 0, next, err
}

// durationValue reads an optional number; null gives (0, false).
func (d *Decoder) durationValue(data []byte, i int, field string) (float64, bool, int, error) {
	if c := data[i]; c == '-' || c-'0' <= 9 {
		f, next, err := floatValue(data, i)
		if err == nil && math.IsInf(f, 0) {
			err = &FieldError{Field: field, Value: errValue(data[i:next]), Reason: "out of range"}
		}
		return f, true, next, err
	}
	if isNull(data, i) {
		return 0, false, i + 4, nil
	}
	next, err := d.typeError(data, i, field, "must be a number")
	return 0, false, next, err
}

func (d *Decoder) attributesValue(data []byte, i int) (map[string]string, int, error) {
	if data[i] != '{' {
		if isNull(data, i) {
			return nil, i + 4, nil
		}
		next, err := d.typeError(data, i, "attributes", "must be an object of strings")
		return nil, next, err
	}
	var m map[string]string
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		return m, i + 1, nil
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return m, i, syntaxErr(data, i, "expected '\"' to start an object key")
		}
		keyLones := d.lones
		kb, next, _, err := d.scanString(data, i)
		if err != nil {
			return m, next, err
		}
		if d.lones != keyLones {
			return m, next, loneSurrogate("attributes", kb)
		}
		k := d.intern(kb) // before the value overwrites d.scratch
		i = skipWS(data, next)
		if i >= len(data) || data[i] != ':' {
			return m, i, syntaxErr(data, i, "expected ':' after object key")
		}
		i = skipWS(data, i+1)
		if i >= len(data) {
			return m, i, syntaxErr(data, i, "expected a value after ':'")
		}
		if data[i] != '"' {
			next, err := d.typeError(data, i, "attributes."+truncate(k, 64), "must be a string")
			return m, next, err
		}
		lones := d.lones
		vb, next, _, err := d.scanString(data, i)
		if err != nil {
			return m, next, err
		}
		if d.lones != lones {
			return m, next, loneSurrogate("attributes."+truncate(k, 64), vb)
		}
		if m == nil {
			m = make(map[string]string)
		}
		m[k] = string(vb)
		if len(m) > MaxAttributes {
			return m, next, fieldErr("attributes", strconv.Itoa(len(m))+" entries", "more than "+strconv.Itoa(MaxAttributes)+" attributes")
		}
		i = skipWS(data, next)
		if i < len(data) && data[i] == ',' {
			i = skipWS(data, i+1)
			continue
		}
		if i < len(data) && data[i] == '}' {
			return m, i + 1, nil
		}
		return m, i, syntaxErr(data, i, "expected ',' or '}' after object value")
	}
}
