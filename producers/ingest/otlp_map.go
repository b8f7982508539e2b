package ingest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/costpipe/costpipe/schemas"
)

// This file maps one OTLP span with OpenTelemetry GenAI attributes to one
// costpipe event. docs/otlp.md holds the table for users; the attribute
// names below are that table, and a change here is a change there.

// Span attributes read as token counts, in order of precedence per field:
// the current GenAI semantic conventions first, then the names older
// conventions, OpenLLMetry and OpenLIT emit. The first present wins; they
// are never added up.
var (
	attrInputTokens     = []string{"gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"}
	attrOutputTokens    = []string{"gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"}
	attrCacheReadTokens = []string{"gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
		"gen_ai.usage.input_tokens.cached"}
	attrCacheWriteTokens = []string{"gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
		"gen_ai.usage.input_tokens.cache_write"}
	attrReasoningTokens = []string{"gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
		"gen_ai.usage.output_tokens.reasoning"}
)

// Other span attributes the mapping reads.
const (
	attrProviderName     = "gen_ai.provider.name"
	attrSystem           = "gen_ai.system" // deprecated for gen_ai.provider.name
	attrResponseModel    = "gen_ai.response.model"
	attrRequestModel     = "gen_ai.request.model"
	attrOperationName    = "gen_ai.operation.name"
	attrLLMRequestType   = "llm.request.type" // OpenLLMetry's operation before gen_ai.operation.name
	attrErrorType        = "error.type"
	attrHTTPStatus       = "http.response.status_code"
	attrServiceTierOld   = "gen_ai.openai.response.service_tier" // deprecated for openai.response.service_tier
	attrServiceTierNew   = "openai.response.service_tier"
	attrServiceTierLIT   = "gen_ai.response.service_tier"        // OpenLIT
	attrTTFTChunk        = "gen_ai.response.time_to_first_chunk" // seconds
	attrTTFTServer       = "gen_ai.server.time_to_first_token"   // seconds (OpenLIT)
	attrTTFTVercel       = "ai.response.msToFirstChunk"          // milliseconds (Vercel AI SDK)
	attrTTFTVercelStream = "ai.stream.msToFirstChunk"            // milliseconds (Vercel AI SDK, older)
	eventFirstChunk      = "ai.stream.firstChunk"                // span event (Vercel AI SDK)
	attrServiceName      = "service.name"
	attrCloudRegion      = "cloud.region"
	attrDeploymentEnv    = "deployment.environment.name"
	attrDeploymentEnvOld = "deployment.environment"
	// attrKeepPrefix: span or resource attributes under this prefix are kept in
	// the event's attributes under the rest of their name.
	attrKeepPrefix = "costpipe.attributes."
)

// keptSpanAttr are span attributes copied to the event's attributes under
// the same name (docs/otlp.md, "Kept attributes").
var keptSpanAttr = map[string]bool{
	"gen_ai.response.id":             true,
	"gen_ai.response.finish_reasons": true,
	"gen_ai.conversation.id":         true,
	"gen_ai.agent.name":              true,
	"gen_ai.request.max_tokens":      true,
	"server.address":                 true,
}

// keptResourceAttrs are resource attributes copied to the event's
// attributes under the same name.
var keptResourceAttrs = []string{
	"service.version",
	"service.namespace",
	attrDeploymentEnv,
}

// providerNames maps the values of gen_ai.provider.name and gen_ai.system
// (current and deprecated well-known values, and OpenLIT's) to the provider
// names of costpipe's price catalog (pipelines/pricing/README.md). Other
// values are kept, lower-cased.
var providerNames = map[string]string{
	"openai":             "openai",
	"anthropic":          "anthropic",
	"aws.bedrock":        "bedrock",
	"azure.ai.openai":    "azure",
	"az.ai.openai":       "azure",
	"azure.ai.inference": "azure_ai",
	"az.ai.inference":    "azure_ai",
	"gcp.vertex_ai":      "vertex_ai",
	"vertex_ai":          "vertex_ai",
	"gcp.gemini":         "google",
	"gemini":             "google",
	"gcp.gen_ai":         "google",
	"google.ai.studio":   "google",
	"ibm.watsonx.ai":     "watsonx",
	"ibm.watson.ai":      "watsonx",
	"mistral_ai":         "mistral",
	"x_ai":               "xai",
	"xai":                "xai",
	"cohere":             "cohere",
	"deepseek":           "deepseek",
	"groq":               "groq",
	"perplexity":         "perplexity",
}

