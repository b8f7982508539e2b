// Package schemas owns the costpipe event contract (schema v1): the Event type,
// its validation, and the JSON and Arrow IPC codecs that carry it on Kafka.
//
// Everything downstream (producers, consumers, pipelines) speaks Event; this
// package imports nothing of costpipe's own.
package schemas

import (
	"time"
)

// SchemaVersion is the event contract version this package implements.
const SchemaVersion = 1

// Kafka contract constants.
const (
	// DefaultTopic is the topic events are produced to.
	DefaultTopic = "costpipe.events"
	// DefaultDLQTopic receives records that cannot be decoded or validated.
	DefaultDLQTopic = "costpipe.events.dlq"
	// HeaderContentType names the record header that says how the value is encoded.
	HeaderContentType = "content-type"
	// ContentTypeJSON is one JSON event per record; assumed when the header is missing.
	ContentTypeJSON = "application/json"
	// ContentTypeArrow is an Arrow IPC stream carrying many events per record.
	ContentTypeArrow = "application/vnd.apache.arrow.stream"
)

// Limits of the contract. Violations make an event invalid.
const (
	MaxEventIDLen     = 128
	MaxTenantLen      = 128
	MaxProviderLen    = 64
	MaxModelLen       = 256
	MaxApplicationLen = 128
	// MaxServiceTierLen bounds service_tier, which must also be ASCII
	// letters, digits, '_', '-' and '.' only (see ValidServiceTier).
	MaxServiceTierLen = 32
	// MaxLabelLen bounds the optional free-form strings (error_type, operation,
	// region) and attribute keys and values, so one event cannot carry megabytes.
	MaxLabelLen = 256
	// MaxAttributes bounds the number of attributes on one event.
	MaxAttributes = 64
	// MaxTokens bounds every token count.
	MaxTokens = 1_000_000_000
	// MaxDurationMs bounds latency_ms, ttft_ms and gpu_ms (24 h).
	MaxDurationMs = 24 * 60 * 60 * 1000
)

// Status is the outcome of an inference call.
type Status uint8

const (
	// StatusUnset is the zero value; it is invalid in a decoded event.
	StatusUnset Status = iota
	// StatusOK is a call that returned a response.
	StatusOK
	// StatusError is a call that failed.
	StatusError
)

// String returns the contract spelling: "ok", "error" or "" when unset.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusError:
		return "error"
	}
	return ""
}

// ParseStatus maps "ok" and "error" to a Status; anything else is StatusUnset, false.
func ParseStatus(s string) (Status, bool) {
	switch s {
	case "ok":
		return StatusOK, true
	case "error":
		return StatusError, true
	}
	return StatusUnset, false
}

// Event is one inference call (schema v1). The zero value is not valid: call
// Validate before trusting one that did not come from a decoder (decoders
// validate).
//
// Optional durations use a presence flag rather than a pointer so decoding
// allocates nothing for them: LatencyMs is meaningful only when HasLatency.
type Event struct {
	EventID   string
	Timestamp time.Time // UTC; event time of the call's start
	Tenant    string
	Provider  string
	Model     string
	Status    Status
	ErrorType string

	Application string
	Operation   string
	Region      string
	// ServiceTier is the provider's service tier the call ran on ("batch",
	// "flex", "priority", ...; OTel gen_ai.openai.response.service_tier),
	// kept as sent: "" (absent), "standard", "default", "auto" and
	// "on_demand" all mean the standard tier, compared case-insensitively
	// by pricing. At most MaxServiceTierLen bytes of ASCII letters, digits,
	// '_', '-' and '.'.
	ServiceTier string

	InputTokens        int64 // all prompt tokens, including cached and cache-write ones
	CachedInputTokens  int64 // part of InputTokens
	CacheWriteTokens   int64 // part of InputTokens
	CacheWrite1hTokens int64 // part of CacheWriteTokens written with a 1-hour cache lifetime
	OutputTokens       int64 // all completion tokens, including reasoning
	ReasoningTokens    int64 // part of OutputTokens

	LatencyMs  float64
	HasLatency bool
	TTFTMs     float64
	HasTTFT    bool
	GPUMs      float64

	// Attributes are free labels, carried but not aggregated. Nil when absent.
	Attributes map[string]string
}

// Reset clears e for reuse, keeping nothing that aliases a previous decode.
func (e *Event) Reset() { *e = Event{} }

// Equal reports whether two events carry the same contract values. Timestamps
// compare as instants; a nil and an empty Attributes map are equal.
func (e *Event) Equal(o *Event) bool {
	if e.EventID != o.EventID || !e.Timestamp.Equal(o.Timestamp) || e.Tenant != o.Tenant ||
		e.Provider != o.Provider || e.Model != o.Model || e.Status != o.Status ||
		e.ErrorType != o.ErrorType || e.Application != o.Application ||
		e.Operation != o.Operation || e.Region != o.Region || e.ServiceTier != o.ServiceTier ||
		e.InputTokens != o.InputTokens || e.CachedInputTokens != o.CachedInputTokens ||
		e.CacheWriteTokens != o.CacheWriteTokens || e.CacheWrite1hTokens != o.CacheWrite1hTokens ||
		e.OutputTokens != o.OutputTokens || e.ReasoningTokens != o.ReasoningTokens || e.HasLatency != o.HasLatency ||
		e.HasTTFT != o.HasTTFT || e.GPUMs != o.GPUMs || len(e.Attributes) != len(o.Attributes) {
		return false
	}
	if e.HasLatency && e.LatencyMs != o.LatencyMs {
		return false
	}
	if e.HasTTFT && e.TTFTMs != o.TTFTMs {
		return false
	}
	for k, v := range e.Attributes {
		if ov, ok := o.Attributes[k]; !ok || ov != v {
			return false
		}
	}
	return true
}

// Key returns the Kafka record key of the contract: tenant + "\x00" + model,
// so one key's events stay ordered on one partition.
func (e *Event) Key() []byte {
	k := make([]byte, 0, len(e.Tenant)+1+len(e.Model))
	k = append(k, e.Tenant...)
	k = append(k, 0)
	return append(k, e.Model...)
}
