package ingest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
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

// aiSDKProviders maps provider ids of the Vercel AI SDK that are neither a
// key nor a value of providerNames to catalog names. The AI SDK sets
// gen_ai.system to its model's provider, `<provider>.<api>` (openai.chat,
// openai.responses, anthropic.messages, azure.chat, mistral.chat,
// vertex.anthropic.messages, …) or a bare id (amazon-bedrock).
var aiSDKProviders = map[string]string{
	"amazon-bedrock": "bedrock",
	"vertex":         "vertex_ai", // vertex.anthropic.messages: Anthropic models on Vertex AI
	"togetherai":     "together",
	"fireworks":      "fireworks",
	"cerebras":       "cerebras",
	"deepinfra":      "deepinfra",
	"ollama":         "ollama",
}

// providerHeads maps the part before the first '.' of a provider value
// (all of it when there is none) to a catalog name: each undotted key of
// providerNames to its name, each catalog name of providerNames to itself
// (mistral.chat → mistral, azure.chat → azure), and aiSDKProviders.
var providerHeads = func() map[string]string {
	h := make(map[string]string, 2*len(providerNames)+len(aiSDKProviders))
	for k, v := range providerNames {
		h[v] = v
		if !strings.Contains(k, ".") {
			h[k] = v
		}
	}
	for k, v := range aiSDKProviders {
		h[k] = v
	}
	return h
}()