// ProviderName returns the costpipe provider name for an OpenTelemetry
// gen_ai.provider.name or gen_ai.system value: the documented mapping
// (aws.bedrock → bedrock, gcp.vertex_ai → vertex_ai, azure.ai.openai →
// azure, …), else the value lower-cased.
func ProviderName(otel string) string {
	v := strings.ToLower(strings.TrimSpace(otel))
	if p, ok := providerNames[v]; ok {
		return p
	}
	return v
}

// standardTiers are service tier values that mean the standard tier; the
// event leaves service_tier out for them.
var standardTiers = map[string]bool{"default": true, "standard": true, "auto": true, "on_demand": true}

// spanOutcome is what became of one span.
type spanOutcome uint8

const (
	spanMapped   spanOutcome = iota // one valid event
	spanNoUsage                     // no gen_ai usage attribute: ignored
	spanSkipped                     // an aggregate operation (Options.OTLPSkipOperations): ignored
	spanRejected                    // a gen_ai span that cannot be an event
)

// resourceInfo is what the mapping takes from one ResourceSpans.
type resourceInfo struct {
	tenant      string // "" when it could not be decided (see otlpMapper.resource)
	tenantErr   string // why the spans of this resource have no tenant
	application string
	region      string
	kept        []keptAttr
}

// keptAttr is one attribute copied to an event's attributes.
type keptAttr struct{ k, v string }

// otlpMapper maps spans to events. It is reused across the spans of one
// request and is not safe for concurrent use.
type otlpMapper struct {
	tenantAttr string
	skipOps    map[string]bool

	ev         schemas.Event
	attrs      map[string]string // ev.Attributes, cleared for each span
	src        [fieldCount]string
	hex        [49]byte // trace id, '-', span id
	st         spanState
	kept       []keptAttr // the resource's and the span's kept attributes
	spanAttrFn func(string, pcommon.Value) bool
}

// Event fields whose value came from a named attribute, for error messages.
const (
	fieldModel = iota
	fieldProvider
	fieldInput
	fieldCached
	fieldCacheWrite
	fieldOutput
	fieldReasoning
	fieldTier
	fieldTTFT
	fieldCount
)

// fieldIndex maps schemas.FieldError.Field to the fields above.
var fieldIndex = map[string]int{
	"model": fieldModel, "provider": fieldProvider, "input_tokens": fieldInput,
	"cached_input_tokens": fieldCached, "cache_write_tokens": fieldCacheWrite,
	"output_tokens": fieldOutput, "reasoning_tokens": fieldReasoning,
	"service_tier": fieldTier, "ttft_ms": fieldTTFT,
}

func newOTLPMapper(tenantAttr string, skipOps []string) *otlpMapper {
	m := &otlpMapper{tenantAttr: tenantAttr, skipOps: make(map[string]bool, len(skipOps)), attrs: make(map[string]string)}
	for _, op := range skipOps {
		m.skipOps[op] = true
	}
	m.spanAttrFn = m.spanAttr
	return m
}

