package schemas

// Field mapping: which Event field a JSON key names, and how its value is
// decoded into the Event.

import (
	"encoding/binary"
	"math"
)

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
	fCacheWrite1hTokens
	fServiceTier
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
	case fEventID, fTenant, fProvider, fModel, fErrorType, fApplication, fOperation, fRegion, fServiceTier:
		var s []byte
		lones := d.lones
		if c == '"' {
			s, i, _, err = d.scanString(data, i)
		} else {
			s, i, err = d.stringValue(data, i, eventFields[f])
		}
		if d.lones != lones && err == nil {
			return i, loneSurrogate(eventFields[f], s)
		}
		if f == fEventID {
			e.EventID = d.idString(s)
		} else {
			v, text := d.internText(s)
			*labelField(e, f) = v
			// The last value of a repeated key wins, and its bit with it.
			d.text = d.text&^(1<<f) | b2u(text)<<f
		}
	case fTimestamp:
		e.Timestamp, i, err = d.timestampValue(data, i)
	case fStatus:
		e.Status, i, err = d.statusValue(data, i)
	case fInputTokens, fCachedInputTokens, fCacheWriteTokens, fOutputTokens, fReasoningTokens, fCacheWrite1hTokens:
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
	case fServiceTier:
		return &e.ServiceTier
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
	case fCacheWrite1hTokens:
		return &e.CacheWrite1hTokens
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
	case "cache_write_1h_tokens":
		return fCacheWrite1hTokens
	case "service_tier":
		return fServiceTier
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
	"cache_write_1h_tokens", "service_tier",
	"latency_ms", "ttft_ms", "gpu_ms", "attributes",
}

// predictAhead is how many keys in contract order the object walk tries
// with plain compares, from the one after the previous key: enough to skip
// two absent optional fields in a row (error_type; cache_write_1h_tokens and
// service_tier, which most events lack) without scanning the key.
const predictAhead = 3

// eventKeys holds `"name":` for each of eventFields, to match a key and its
// colon with a few word compares, then predictAhead-1 empty patterns that
// never match, so the object walk can try predictAhead keys from any field
// without a bounds check.
var eventKeys = func() (k [len(eventFields) + predictAhead - 1]keyPattern) {
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

// match returns len(p.s) when data[i:] starts with p.s, else 0 (always 0
// for the empty pattern).
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

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