// ProviderName returns the costpipe provider name for an OpenTelemetry
// gen_ai.provider.name or gen_ai.system value: the documented mapping
// (aws.bedrock → bedrock, gcp.vertex_ai → vertex_ai, azure.ai.openai →
// azure, …); else, for the Vercel AI SDK's `<provider>.<api>` values, the
// name of the provider part when it is known (anthropic.messages →
// anthropic, amazon-bedrock → bedrock, google.generative-ai → google,
// google.vertex.chat → vertex_ai); else the value lower-cased.
func ProviderName(otel string) string {
	v := strings.ToLower(strings.TrimSpace(otel))
	if p, ok := providerNames[v]; ok {
		return p
	}
	head, rest, _ := strings.Cut(v, ".")
	if head == "google" && (rest == "vertex" || strings.HasPrefix(rest, "vertex.")) {
		return "vertex_ai" // google.vertex.chat, google.vertex.embedding, …
	}
	if p, ok := providerHeads[head]; ok {
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

// Optional event fields that the mapping leaves out, rather than reject a
// call that was billed, when their value breaks the event contract (too
// long, control characters, invalid UTF-8, a duration out of range): bits
// of otlpMapper.dropped, and the values of the field label of
// costpipe_ingest_otlp_fields_dropped_total (droppedFieldNames).
const (
	dropApplication uint8 = 1 << iota
	dropRegion
	dropOperation
	dropErrorType
	dropTTFT
)

// droppedFieldNames are the event fields of the drop bits, bit i at index i.
var droppedFieldNames = [...]string{"application", "region", "operation", "error_type", "ttft_ms"}

// validLabel reports whether s may be an optional string field of at most
// max bytes: "" (absent), or valid text (schemas.ValidText) within max.
func validLabel(s string, max int) bool {
	return len(s) <= max && schemas.ValidText(s)
}

// validDuration reports whether ms may be a duration of the event contract:
// finite, from 0 to 24 h (NaN fails both comparisons).
func validDuration(ms float64) bool {
	return ms >= 0 && ms <= schemas.MaxDurationMs
}

// resourceInfo is what the mapping takes from one ResourceSpans.
type resourceInfo struct {
	tenant      string // "" when it could not be decided (see otlpMapper.resource)
	tenantErr   string // why the spans of this resource have no tenant
	application string // "" when service.name is absent or invalid
	region      string // "" when cloud.region is absent or invalid
	dropped     uint8  // drop bits of application and region
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
	dropped    uint8      // drop bits of the last mapped span's event
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
	var attrTenant, oldEnv string
	var hasTenant, hasOldEnv bool
	res.Attributes().Range(func(k string, v pcommon.Value) bool {
		switch k {
		case m.tenantAttr:
			attrTenant, hasTenant = v.AsString(), true
		case attrServiceName:
			ri.application = v.AsString()
		case attrCloudRegion:
			ri.region = v.AsString()
		case attrDeploymentEnvOld:
			oldEnv, hasOldEnv = v.AsString(), true
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
	// The old name stands in for the current one only where that is
	// absent or a value mapSpan leaves out, whatever their order.
	if hasOldEnv && !slices.ContainsFunc(ri.kept, func(a keptAttr) bool {
		return a.k == attrDeploymentEnv && len(a.v) <= schemas.MaxLabelLen && schemas.ValidText(a.v)
	}) {
		ri.kept = append(ri.kept, keptAttr{attrDeploymentEnv, oldEnv})
	}
	// An invalid application or region is left out of every event of the
	// resource, not a reason to reject them (mapSpan counts it).
	if !validLabel(ri.application, schemas.MaxApplicationLen) {
		ri.application, ri.dropped = "", ri.dropped|dropApplication
	}
	if !validLabel(ri.region, schemas.MaxLabelLen) {
		ri.region, ri.dropped = "", ri.dropped|dropRegion
	}
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

// spanState is what one pass over a span's attributes collects. For each
// field read from several attributes, the rank of the highest-precedence
// attribute present decides, whatever the attributes' order: its value if
// valid, its error if not; attributes of lower precedence are ignored,
// valid or not.
type spanState struct {
	hasUsage               bool
	tokens                 [5]int64 // input, output, cache read, cache write, reasoning
	tokenRank              [5]int8
	tokenErr               [5]error // the winning attribute's error, per field
	provider, system       string
	respModel, reqModel    string
	operation, requestType string
	errorType              string
	httpStatus             int64
	tier, tierSrc          string
	tierRank               int8
	ttftMs                 float64
	ttftSrc                string // "" when no valid attribute won
	ttftRank               int8
	ttftBad                bool // the winning TTFT attribute is not a valid duration
}

// tokenFields are the event fields of spanState.tokens, for error messages.
var tokenFields = [5]int{fieldInput, fieldOutput, fieldCached, fieldCacheWrite, fieldReasoning}

func (st *spanState) reset() {
	*st = spanState{tokenRank: [5]int8{99, 99, 99, 99, 99}, tierRank: 99, ttftRank: 99}
}

// setToken reads token attribute k of precedence rank (0 first) into
// field slot, unless an attribute of higher precedence was read: the
// winner's value, or its error when it is not a valid count.
func (m *otlpMapper) setToken(slot int, rank int8, k string, v pcommon.Value) {
	st := &m.st
	st.hasUsage = true
	if rank >= st.tokenRank[slot] {
		return
	}
	n, err := tokenValue(k, v)
	st.tokens[slot], st.tokenErr[slot], st.tokenRank[slot] = n, err, rank
	m.src[tokenFields[slot]] = k
}

// setTTFT reads TTFT attribute k of precedence rank, in units of unitMs
// milliseconds, unless an attribute of higher precedence was read. A
// winner that is not a duration of the contract (not a number, negative,
// over 24 h: often milliseconds in a seconds attribute) marks the field
// bad, and the event goes without it.
func (m *otlpMapper) setTTFT(rank int8, k string, v pcommon.Value, unitMs float64) {
	st := &m.st
	if rank >= st.ttftRank {
		return
	}
	st.ttftRank = rank
	f, ok := numberValue(v)
	if f *= unitMs; !ok || !validDuration(f) {
		st.ttftMs, st.ttftSrc, st.ttftBad = 0, "", true
		return
	}
	st.ttftMs, st.ttftSrc, st.ttftBad = f, k, false
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

// isError reports whether a span of status code, with error.type
// errorType, is a failed call: status ERROR, or status UNSET with
// error.type (the conventions set error.type only when the call failed);
// an explicit OK wins over error.type.
func isError(code ptrace.StatusCode, errorType string) bool {
	return code == ptrace.StatusCodeError || code == ptrace.StatusCodeUnset && errorType != ""
}

// failedCall reports whether a span without gen_ai usage is a failed
// gen_ai call all the same (a 429, a timeout: the provider reported no
// usage): an error (isError) that names a provider, a model and an
// operation. It becomes an event of zero tokens with status error, so that
// error rates count it.
func (st *spanState) failedCall(code ptrace.StatusCode) bool {
	return isError(code, st.errorType) && (st.provider != "" || st.system != "") &&
		(st.respModel != "" || st.reqModel != "") && (st.operation != "" || st.requestType != "")
}

// mapSpan maps sp of resource ri. On spanMapped the event is m.ev (valid,
// valid until the next call) and m.dropped tells which optional fields it
// goes without; on spanRejected err says why.
func (m *otlpMapper) mapSpan(ri *resourceInfo, sp ptrace.Span) (spanOutcome, error) {
	ev := &m.ev
	*ev = schemas.Event{}
	clear(m.attrs)
	m.src = [fieldCount]string{}
	m.st.reset()
	m.dropped = 0
	m.kept = append(m.kept[:0], ri.kept...)
	sp.Attributes().Range(m.spanAttrFn)
	st := &m.st
	hasUsage, tokens := st.hasUsage, st.tokens
	provider, system, respModel, reqModel := st.provider, st.system, st.respModel, st.reqModel
	operation, requestType, errorType, httpStatus := st.operation, st.requestType, st.errorType, st.httpStatus
	tier, tierSrc, ttftMs, ttftSrc, ttftBad := st.tier, st.tierSrc, st.ttftMs, st.ttftSrc, st.ttftBad
	statusCode := sp.Status().Code()
	if !hasUsage && !st.failedCall(statusCode) {
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
	for _, err := range st.tokenErr {
		if err != nil {
			return spanRejected, err
		}
	}
	m.dropped = ri.dropped

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
	// An invalid operation is left out, as every optional field below.
	if validLabel(operation, schemas.MaxLabelLen) {
		ev.Operation = operation
	} else {
		m.dropped |= dropOperation
	}

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
	// (isError). An invalid error.type is left out: the type is then the
	// HTTP status's, as without error.type.
	if isError(statusCode, errorType) {
		ev.Status = schemas.StatusError
		if validLabel(errorType, schemas.MaxLabelLen) {
			ev.ErrorType = errorType
		} else {
			m.dropped |= dropErrorType
		}
		if ev.ErrorType == "" {
			ev.ErrorType = errorTypeOfHTTP(httpStatus)
		}
	} else {
		ev.Status = schemas.StatusOK
	}

	// Service tier, as the rollups key it: lower case, standard as absent.
	if tier != "" {
		t := strings.ToLower(tier)
		if !standardTiers[t] {
			ev.ServiceTier, m.src[fieldTier] = t, tierSrc
		}
	}

	// Time to first token: an attribute, else the Vercel AI SDK's span
	// event. A value that is no duration of the contract is left out.
	switch {
	case ttftBad:
		m.dropped |= dropTTFT
	case ttftSrc != "":
		ev.TTFTMs, ev.HasTTFT, m.src[fieldTTFT] = ttftMs, true, ttftSrc
	default:
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
			f, src := -1.0, eventFirstChunk+" event attribute"
			if ok {
				if f, ok = numberValue(v); !ok {
					f = -1
				}
			} else if ts := e.Timestamp(); ts >= start {
				f, src = float64(ts-start)/1e6, eventFirstChunk+" event time"
			}
			if validDuration(f) {
				ev.TTFTMs, ev.HasTTFT, m.src[fieldTTFT] = f, true, src
			} else {
				m.dropped |= dropTTFT
			}
			break
		}
	}

	// Kept attributes: only values the contract accepts; others are left
	// out rather than rejecting a call that was billed.
	for _, a := range m.kept {
		// At the bound, a span's value still replaces its resource's.
		if _, ok := m.attrs[a.k]; !ok && len(m.attrs) >= schemas.MaxAttributes {
			continue
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