// resource reads one resource's attributes. keyTenant is the API key's
// tenant (AnyTenant for a `*` key or without authentication). forbidden
// reports a resource whose tenant attribute names another tenant than the
// key's (an empty one names none: the key's tenant).
func (m *otlpMapper) resource(res pcommon.Resource, keyTenant string) (ri resourceInfo, forbidden bool) {
	var attrTenant string
	var hasTenant bool
	res.Attributes().Range(func(k string, v pcommon.Value) bool {
		switch k {
		case m.tenantAttr:
			attrTenant, hasTenant = v.AsString(), true
		case attrServiceName:
			ri.application = v.AsString()
		case attrCloudRegion:
			ri.region = v.AsString()
		case attrDeploymentEnvOld:
			ri.kept = append(ri.kept, keptAttr{attrDeploymentEnv, v.AsString()})
		default:
			for _, name := range keptResourceAttrs {
				if k == name {
					ri.kept = append(ri.kept, keptAttr{k, v.AsString()})
				}
			}
			if strings.HasPrefix(k, attrKeepPrefix) {
				ri.kept = append(ri.kept, keptAttr{k[len(attrKeepPrefix):], v.AsString()})
			}
		}
		return true
	})
	switch {
	case keyTenant != AnyTenant:
		ri.tenant = keyTenant
		// An empty attribute is no tenant, as an absent, null or "" tenant
		// of /v1/events is (a Collector's resource processor set from an
		// unset variable writes ""): the key's tenant.
		forbidden = hasTenant && attrTenant != "" && attrTenant != keyTenant
		if forbidden {
			ri.tenantErr = "cannot write tenant " + quote(attrTenant) + " (resource attribute " + quote(m.tenantAttr) +
				"): the API key is bound to tenant " + quote(keyTenant)
		}
	case !hasTenant || attrTenant == "":
		ri.tenantErr = "no tenant: the API key may write every tenant, so the resource must carry the attribute " + quote(m.tenantAttr)
	default:
		ri.tenant = attrTenant
	}
	return ri, forbidden
}

// spanName names a span in error messages: its trace and span ids in hex
// and its name.
func spanName(sp ptrace.Span) string {
	tid, sid := sp.TraceID(), sp.SpanID()
	return "span " + hex.EncodeToString(tid[:]) + "/" + hex.EncodeToString(sid[:]) + " " + quote(sp.Name())
}

// spanState is what one pass over a span's attributes collects.
type spanState struct {
	hasUsage               bool
	tokens                 [5]int64 // input, output, cache read, cache write, reasoning
	tokenRank              [5]int8
	tokenErr               error
	provider, system       string
	respModel, reqModel    string
	operation, requestType string
	errorType              string
	httpStatus             int64
	tier, tierSrc          string
	tierRank               int8
	ttftMs                 float64
	ttftSrc                string
	ttftRank               int8
	ttftErr                error
}

// tokenFields are the event fields of spanState.tokens, for error messages.
var tokenFields = [5]int{fieldInput, fieldOutput, fieldCached, fieldCacheWrite, fieldReasoning}

func (st *spanState) reset() {
	*st = spanState{tokenRank: [5]int8{99, 99, 99, 99, 99}, tierRank: 99, ttftRank: 99}
}

func (m *otlpMapper) setToken(slot int, rank int8, k string, v pcommon.Value) {
	st := &m.st
	st.hasUsage = true
	if rank >= st.tokenRank[slot] {
		return
	}
	n, err := tokenValue(k, v)
	if err != nil {
		if st.tokenErr == nil {
			st.tokenErr = err
		}
		return
	}
	st.tokens[slot], st.tokenRank[slot] = n, rank
	m.src[tokenFields[slot]] = k
}

func (m *otlpMapper) setTTFT(rank int8, k string, v pcommon.Value, unitMs float64) {
	st := &m.st
	if rank >= st.ttftRank {
		return
	}
	f, ok := numberValue(v)
	if !ok || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		if st.ttftErr == nil {
			st.ttftErr = fmt.Errorf("attribute %q = %s: want a non-negative number", k, quote(v.AsString()))
		}
		return
	}
	st.ttftMs, st.ttftSrc, st.ttftRank = f*unitMs, k, rank
}

func (m *otlpMapper) setTier(rank int8, k string, v pcommon.Value) {
	if st := &m.st; rank < st.tierRank {
		st.tier, st.tierSrc, st.tierRank = v.AsString(), k, rank
	}
}

