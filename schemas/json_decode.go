package schemas

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Bounds of the intern table of one Decoder. When either is reached the table
// is cleared and refills with the strings in use, so memory stays bounded
// whatever the input, and a burst of junk cannot pin the table forever.
const (
	internMaxEntries = 1 << 16 // distinct strings
	internMaxBytes   = 4 << 20 // total bytes of interned strings
	internMaxLen     = MaxLabelLen
	recentSize       = 512   // entries of the direct-mapped cache in front of the intern table
	maxSkipDepth     = 10000 // nesting limit in skipped values, as encoding/json
	maxErrValueLen   = 128   // bytes of an offending value kept in a FieldError
)

// Decoder decodes JSON events. It owns a bounded intern table that lets
// repeated low-cardinality strings (tenant, provider, model, application,
// operation, region, error_type, attribute keys) be decoded without
// allocating.
//
// A Decoder is not safe for concurrent use: keep one per goroutine (e.g. per
// partition). The zero value is ready to use and decodes without interning.
type Decoder struct {
	strs     map[string]string   // intern table; nil disables interning
	recent   *[recentSize]string // cache in front of strs; non-nil with strs
	strBytes int                 // bytes held by strs
	scratch  []byte              // unescaped content of the last escaped string
	stack    []bool              // open containers while skipping; true = object

	tsPrefix [2]uint64 // first 16 bytes of the last RFC 3339 timestamp
	tsMinute int64     // its local minute, see parseRFC3339Minute
	tsCached bool      // tsPrefix and tsMinute are set
}

