package schemas

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf8"
)

// FieldError is a contract violation on one field. Field is the JSON name of
// the field (e.g. "cached_input_tokens"); Value is the offending value as text.
type FieldError struct {
	Field  string
	Value  string
	Reason string
}

// Error reads like `invalid field "reasoning_tokens" = "12": exceeds output_tokens (10)`.
func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("invalid field %q: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("invalid field %q = %s: %s", e.Field, strconv.Quote(truncate(e.Value, 64)), e.Reason)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func fieldErr(field, value, reason string) error {
	return &FieldError{Field: field, Value: value, Reason: reason}
}

func checkString(field, v string, required bool, max int) error {
	return checkText(field, v, required, max, false)
}

// checkText is checkString; text tells that v is known to be valid text
// (ValidText), which is then not checked again.
func checkText(field, v string, required bool, max int, text bool) error {
	if v == "" {
		if required {
			return fieldErr(field, "", "required and must not be empty")
		}
		return nil
	}
	if len(v) > max {
		return fieldErr(field, v, "longer than "+strconv.Itoa(max)+" bytes ("+strconv.Itoa(len(v))+")")
	}
	if text {
		return nil
	}
	if off, r := textFault(v); off >= 0 {
		return fieldErr(field, v, textFaultReason(off, r))
	}
	return nil
}

// ValidText reports whether s is valid UTF-8 without control characters,
// as Validate requires of every string field (attribute keys and values
// included): no C0 control (U+0000–U+001F, tab and line breaks included),
// no DEL (U+007F) and no C1 control (U+0080–U+009F), i.e. nothing of Unicode
// category Cc. Labels are single-line names shown in terminals, tables and
// CSV files, where these characters only do harm (terminal escapes, broken
// rows). Decoders use it for checks that mirror Validate.
func ValidText(s string) bool {
	off, _ := textFault(s)
	return off < 0
}

// textFault returns the byte offset in s of the first control character or
// invalid UTF-8 and that character (utf8.RuneError for invalid UTF-8), or
// -1. Printable ASCII is checked eight bytes at a time: a byte is flagged
// when it is ≥ 0x80 (w), 0x7F (w+1 reaches 0x80) or < 0x20 (w−0x20
// borrows). Carries and borrows only mark bytes above a real match, so the
// lowest flagged byte is exact.
func textFault(s string) (int, rune) {
	i := 0
	for i < len(s) {
		if len(s)-i >= 8 {
			w := load64(s, i)
			m := (w | (w + lsb) | ((w - lsb*0x20) &^ w)) & msb
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		}
		c := s[i]
		switch {
		case c >= 0x20 && c < 0x7f:
			i++
		case c < utf8.RuneSelf:
			return i, rune(c)
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if n == 1 || r <= 0x9f { // invalid, or a C1 control
				return i, r
			}
			i += n
		}
	}
	return -1, 0
}

// load64 reads s[i:i+8] as a little-endian word (one load on amd64 and arm64).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// ValidServiceTier reports whether s is a valid service_tier, as Validate
// requires: "" (absent), or at most MaxServiceTierLen bytes of ASCII
// letters, digits, '_', '-' and '.'. Decoders use it for checks that mirror
// Validate.
func ValidServiceTier(s string) bool {
	return len(s) <= MaxServiceTierLen && serviceTierFault(s) < 0
}

// serviceTierChar flags the bytes allowed in a service_tier.
var serviceTierChar = func() (t [256]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.'
	}
	return t
}()

// serviceTierFault returns the byte offset in s of the first byte that is
// not allowed in a service_tier, or -1.
func serviceTierFault(s string) int {
	for i := 0; i < len(s); i++ {
		if !serviceTierChar[s[i]] {
			return i
		}
	}
	return -1
}

// checkServiceTier checks service_tier: the rules of every optional string
// (length, UTF-8, no control characters) with their messages, then the
// character set.
func checkServiceTier(v string) error {
	if err := checkString("service_tier", v, false, MaxServiceTierLen); err != nil {
		return err
	}
	if off := serviceTierFault(v); off >= 0 {
		r, _ := utf8.DecodeRuneInString(v[off:]) // valid UTF-8: checkString passed
		return fieldErr("service_tier", v, "character "+strconv.QuoteRune(r)+fmt.Sprintf(" (U+%04X)", r)+
			" at byte "+strconv.Itoa(off)+" (only ASCII letters, digits, '_', '-' and '.' are allowed)")
	}
	return nil
}

// textFaultReason describes what textFault found at byte off.
func textFaultReason(off int, r rune) string {
	at := " at byte " + strconv.Itoa(off)
	if r == utf8.RuneError {
		return "not valid UTF-8" + at
	}
	return "control character " + fmt.Sprintf("U+%04X", r) + at + " (not allowed in strings)"
}

func checkTokens(field string, v int64) error {
	if v < 0 {
		return fieldErr(field, strconv.FormatInt(v, 10), "must be ≥ 0")
	}
	if v > MaxTokens {
		return fieldErr(field, strconv.FormatInt(v, 10), "exceeds the limit of 10^9 tokens")
	}
	return nil
}

func checkDuration(field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fieldErr(field, strconv.FormatFloat(v, 'g', -1, 64), "must be a finite number")
	}
	if v < 0 {
		return fieldErr(field, strconv.FormatFloat(v, 'g', -1, 64), "must be ≥ 0")
	}
	if v > MaxDurationMs {
		return fieldErr(field, strconv.FormatFloat(v, 'g', -1, 64), "exceeds 24 h (86400000 ms)")
	}
	return nil
}