// spanAttr collects one span attribute into m.st and m.kept; it is the
// function of the span attributes' Range, bound once (m.spanAttrFn) so a
// span costs no closure.
func (m *otlpMapper) spanAttr(k string, v pcommon.Value) bool {
	st := &m.st
	switch k {
	case attrInputTokens[0]:
		m.setToken(0, 0, k, v)
	case attrInputTokens[1]:
		m.setToken(0, 1, k, v)
	case attrOutputTokens[0]:
		m.setToken(1, 0, k, v)
	case attrOutputTokens[1]:
		m.setToken(1, 1, k, v)
	case attrCacheReadTokens[0]:
		m.setToken(2, 0, k, v)
	case attrCacheReadTokens[1]:
		m.setToken(2, 1, k, v)
	case attrCacheReadTokens[2]:
		m.setToken(2, 2, k, v)
	case attrCacheWriteTokens[0]:
		m.setToken(3, 0, k, v)
	case attrCacheWriteTokens[1]:
		m.setToken(3, 1, k, v)
	case attrCacheWriteTokens[2]:
		m.setToken(3, 2, k, v)
	case attrReasoningTokens[0]:
		m.setToken(4, 0, k, v)
	case attrReasoningTokens[1]:
		m.setToken(4, 1, k, v)
	case attrReasoningTokens[2]:
		m.setToken(4, 2, k, v)
	case attrProviderName:
		st.provider = v.AsString()
	case attrSystem:
		st.system = v.AsString()
	case attrResponseModel:
		st.respModel = v.AsString()
	case attrRequestModel:
		st.reqModel = v.AsString()
	case attrOperationName:
		st.operation = v.AsString()
	case attrLLMRequestType:
		st.requestType = v.AsString()
	case attrErrorType:
		st.errorType = v.AsString()
	case attrHTTPStatus:
		if n, err := tokenValue(k, v); err == nil {
			st.httpStatus = n
		}
	case attrServiceTierNew:
		m.setTier(0, k, v)
	case attrServiceTierOld:
		m.setTier(1, k, v)
	case attrServiceTierLIT:
		m.setTier(2, k, v)
	case attrTTFTChunk:
		m.setTTFT(0, k, v, 1000)
	case attrTTFTServer:
		m.setTTFT(1, k, v, 1000)
	case attrTTFTVercel:
		m.setTTFT(2, k, v, 1)
	case attrTTFTVercelStream:
		m.setTTFT(3, k, v, 1)
	default:
		if keptSpanAttr[k] {
			m.kept = append(m.kept, keptAttr{k, keptValue(v)})
		} else if strings.HasPrefix(k, attrKeepPrefix) {
			m.kept = append(m.kept, keptAttr{k[len(attrKeepPrefix):], keptValue(v)})
		}
	}
	return true
}

