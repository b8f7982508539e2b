package schemas

import (
	"fmt"
	"math"
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
	if v == "" {
		if required {
			return fieldErr(field, "", "required and must not be empty")
		}
		return nil
	}
	if len(v) > max {
		return fieldErr(field, v, "longer than "+strconv.Itoa(max)+" bytes ("+strconv.Itoa(len(v))+")")
	}
	if !utf8.ValidString(v) {
		return fieldErr(field, v, "not valid UTF-8")
	}
	return nil
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

// Validate checks every invariant of schema v1 and returns the first
// violation as a *FieldError naming the field and the bad value.
func (e *Event) Validate() error {
	if err := checkString("event_id", e.EventID, true, MaxEventIDLen); err != nil {
		return err
	}
	if e.Timestamp.IsZero() {
		return fieldErr("timestamp", "", "required")
	}
	if y := e.Timestamp.UTC().Year(); y < 1970 || y > 9999 {
		return fieldErr("timestamp", e.Timestamp.UTC().Format(time.RFC3339Nano), "outside years 1970–9999")
	}
	if err := checkString("tenant", e.Tenant, true, MaxTenantLen); err != nil {
		return err
	}
	if err := checkString("provider", e.Provider, true, MaxProviderLen); err != nil {
		return err
	}
	if err := checkString("model", e.Model, true, MaxModelLen); err != nil {
		return err
	}
	if e.Status != StatusOK && e.Status != StatusError {
		return fieldErr("status", "", `required: "ok" or "error"`)
	}
	if err := checkString("error_type", e.ErrorType, false, MaxLabelLen); err != nil {
		return err
	}
	if err := checkString("application", e.Application, false, MaxApplicationLen); err != nil {
		return err
	}
	if err := checkString("operation", e.Operation, false, MaxLabelLen); err != nil {
		return err
	}
	if err := checkString("region", e.Region, false, MaxLabelLen); err != nil {
		return err
	}
	for _, t := range [...]struct {
		name string
		v    int64
	}{
		{"input_tokens", e.InputTokens},
		{"cached_input_tokens", e.CachedInputTokens},
		{"cache_write_tokens", e.CacheWriteTokens},
		{"output_tokens", e.OutputTokens},
		{"reasoning_tokens", e.ReasoningTokens},
	} {
		if err := checkTokens(t.name, t.v); err != nil {
			return err
		}
	}
	if e.CachedInputTokens+e.CacheWriteTokens > e.InputTokens {
		return fieldErr("cached_input_tokens",
			strconv.FormatInt(e.CachedInputTokens, 10),
			"cached_input_tokens + cache_write_tokens ("+strconv.FormatInt(e.CachedInputTokens+e.CacheWriteTokens, 10)+
				") exceeds input_tokens ("+strconv.FormatInt(e.InputTokens, 10)+")")
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
			return err
		}
		if err := checkString("attributes", v, false, MaxLabelLen); err != nil {
			err.(*FieldError).Field = "attributes." + truncate(k, 64)
			return err
		}
	}
	return nil
}