// NewDecoder returns a Decoder with an intern table of at most 65536 strings
// and 4 MiB (plus a cache of 512 recent strings).
func NewDecoder() *Decoder {
	return &Decoder{strs: make(map[string]string, 64), recent: new([recentSize]string)}
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
// reflection, no intermediate tree, and no allocation except for event_id,
// attribute values, and strings missing from the intern table. What it
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
//     decodes to U+FFFD, as in encoding/json. Raw bytes that are not valid
//     UTF-8 are rejected: in a known field by validation, elsewhere as a
//     syntax error.
//   - Only whitespace may follow the object.
//
// Errors are a *SyntaxError (with the byte offset) for malformed JSON, or a
// *FieldError naming the field for a value of the wrong type or a contract
// violation. Syntax and type errors are reported as they are met, scanning
// left to right; contract violations are checked once the whole object has
// parsed. After an error e holds partial content and should not be used.
func (d *Decoder) Decode(data []byte, e *Event) error {
	e.Reset()
	if err := d.decodeObject(data, e); err != nil {
		return err
	}
	return e.Validate()
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
			// Producers mostly write fields in contract order: try the key
			// after the previous one with a plain compare before scanning.
			var (
				f    = fieldUnknown
				next int
			)
			if n := eventKeys[expect].match(data, i); n > 0 {
				f, next = expect, i+n-1 // at the ':'
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

// fieldUnknown is the index of a key that is not in eventFields.
const fieldUnknown = -1

// Indexes of the fields in eventFields.
const (
	fEventID = iota
	fTimestamp
	fTenant
	fProvider
	fModel
	fStatus
	fErrorType
	fApplication
	fOperation
	fRegion
	fInputTokens
	fCachedInputTokens
	fCacheWriteTokens
	fOutputTokens
	fReasoningTokens
	fLatencyMs
	fTTFTMs
	fGPUMs
	fAttributes
)

// decodeField decodes the value at data[i] (not whitespace, i < len(data))
// of field f (an index in eventFields, or fieldUnknown) and returns the index
// after it.
func (d *Decoder) decodeField(data []byte, i int, f int, e *Event) (int, error) {
	var err error
	c := data[i]
	// The common case of each kind is handled here, one call from the
	// scanning primitive; nulls and wrong types go through the *Value helpers.
	switch f {
	case fEventID, fTenant, fProvider, fModel, fErrorType, fApplication, fOperation, fRegion:
		var s []byte
		if c == '"' {
			s, i, _, err = d.scanString(data, i)
		} else {
			s, i, err = d.stringValue(data, i, eventFields[f])
		}
		if f == fEventID {
			e.EventID = string(s)
		} else {
			*labelField(e, f) = d.intern(s)
		}
	case fTimestamp:
		e.Timestamp, i, err = d.timestampValue(data, i)
	case fStatus:
		e.Status, i, err = d.statusValue(data, i)
	case fInputTokens, fCachedInputTokens, fCacheWriteTokens, fOutputTokens, fReasoningTokens:
		var v int64
		if c == '-' || c-'0' <= 9 {
			start := i
			var reason string
			v, i, reason, err = intValue(data, i)
			if err == nil && reason != "" {
				err = &FieldError{Field: eventFields[f], Value: errValue(data[start:i]), Reason: reason}
			}
		} else {
			v, i, err = d.tokenValue(data, i, eventFields[f])
		}
		*tokenField(e, f) = v
	case fLatencyMs, fTTFTMs, fGPUMs:
		var (
			v       float64
			present bool
		)
		if c == '-' || c-'0' <= 9 {
			start := i
			v, i, err = floatValue(data, i)
			present = true
			if err == nil && math.IsInf(v, 0) {
				err = &FieldError{Field: eventFields[f], Value: errValue(data[start:i]), Reason: "out of range"}
			}
		} else {
			v, present, i, err = d.durationValue(data, i, eventFields[f])
		}
		switch f {
		case fLatencyMs:
			e.LatencyMs, e.HasLatency = v, present
		case fTTFTMs:
			e.TTFTMs, e.HasTTFT = v, present
		default:
			e.GPUMs = v
		}
	case fAttributes:
		e.Attributes, i, err = d.attributesValue(data, i)
	default:
		i, err = d.skipValue(data, i)
	}
	return i, err
}

// labelField returns the string field f of e, other than event_id.
func labelField(e *Event, f int) *string {
	switch f {
	case fTenant:
		return &e.Tenant
	case fProvider:
		return &e.Provider
	case fModel:
		return &e.Model
	case fErrorType:
		return &e.ErrorType
	case fApplication:
		return &e.Application
	case fOperation:
		return &e.Operation
	}
	return &e.Region
}

// tokenField returns the token count field f of e.
func tokenField(e *Event, f int) *int64 {
	switch f {
	case fInputTokens:
		return &e.InputTokens
	case fCachedInputTokens:
		return &e.CachedInputTokens
	case fCacheWriteTokens:
		return &e.CacheWriteTokens
	case fOutputTokens:
		return &e.OutputTokens
	}
	return &e.ReasoningTokens
}

// fieldIndex maps a key to its index in eventFields, or fieldUnknown.
func fieldIndex(key []byte) int {
	switch string(key) {
	case "event_id":
		return fEventID
	case "timestamp":
		return fTimestamp
	case "tenant":
		return fTenant
	case "provider":
		return fProvider
	case "model":
		return fModel
	case "status":
		return fStatus
	case "error_type":
		return fErrorType
	case "application":
		return fApplication
	case "operation":
		return fOperation
	case "region":
		return fRegion
	case "input_tokens":
		return fInputTokens
	case "cached_input_tokens":
		return fCachedInputTokens
	case "cache_write_tokens":
		return fCacheWriteTokens
	case "output_tokens":
		return fOutputTokens
	case "reasoning_tokens":
		return fReasoningTokens
	case "latency_ms":
		return fLatencyMs
	case "ttft_ms":
		return fTTFTMs
	case "gpu_ms":
		return fGPUMs
	case "attributes":
		return fAttributes
	}
	return fieldUnknown
}

// eventFields lists the JSON names decodeField knows, in contract order, the
// order AppendJSON writes and the decoder predicts. A test checks the JSON
// Schema's properties against it.
var eventFields = [...]string{
	"event_id", "timestamp", "tenant", "provider", "model", "status", "error_type",
	"application", "operation", "region",
	"input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
	"latency_ms", "ttft_ms", "gpu_ms", "attributes",
}

// eventKeys holds `"name":` for each of eventFields, to match a key and its
// colon with a few word compares.
var eventKeys = func() (k [len(eventFields)]keyPattern) {
	for i, f := range eventFields {
		k[i] = newKeyPattern(`"` + f + `":`)
	}
	return k
}()

// keyPattern is a string of at most 24 bytes as three little-endian words
// and masks.
type keyPattern struct {
	s    string
	w, m [3]uint64
}

func newKeyPattern(s string) keyPattern {
	if len(s) > 24 {
		panic("key pattern longer than 24 bytes: " + s)
	}
	p := keyPattern{s: s}
	for i := range len(s) {
		p.w[i/8] |= uint64(s[i]) << (8 * (i % 8))
		p.m[i/8] |= 0xff << (8 * (i % 8))
	}
	return p
}

// match returns len(p.s) when data[i:] starts with p.s, else 0.
func (p *keyPattern) match(data []byte, i int) int {
	if len(data)-i >= 24 {
		b := data[i : i+24]
		x := (binary.LittleEndian.Uint64(b)^p.w[0])&p.m[0] |
			(binary.LittleEndian.Uint64(b[8:])^p.w[1])&p.m[1] |
			(binary.LittleEndian.Uint64(b[16:])^p.w[2])&p.m[2]
		if x == 0 {
			return len(p.s)
		}
		return 0
	}
	if len(data)-i >= len(p.s) && string(data[i:i+len(p.s)]) == p.s {
		return len(p.s)
	}
	return 0
}

// intern returns b as a string, shared with earlier equal strings when the
// tables have it. b may alias the input: the result never does.
//
// A small direct-mapped cache, indexed by a hash of the length and three
// bytes, answers most lookups with one compare; misses go to the map.
func (d *Decoder) intern(b []byte) string {
	if d.strs == nil || len(b) > internMaxLen || len(b) == 0 {
		return string(b)
	}
	h := (uint(len(b))*0x9e + uint(b[0])*31 + uint(b[len(b)>>1])*7 + uint(b[len(b)-1])) % recentSize
	if s := d.recent[h]; s == string(b) {
		return s
	}
	s, ok := d.strs[string(b)]
	if !ok {
		if len(d.strs) >= internMaxEntries || d.strBytes+len(b) > internMaxBytes {
			clear(d.strs)
			d.strBytes = 0
		}
		s = string(b)
		d.strs[s] = s
		d.strBytes += len(s)
	}
	d.recent[h] = s
	return s
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
		kb, next, _, err := d.scanString(data, i)
		if err != nil {
			return m, next, err
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
		vb, next, _, err := d.scanString(data, i)
		if err != nil {
			return m, next, err
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

// ---- scanning primitives ----

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

// ---- RFC 3339 ----

// parseRFC3339 parses the RFC 3339 date-time production:
//
//	YYYY-MM-DD "T" hh:mm:ss [ "." 1*DIGIT ] ( "Z" / ("+" / "-") hh:mm )
//
// with "t" and "z" also accepted, as RFC 3339 §5.6 allows. The result is in
// UTC. Fractions beyond nanoseconds are truncated. Like time.Parse it rejects
// the leap second :60, offsets of 24 hours or more, and impossible dates
// (2023-02-29); unlike time.Parse it accepts only two-digit fields and a '.'
// before the fraction, as RFC 3339 requires.
func parseRFC3339(b []byte) (time.Time, bool) {
	minute, ok := parseRFC3339Minute(b)
	if !ok {
		return time.Time{}, false
	}
	return parseRFC3339Rest(b, minute)
}

// parseRFC3339Minute parses the "YYYY-MM-DDThh:mm" prefix of b (which must
// be long enough to hold a whole date-time) into local seconds since the
// epoch, before the offset is applied.
func parseRFC3339Minute(b []byte) (int64, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") ||
		b[4] != '-' || b[7] != '-' || b[10]|0x20 != 't' || b[13] != ':' {
		return 0, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	if !(ok1 && ok2 && ok3 && ok4 && ok5) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 {
		return 0, false
	}
	return daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60), true
}

// parseRFC3339Rest parses ":ss[.frac](Z|±hh:mm)" from b[16:], given the
// local minute from parseRFC3339Minute.
func parseRFC3339Rest(b []byte, minute int64) (time.Time, bool) {
	sec, ok := digits(b[17:19])
	if b[16] != ':' || !ok || sec > 59 {
		return time.Time{}, false
	}
	rest := b[19:]
	nsec := 0
	if rest[0] == '.' {
		j := 1
		for ; j < len(rest) && rest[j]-'0' <= 9; j++ {
			if j <= 9 {
				nsec = nsec*10 + int(rest[j]-'0')
			}
		}
		if j == 1 {
			return time.Time{}, false
		}
		for n := j - 1; n < 9; n++ {
			nsec *= 10
		}
		rest = rest[j:]
	}
	offset := 0
	switch {
	case len(rest) == 1 && rest[0]|0x20 == 'z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		hh, ok1 := digits(rest[1:3])
		mm, ok2 := digits(rest[4:6])
		if !ok1 || !ok2 || hh > 23 || mm > 59 {
			return time.Time{}, false
		}
		offset = (hh*60 + mm) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	return time.Unix(minute+int64(sec-offset), int64(nsec)).UTC(), true
}

// parseTimestamp is parseRFC3339 with a one-entry cache of the last
// "YYYY-MM-DDThh:mm" prefix: events of a stream mostly share it, and then
// only the seconds, fraction and offset are parsed.
func (d *Decoder) parseTimestamp(b []byte) (time.Time, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") {
		return time.Time{}, false
	}
	w0, w1 := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
	if d.tsCached && w0 == d.tsPrefix[0] && w1 == d.tsPrefix[1] {
		return parseRFC3339Rest(b, d.tsMinute)
	}
	minute, ok := parseRFC3339Minute(b)
	if !ok {
		return time.Time{}, false
	}
	d.tsPrefix, d.tsMinute, d.tsCached = [2]uint64{w0, w1}, minute, true
	return parseRFC3339Rest(b, minute)
}

// digits parses a run of ASCII digits.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c-'0' > 9 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date with year ≥ 0 (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := (y + 400) / 400 // shifted so year -1 (Jan/Feb of year 0) floors correctly
	era--
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