// mapSpan maps sp of resource ri. On spanMapped the event is m.ev (valid,
// valid until the next call); on spanRejected err says why.
func (m *otlpMapper) mapSpan(ri *resourceInfo, sp ptrace.Span) (spanOutcome, error) {
	ev := &m.ev
	*ev = schemas.Event{}
	clear(m.attrs)
	m.src = [fieldCount]string{}
	m.st.reset()
	m.kept = append(m.kept[:0], ri.kept...)
	sp.Attributes().Range(m.spanAttrFn)
	st := &m.st
	hasUsage, tokens, tokenErr := st.hasUsage, st.tokens, st.tokenErr
	provider, system, respModel, reqModel := st.provider, st.system, st.respModel, st.reqModel
	operation, requestType, errorType, httpStatus := st.operation, st.requestType, st.errorType, st.httpStatus
	tier, tierSrc, ttftMs, ttftSrc, ttftErr := st.tier, st.tierSrc, st.ttftMs, st.ttftSrc, st.ttftErr
	if !hasUsage {
		return spanNoUsage, nil
	}
	if operation == "" {
		operation = requestType
	}
	if m.skipOps[operation] {
		return spanSkipped, nil
	}
	if ri.tenantErr != "" {
		return spanRejected, errors.New(ri.tenantErr)
	}
	if tokenErr != nil {
		return spanRejected, tokenErr
	}
	if ttftErr != nil {
		return spanRejected, ttftErr
	}

	// Identity and time.
	tid, sid := sp.TraceID(), sp.SpanID()
	if tid.IsEmpty() || sid.IsEmpty() {
		return spanRejected, errors.New("no trace_id or span_id: both are needed for the event_id")
	}
	hex.Encode(m.hex[:32], tid[:])
	m.hex[32] = '-'
	hex.Encode(m.hex[33:], sid[:])
	ev.EventID = string(m.hex[:])
	start, end := sp.StartTimestamp(), sp.EndTimestamp()
	if start == 0 {
		return spanRejected, errors.New("no start_time_unix_nano: it is the event's timestamp")
	}
	if end < start {
		return spanRejected, fmt.Errorf("end_time_unix_nano %d is before start_time_unix_nano %d", end, start)
	}
	if start > math.MaxInt64 {
		return spanRejected, fmt.Errorf("start_time_unix_nano %d is out of range", start)
	}
	ev.Timestamp = time.Unix(0, int64(start)).UTC()
	ev.LatencyMs, ev.HasLatency = float64(end-start)/1e6, true

	ev.Tenant = ri.tenant
	ev.Application = ri.application
	ev.Region = ri.region

	// Provider and model.
	switch {
	case provider != "":
		ev.Provider, m.src[fieldProvider] = ProviderName(provider), attrProviderName
	case system != "":
		ev.Provider, m.src[fieldProvider] = ProviderName(system), attrSystem
	default:
		return spanRejected, errors.New("no provider: neither gen_ai.provider.name nor gen_ai.system is set")
	}
	switch {
	case respModel != "":
		ev.Model, m.src[fieldModel] = respModel, attrResponseModel
	case reqModel != "":
		ev.Model, m.src[fieldModel] = reqModel, attrRequestModel
	default:
		return spanRejected, errors.New("no model: neither gen_ai.response.model nor gen_ai.request.model is set")
	}
	ev.Operation = operation

	// Tokens. Input includes cache reads and writes, output includes
	// reasoning (the conventions' and costpipe's rule). A span whose cache
	// tokens exceed its input reports input without them (Anthropic's raw
	// usage), one whose reasoning exceeds its output reports output without
	// it (Gemini's): add them, rather than reject a call that was billed.
	ev.InputTokens, ev.OutputTokens = tokens[0], tokens[1]
	ev.CachedInputTokens, ev.CacheWriteTokens, ev.ReasoningTokens = tokens[2], tokens[3], tokens[4]
	if c := ev.CachedInputTokens + ev.CacheWriteTokens; c > ev.InputTokens && ev.CachedInputTokens <= schemas.MaxTokens && ev.CacheWriteTokens <= schemas.MaxTokens {
		ev.InputTokens += c
	}
	if ev.ReasoningTokens > ev.OutputTokens && ev.ReasoningTokens <= schemas.MaxTokens {
		ev.OutputTokens += ev.ReasoningTokens
	}

	// Status: the span status; an unset status with error.type is an error
	// (the conventions set error.type only when the call failed).
	switch code := sp.Status().Code(); {
	case code == ptrace.StatusCodeError || code == ptrace.StatusCodeUnset && errorType != "":
		ev.Status = schemas.StatusError
		ev.ErrorType = errorType
		if ev.ErrorType == "" {
			ev.ErrorType = errorTypeOfHTTP(httpStatus)
		}
	default:
		ev.Status = schemas.StatusOK
	}

	// Service tier, as the rollups key it: lower case, standard as absent.
	if tier != "" {
		t := strings.ToLower(tier)
		if !standardTiers[t] {
			ev.ServiceTier, m.src[fieldTier] = t, tierSrc
		}
	}

	// Time to first token: an attribute, else the Vercel AI SDK's span event.
	if ttftSrc != "" {
		ev.TTFTMs, ev.HasTTFT, m.src[fieldTTFT] = ttftMs, true, ttftSrc
	} else {
		evs := sp.Events()
		for i := 0; i < evs.Len(); i++ {
			e := evs.At(i)
			if e.Name() != eventFirstChunk {
				continue
			}
			v, ok := e.Attributes().Get(attrTTFTVercel)
			if !ok {
				v, ok = e.Attributes().Get(attrTTFTVercelStream)
			}
			if ok {
				if f, ok := numberValue(v); ok && f >= 0 {
					ev.TTFTMs, ev.HasTTFT, m.src[fieldTTFT] = f, true, eventFirstChunk+" event attribute"
				}
			} else if ts := e.Timestamp(); ts >= start {
				ev.TTFTMs, ev.HasTTFT, m.src[fieldTTFT] = float64(ts-start)/1e6, true, eventFirstChunk+" event time"
			}
			break
		}
	}

	// Kept attributes: only values the contract accepts; others are left
	// out rather than rejecting a call that was billed.
	for _, a := range m.kept {
		if len(m.attrs) >= schemas.MaxAttributes {
			break
		}
		if a.k == "" || len(a.k) > schemas.MaxLabelLen || len(a.v) > schemas.MaxLabelLen ||
			!schemas.ValidText(a.k) || !schemas.ValidText(a.v) {
			continue
		}
		m.attrs[a.k] = a.v
	}
	if len(m.attrs) > 0 {
		ev.Attributes = m.attrs
	}

	if err := ev.Validate(); err != nil {
		return spanRejected, m.explain(err)
	}
	return spanMapped, nil
}