// maxUnixSecond is 9999-12-31T23:59:59Z.
const maxUnixSecond = 253402300799

// Validate checks every invariant of schema v1 and returns the first
// violation as a *FieldError naming the field and the bad value.
func (e *Event) Validate() error {
	return e.validate(0)
}

// validate is Validate; bit f of text (a field index of json_fields.go) set
// tells that label field f is known to be valid text (the JSON Decoder's
// intern cache checked it when it first met the string), which is then not
// checked again. Lengths and every other rule are checked all the same.
func (e *Event) validate(text uint32) error {
	if err := checkString("event_id", e.EventID, true, MaxEventIDLen); err != nil {
		return err
	}
	if e.Timestamp.IsZero() {
		return fieldErr("timestamp", "", "required")
	}
	// Years 1970–9999 in UTC are exactly the unix seconds (floored) from 0
	// to maxUnixSecond, a cheaper test than Year.
	if u := e.Timestamp.Unix(); u < 0 || u > maxUnixSecond {
		return fieldErr("timestamp", e.Timestamp.UTC().Format(time.RFC3339Nano), "outside years 1970–9999")
	}
	if err := checkText("tenant", e.Tenant, true, MaxTenantLen, text&(1<<fTenant) != 0); err != nil {
		return err
	}
	if err := checkText("provider", e.Provider, true, MaxProviderLen, text&(1<<fProvider) != 0); err != nil {
		return err
	}
	if err := checkText("model", e.Model, true, MaxModelLen, text&(1<<fModel) != 0); err != nil {
		return err
	}
	if e.Status != StatusOK && e.Status != StatusError {
		return fieldErr("status", "", `required: "ok" or "error"`)
	}
	if err := checkText("error_type", e.ErrorType, false, MaxLabelLen, text&(1<<fErrorType) != 0); err != nil {
		return err
	}
	if err := checkText("application", e.Application, false, MaxApplicationLen, text&(1<<fApplication) != 0); err != nil {
		return err
	}
	if err := checkText("operation", e.Operation, false, MaxLabelLen, text&(1<<fOperation) != 0); err != nil {
		return err
	}
	if err := checkText("region", e.Region, false, MaxLabelLen, text&(1<<fRegion) != 0); err != nil {
		return err
	}
	if e.ServiceTier != "" {
		if err := checkServiceTier(e.ServiceTier); err != nil {
			return err
		}
	}
	// Counts read as unsigned: a negative one is out of range too.
	if uint64(e.InputTokens) > MaxTokens || uint64(e.CachedInputTokens) > MaxTokens ||
		uint64(e.CacheWriteTokens) > MaxTokens || uint64(e.CacheWrite1hTokens) > MaxTokens ||
		uint64(e.OutputTokens) > MaxTokens || uint64(e.ReasoningTokens) > MaxTokens {
		for _, t := range [...]struct {
			name string
			v    int64
		}{
			{"input_tokens", e.InputTokens},
			{"cached_input_tokens", e.CachedInputTokens},
			{"cache_write_tokens", e.CacheWriteTokens},
			{"cache_write_1h_tokens", e.CacheWrite1hTokens},
			{"output_tokens", e.OutputTokens},
			{"reasoning_tokens", e.ReasoningTokens},
		} {
			if err := checkTokens(t.name, t.v); err != nil {
				return err
			}
		}
	}
	if e.CachedInputTokens+e.CacheWriteTokens > e.InputTokens {
		return fieldErr("cached_input_tokens",
			strconv.FormatInt(e.CachedInputTokens, 10),
			"cached_input_tokens + cache_write_tokens ("+strconv.FormatInt(e.CachedInputTokens+e.CacheWriteTokens, 10)+
				") exceeds input_tokens ("+strconv.FormatInt(e.InputTokens, 10)+")")
	}
	if e.CacheWrite1hTokens > e.CacheWriteTokens {
		return fieldErr("cache_write_1h_tokens", strconv.FormatInt(e.CacheWrite1hTokens, 10),
			"exceeds cache_write_tokens ("+strconv.FormatInt(e.CacheWriteTokens, 10)+")")
	}
	if e.ReasoningTokens > e.OutputTokens {
		return fieldErr("reasoning_tokens", strconv.FormatInt(e.ReasoningTokens, 10),
			"exceeds output_tokens ("+strconv.FormatInt(e.OutputTokens, 10)+")")
	}
	if e.HasLatency {
		if err := checkDuration("latency_ms", e.LatencyMs); err != nil {
			return err
		}
	}
	if e.HasTTFT {
		if err := checkDuration("ttft_ms", e.TTFTMs); err != nil {
			return err
		}
	}
	if err := checkDuration("gpu_ms", e.GPUMs); err != nil {
		return err
	}
	if len(e.Attributes) > MaxAttributes {
		return fieldErr("attributes", strconv.Itoa(len(e.Attributes))+" entries", "more than "+strconv.Itoa(MaxAttributes)+" attributes")
	}
	for k, v := range e.Attributes {
		if err := checkString("attributes", k, true, MaxLabelLen); err != nil {
			err.(*FieldError).Reason = "key: " + err.(*FieldError).Reason
			return err
		}
		if err := checkString("attributes", v, false, MaxLabelLen); err != nil {
			err.(*FieldError).Field = "attributes." + truncate(k, 64)
			return err
		}
	}
	return nil
}