// explain adds the attribute an invalid field came from to a validation
// error.
func (m *otlpMapper) explain(err error) error {
	var fe *schemas.FieldError
	if errors.As(err, &fe) {
		if i, ok := fieldIndex[fe.Field]; ok && m.src[i] != "" {
			return fmt.Errorf("%w (from %s)", err, m.src[i])
		}
		switch fe.Field {
		case "application":
			return fmt.Errorf("%w (from resource attribute %s)", err, attrServiceName)
		case "region":
			return fmt.Errorf("%w (from resource attribute %s)", err, attrCloudRegion)
		case "tenant":
			return fmt.Errorf("%w (from resource attribute %s or the API key)", err, m.tenantAttr)
		case "operation":
			return fmt.Errorf("%w (from %s)", err, attrOperationName)
		case "error_type":
			return fmt.Errorf("%w (from %s)", err, attrErrorType)
		case "latency_ms":
			return fmt.Errorf("%w (the span's duration)", err)
		}
	}
	return err
}

// keptValue is an attribute value as an event attribute: its string
// form; an array (finish_reasons) as a comma-separated list.
func keptValue(v pcommon.Value) string {
	if v.Type() != pcommon.ValueTypeSlice {
		return v.AsString()
	}
	sl := v.Slice()
	if sl.Len() == 1 {
		return sl.At(0).AsString()
	}
	var sb strings.Builder
	for i := 0; i < sl.Len(); i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(sl.At(i).AsString())
	}
	return sb.String()
}

// tokenValue reads a count: an int, a double with an integral value, or a
// string of decimal digits (some SDKs send those), at least 0.
func tokenValue(k string, v pcommon.Value) (int64, error) {
	var n int64
	switch v.Type() {
	case pcommon.ValueTypeInt:
		n = v.Int()
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if f != math.Trunc(f) || f < 0 || f > schemas.MaxTokens {
			return 0, fmt.Errorf("attribute %q = %v: want a whole number from 0 to %d", k, f, schemas.MaxTokens)
		}
		n = int64(f)
	case pcommon.ValueTypeStr:
		var err error
		if n, err = strconv.ParseInt(strings.TrimSpace(v.Str()), 10, 64); err != nil {
			return 0, fmt.Errorf("attribute %q = %s: want a whole number", k, quote(v.Str()))
		}
	default:
		return 0, fmt.Errorf("attribute %q has type %s: want an integer", k, v.Type())
	}
	if n < 0 || n > schemas.MaxTokens {
		return 0, fmt.Errorf("attribute %q = %d: want a whole number from 0 to %d", k, n, schemas.MaxTokens)
	}
	return n, nil
}

// numberValue reads an int, a double or a decimal string as a float64.
func numberValue(v pcommon.Value) (float64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return float64(v.Int()), true
	case pcommon.ValueTypeDouble:
		return v.Double(), true
	case pcommon.ValueTypeStr:
		f, err := strconv.ParseFloat(strings.TrimSpace(v.Str()), 64)
		return f, err == nil
	}
	return 0, false
}

// errorTypeOfHTTP names the error of a failed call without error.type by
// its HTTP status, as costpipe's error types go; "_OTHER" (the conventions'
// fallback value of error.type) when there is none.
func errorTypeOfHTTP(status int64) string {
	switch {
	case status == 429:
		return "rate_limited"
	case status == 408 || status == 504:
		return "timeout"
	case status >= 500 && status <= 599:
		return "server_error"
	case status >= 400 && status <= 499:
		return "client_error"
	}
	return "_OTHER"
}
