package ingest

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/costpipe/costpipe/schemas"
)

var (
	testTraceID = pcommon.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
	testSpanID  = pcommon.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31}
	testStart   = time.Date(2026, 11, 28, 9, 7, 12, 345_000_000, time.UTC)
)

const testEventID = "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"

// testTraces returns traces of one resource (res attributes) with one span
// per element of spans, each filled by its function on top of a valid
// gen_ai span: ids, 812.5 ms from testStart, provider openai, model gpt-4o,
// 1200 input and 350 output tokens.
func testTraces(res map[string]any, spans ...func(ptrace.Span)) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	if err := rs.Resource().Attributes().FromRaw(res); err != nil {
		panic(err)
	}
	ss := rs.ScopeSpans().AppendEmpty()
	for i, f := range spans {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("chat gpt-4o")
		sid := testSpanID
		sid[7] += byte(i)
		sp.SetTraceID(testTraceID)
		sp.SetSpanID(sid)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(testStart))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(testStart.Add(812500 * time.Microsecond)))
		a := sp.Attributes()
		a.PutStr("gen_ai.provider.name", "openai")
		a.PutStr("gen_ai.operation.name", "chat")
		a.PutStr("gen_ai.request.model", "gpt-4o")
		a.PutInt("gen_ai.usage.input_tokens", 1200)
		a.PutInt("gen_ai.usage.output_tokens", 350)
		if f != nil {
			f(sp)
		}
	}
	return td
}

// baseEvent is the event of testTraces' span without changes, for tenant
// acme and service chat-ui.
func baseEvent() schemas.Event {
	return schemas.Event{
		EventID: testEventID, Timestamp: testStart, Tenant: "acme", Provider: "openai", Model: "gpt-4o",
		Status: schemas.StatusOK, Application: "chat-ui", Operation: "chat",
		InputTokens: 1200, OutputTokens: 350, LatencyMs: 812.5, HasLatency: true,
	}
}

// TestOTLPMapping checks the mapping table of one span, rule by rule.
func TestOTLPMapping(t *testing.T) {
	t.Parallel()
	res := map[string]any{"service.name": "chat-ui"}
	for _, tc := range []struct {
		name     string
		key      string         // the key's tenant; "" means acme
		res      map[string]any // nil: res
		span     func(ptrace.Span)
		outcome  spanOutcome
		want     func(*schemas.Event) // changes to baseEvent
		rejected string               // part of the reason
	}{
		{name: "plain", want: func(*schemas.Event) {}},
		{name: "response model wins", span: func(sp ptrace.Span) {
			sp.Attributes().PutStr("gen_ai.response.model", "gpt-4o-2024-08-06")
		}, want: func(e *schemas.Event) { e.Model = "gpt-4o-2024-08-06" }},
		{name: "deprecated names", span: func(sp ptrace.Span) {
			a := sp.Attributes()
			a.Remove("gen_ai.provider.name")
			a.Remove("gen_ai.usage.input_tokens")
			a.Remove("gen_ai.usage.output_tokens")
			a.Remove("gen_ai.operation.name")
			a.PutStr("gen_ai.system", "aws.bedrock")
			a.PutInt("gen_ai.usage.prompt_tokens", 70)
			a.PutInt("gen_ai.usage.completion_tokens", 30)
			a.PutStr("llm.request.type", "completion")
		}, want: func(e *schemas.Event) {
			e.Provider, e.InputTokens, e.OutputTokens, e.Operation = "bedrock", 70, 30, "completion"
		}},
		{name: "current names win over deprecated ones", span: func(sp ptrace.Span) {
			a := sp.Attributes()
			a.PutStr("gen_ai.system", "anthropic")
			a.PutInt("gen_ai.usage.prompt_tokens", 1)
			a.PutInt("gen_ai.usage.completion_tokens", 2)
		}, want: func(*schemas.Event) {}},
		{name: "provider mapping", span: func(sp ptrace.Span) {
			sp.Attributes().PutStr("gen_ai.provider.name", "gcp.vertex_ai")
		}, want: func(e *schemas.Event) { e.Provider = "vertex_ai" }},
		{name: "unknown provider kept lower-cased", span: func(sp ptrace.Span) {
			sp.Attributes().PutStr("gen_ai.provider.name", "Ollama")
		}, want: func(e *schemas.Event) { e.Provider = "ollama" }},
		{name: "semconv cache and reasoning", span: func(sp ptrace.Span) {
			a := sp.Attributes()
			a.PutInt("gen_ai.usage.cache_read.input_tokens", 1000)
			a.PutInt("gen_ai.usage.cache_creation.input_tokens", 100)
			a.PutInt("gen_ai.usage.reasoning.output_tokens", 200)
		}, want: func(e *schemas.Event) { e.CachedInputTokens, e.CacheWriteTokens, e.ReasoningTokens = 1000, 100, 200 }},
		{name: "OpenLLMetry cache and reasoning, as strings and doubles", span: func(sp ptrace.Span) {
			a := sp.Attributes()
			a.PutStr("gen_ai.usage.cache_read_input_tokens", "1000")
			a.PutDouble("gen_ai.usage.cache_creation_input_tokens", 100)
			a.PutInt("gen_ai.usage.reasoning_tokens", 200)
		}, want: func(e *schemas.Event) { e.CachedInputTokens, e.CacheWriteTokens, e.ReasoningTokens = 1000, 100, 200 }},
		{name: "cache beyond input: input reported without it", span: func(sp ptrace.Span) {
			a := sp.Attributes()
			a.PutInt("gen_ai.usage.input_tokens", 20)
			a.PutInt("gen_ai.usage.cache_read.input_tokens", 1000)
			a.PutInt("gen_ai.usage.cache_creation.input_tokens", 100)
		}, want: func(e *schemas.Event) { e.InputTokens, e.CachedInputTokens, e.CacheWriteTokens = 1120, 1000, 100 }},
		{name: "reasoning beyond output: output reported without it", span: func(sp ptrace.Span) {
			sp.Attributes().PutInt("gen_ai.usage.reasoning.output_tokens", 500)
		}, want: func(e *schemas.Event) { e.OutputTokens, e.ReasoningTokens = 850, 500 }},
		{name: "TTFT in seconds", span: func(sp ptrace.Span) {
			sp.Attributes().PutDouble("gen_ai.response.time_to_first_chunk", 0.125)
			sp.Attributes().PutDouble("gen_ai.server.time_to_first_token", 9)
		}, want: func(e *schemas.Event) { e.TTFTMs, e.HasTTFT = 125, true }},
		{name: "TTFT OpenLIT", span: func(sp ptrace.Span) {
			sp.Attributes().PutDouble("gen_ai.server.time_to_first_token", 0.25)
		}, want: func(e *schemas.Event) { e.TTFTMs, e.HasTTFT = 250, true }},
		{name: "TTFT Vercel AI SDK attribute in ms", span: func(sp ptrace.Span) {
			sp.Attributes().PutInt("ai.response.msToFirstChunk", 77)
		}, want: func(e *schemas.Event) { e.TTFTMs, e.HasTTFT = 77, true }},
		{name: "TTFT from the first-chunk event time", span: func(sp ptrace.Span) {
			ev := sp.Events().AppendEmpty()
			ev.SetName("ai.stream.firstChunk")
			ev.SetTimestamp(pcommon.NewTimestampFromTime(testStart.Add(90 * time.Millisecond)))
		}, want: func(e *schemas.Event) { e.TTFTMs, e.HasTTFT = 90, true }},
		{name: "error status and error.type", span: func(sp ptrace.Span) {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Attributes().PutStr("error.type", "timeout")
		}, want: func(e *schemas.Event) { e.Status, e.ErrorType = schemas.StatusError, "timeout" }},
		{name: "error status, type from the HTTP status", span: func(sp ptrace.Span) {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Attributes().PutInt("http.response.status_code", 429)
		}, want: func(e *schemas.Event) { e.Status, e.ErrorType = schemas.StatusError, "rate_limited" }},
		{name: "error status without any type", span: func(sp ptrace.Span) {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}, want: func(e *schemas.Event) { e.Status, e.ErrorType = schemas.StatusError, "_OTHER" }},
		{name: "unset status with error.type is an error", span: func(sp ptrace.Span) {
			sp.Attributes().PutStr("error.type", "server_error")
		}, want: func(e *schemas.Event) { e.Status, e.ErrorType = schemas.StatusError, "server_error" }},
		{name: "ok status wins over error.type", span: func(sp ptrace.Span) {
			sp.Status().SetCode(ptrace.StatusCodeOk)
			sp.Attributes().PutStr("error.type", "server_error")
		}, want: func(*schemas.Event) {}},
		{name: "service tier default is standard", span: func(sp ptrace.Span) {
			sp.Attributes().PutStr("gen_ai.openai.response.service_tier", "default")
		}, want: func(*schemas.Event) {}},
		{name: "service tier lower-cased, new name first", span: func(sp ptrace.Span) {
			sp.Attributes().PutStr("gen_ai.openai.response.service_tier", "priority")
			sp.Attributes().PutStr("openai.response.service_tier", "Flex")
		}, want: func(e *schemas.Event) { e.ServiceTier = "flex" }},
		{name: "kept attributes", res: map[string]any{"service.name": "chat-ui", "cloud.region": "eu-west-1",
			"deployment.environment": "prod", "costpipe.attributes.team": "search", "costpipe.attributes.bad": "a\tb"},
			span: func(sp ptrace.Span) {
				a := sp.Attributes()
				a.PutStr("gen_ai.response.id", "chatcmpl-1")
				a.PutEmptySlice("gen_ai.response.finish_reasons").FromRaw([]any{"stop", "tool_calls"})
				a.PutStr("costpipe.attributes.feature", "summaries")
				a.PutStr("gen_ai.prompt", "not kept")
			}, want: func(e *schemas.Event) {
				e.Region = "eu-west-1"
				e.Attributes = map[string]string{"deployment.environment.name": "prod", "team": "search",
					"gen_ai.response.id": "chatcmpl-1", "gen_ai.response.finish_reasons": "stop,tool_calls", "feature": "summaries"}
			}},
		{name: "tenant from the resource with a * key", key: AnyTenant,
			res:  map[string]any{"service.name": "chat-ui", "costpipe.tenant": "globex"},
			want: func(e *schemas.Event) { e.Tenant = "globex" }},
		{name: "same tenant attribute with a bound key", res: map[string]any{"service.name": "chat-ui", "costpipe.tenant": "acme"},
			want: func(*schemas.Event) {}},
		{name: "empty tenant attribute with a bound key: the key's tenant", res: map[string]any{"service.name": "chat-ui", "costpipe.tenant": ""},
			want: func(*schemas.Event) {}},
		{name: "empty tenant attribute with a * key", key: AnyTenant, res: map[string]any{"costpipe.tenant": ""}, outcome: spanRejected,
			rejected: `must carry the attribute "costpipe.tenant"`},

		{name: "no usage", span: func(sp ptrace.Span) {
			sp.Attributes().Remove("gen_ai.usage.input_tokens")
			sp.Attributes().Remove("gen_ai.usage.output_tokens")
		}, outcome: spanNoUsage},
		{name: "agent span skipped", span: func(sp ptrace.Span) {
			sp.Attributes().PutStr("gen_ai.operation.name", "invoke_agent")
		}, outcome: spanSkipped},

		{name: "no tenant with a * key", key: AnyTenant, outcome: spanRejected, rejected: `must carry the attribute "costpipe.tenant"`},
		{name: "another tenant with a bound key", res: map[string]any{"costpipe.tenant": "globex"}, outcome: spanRejected,
			rejected: `cannot write tenant "globex"`},
		{name: "no provider", span: func(sp ptrace.Span) { sp.Attributes().Remove("gen_ai.provider.name") },
			outcome: spanRejected, rejected: "no provider"},
		{name: "no model", span: func(sp ptrace.Span) { sp.Attributes().Remove("gen_ai.request.model") },
			outcome: spanRejected, rejected: "no model"},
		{name: "token count not a number", span: func(sp ptrace.Span) { sp.Attributes().PutStr("gen_ai.usage.output_tokens", "lots") },
			outcome: spanRejected, rejected: `attribute "gen_ai.usage.output_tokens" = "lots": want a whole number`},
		{name: "negative tokens", span: func(sp ptrace.Span) { sp.Attributes().PutInt("gen_ai.usage.input_tokens", -1) },
			outcome: spanRejected, rejected: `attribute "gen_ai.usage.input_tokens" = -1`},
		{name: "fractional tokens", span: func(sp ptrace.Span) { sp.Attributes().PutDouble("gen_ai.usage.input_tokens", 1.5) },
			outcome: spanRejected, rejected: `attribute "gen_ai.usage.input_tokens" = 1.5`},
		{name: "bool tokens", span: func(sp ptrace.Span) { sp.Attributes().PutBool("gen_ai.usage.input_tokens", true) },
			outcome: spanRejected, rejected: `has type Bool`},
		{name: "no span id", span: func(sp ptrace.Span) { sp.SetSpanID(pcommon.SpanID{}) },
			outcome: spanRejected, rejected: "no trace_id or span_id"},
		{name: "no start", span: func(sp ptrace.Span) { sp.SetStartTimestamp(0) },
			outcome: spanRejected, rejected: "no start_time_unix_nano"},
		{name: "ends before it starts", span: func(sp ptrace.Span) { sp.SetEndTimestamp(sp.StartTimestamp() - 1) },
			outcome: spanRejected, rejected: "is before start_time_unix_nano"},
		{name: "longer than a day", span: func(sp ptrace.Span) {
			sp.SetEndTimestamp(sp.StartTimestamp() + pcommon.Timestamp(25*time.Hour))
		}, outcome: spanRejected, rejected: `"latency_ms"`},
		{name: "invalid service tier", span: func(sp ptrace.Span) {
			sp.Attributes().PutStr("openai.response.service_tier", "on demand")
		}, outcome: spanRejected, rejected: "(from openai.response.service_tier)"},
		{name: "model with a control character", span: func(sp ptrace.Span) {
			sp.Attributes().PutStr("gen_ai.response.model", "gpt\x1b[2J")
		}, outcome: spanRejected, rejected: "(from gen_ai.response.model)"},
		{name: "negative TTFT left out", span: func(sp ptrace.Span) {
			sp.Attributes().PutDouble("gen_ai.server.time_to_first_token", -1)
		}, want: func(*schemas.Event) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == "" {
				key = "acme"
			}
			r := tc.res
			if r == nil {
				r = res
			}
			td := testTraces(r, tc.span)
			m := newOTLPMapper(DefaultOTLPTenantAttribute, DefaultOTLPSkipOperations())
			ri, _ := m.resource(td.ResourceSpans().At(0).Resource(), key)
			sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
			outcome, err := m.mapSpan(&ri, sp)
			if outcome != tc.outcome {
				t.Fatalf("outcome %d (%v), want %d", outcome, err, tc.outcome)
			}
			if tc.outcome == spanRejected {
				if err == nil || !strings.Contains(err.Error(), tc.rejected) {
					t.Fatalf("reason %v, want it to contain %q", err, tc.rejected)
				}
				return
			}
			if tc.outcome != spanMapped {
				return
			}
			want := baseEvent()
			tc.want(&want)
			if !m.ev.Equal(&want) {
				t.Errorf("event\n got %s\nwant %s", schemas.AppendJSON(nil, &m.ev), schemas.AppendJSON(nil, &want))
			}
		})
	}
}

// postOTLP posts body to /v1/traces and returns the response and its body.
func postOTLP(t testing.TB, g *gateway, key, contentType string, body []byte, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.url+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(name, strings.TrimSpace(value))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

// rpcStatus decodes an error answer's google.rpc.Status in the answer's
// encoding.
func rpcStatus(t testing.TB, resp *http.Response, body []byte) *status.Status {
	t.Helper()
	st := &status.Status{}
	var err error
	switch ct := resp.Header.Get("Content-Type"); ct {
	case "application/json":
		err = protojson.Unmarshal(body, st)
	case "application/x-protobuf":
		err = proto.Unmarshal(body, st)
	default:
		t.Fatalf("answer %d has Content-Type %q", resp.StatusCode, ct)
	}
	if err != nil {
		t.Fatalf("answer %d %q is not a google.rpc.Status: %v", resp.StatusCode, body, err)
	}
	return st
}

func protoBody(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonBody(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOTLPStatusCodes checks every answer of /v1/traces: status code,
// encoding (the request's), a google.rpc.Status with a message for errors,
// an ExportTraceServiceResponse with partial_success for rejected spans.
func TestOTLPStatusCodes(t *testing.T) {
	t.Parallel()
	g := startGateway(t, func(o *Options) { o.MaxBodyBytes = 64 << 10 })
	res := map[string]any{"service.name": "chat-ui"}
	valid := protoBody(t, testTraces(res, nil))
	const pb, js = "application/x-protobuf", "application/json"
	for _, tc := range []struct {
		name        string
		method      string
		key, ct     string
		body        []byte
		headers     []string
		code        int
		respCT      string
		msg         string // part of the Status message
		rejected    int64  // for 200
		partialPart string
		partialAlso string // another part of the partial success message
	}{
		{name: "ok protobuf", key: "key-acme", ct: pb, body: valid, code: 200, respCT: pb},
		{name: "ok JSON", key: "key-acme", ct: js, body: jsonBody(t, testTraces(res, nil)), code: 200, respCT: js},
		{name: "ok gzip", key: "key-acme", ct: pb, body: []byte(gzipped(string(valid))), headers: []string{"Content-Encoding: gzip"}, code: 200, respCT: pb},
		{name: "empty protobuf request", key: "key-acme", ct: pb, body: nil, code: 200, respCT: pb},
		{name: "empty JSON object", key: "key-acme", ct: js, body: []byte(`{}`), code: 200, respCT: js},
		{name: "GET", method: http.MethodGet, key: "key-acme", ct: pb, code: 405, respCT: pb, msg: "use POST"},
		{name: "no key", ct: pb, body: valid, code: 401, respCT: pb, msg: "missing API key"},
		{name: "unknown key JSON", key: "nope", ct: js, body: valid, code: 401, respCT: js, msg: "unknown API key"},
		{name: "other content type", key: "key-acme", ct: "text/plain", body: valid, code: 415, respCT: js, msg: `"text/plain"`},
		{name: "no content type", key: "key-acme", body: valid, code: 415, respCT: js, msg: "without Content-Type"},
		{name: "brotli", key: "key-acme", ct: pb, body: valid, headers: []string{"Content-Encoding: br"}, code: 415, respCT: pb, msg: "Content-Encoding"},
		{name: "malformed protobuf", key: "key-acme", ct: pb, body: []byte{0x0a, 0xff, 0x01}, code: 400, respCT: pb, msg: "cannot decode the OTLP protobuf body"},
		{name: "malformed JSON", key: "key-acme", ct: js, body: []byte(`{"resourceSpans":[{`), code: 400, respCT: js,
			msg: "cannot decode the OTLP JSON body: not valid OTLP JSON (ExportTraceServiceRequest): the body ends at byte 19 inside a JSON value ("},
		{name: "JSON with a NUL", key: "key-acme", ct: js, body: []byte("{\"resourceSpans\":[]\x00}"), code: 400, respCT: js,
			msg: `not valid OTLP JSON (ExportTraceServiceRequest) at byte 19: invalid character '\x00' after object key:value pair (`},
		{name: "JSON not JSON", key: "key-acme", ct: js, body: []byte("\x00"), code: 400, respCT: js,
			msg: `not valid OTLP JSON (ExportTraceServiceRequest) at byte 0: invalid character '\x00' looking for beginning of value (ReadObject: expect { or , or } or n, but found \x00`},
		{name: "JSON with a wrong type", key: "key-acme", ct: js, body: []byte(`{"resourceSpans":"x"}`), code: 400, respCT: js,
			msg: "cannot decode the OTLP JSON body: not valid OTLP JSON (ExportTraceServiceRequest): ReadArray: expect [ or , or ] or n"},
		{name: "empty JSON", key: "key-acme", ct: js, body: nil, code: 400, respCT: js, msg: "not valid OTLP JSON (ExportTraceServiceRequest): the body is empty"},
		{name: "JSON nested too deep", key: "key-acme", ct: js, code: 400, respCT: js,
			body: []byte(`{"resourceSpans":` + strings.Repeat("[", 1500) + strings.Repeat("]", 1500) + `}`),
			msg:  "cannot decode the OTLP JSON body: nested deeper than 1000 levels at byte 1016"},
		{name: "bad gzip", key: "key-acme", ct: pb, body: []byte("not gzip"), headers: []string{"Content-Encoding: gzip"}, code: 400, respCT: pb,
			msg: "cannot read the request body: Content-Encoding is gzip, but the body does not start as gzip does"},
		{name: "empty gzip", key: "key-acme", ct: pb, body: nil, headers: []string{"Content-Encoding: gzip"}, code: 400, respCT: pb,
			msg: "cannot read the request body: it is empty, but Content-Encoding is gzip"},
		{name: "over the limit", key: "key-acme", ct: pb, body: make([]byte, 65<<10), code: 413, respCT: pb, msg: "exceeds 65536 bytes"},
		{name: "over the limit after gzip", key: "key-acme", ct: js, body: []byte(gzipped(strings.Repeat(" ", 1<<20))),
			headers: []string{"Content-Encoding: gzip"}, code: 413, respCT: js, msg: "exceeds 65536 bytes"},
		{name: "another tenant", key: "key-acme", ct: pb, body: protoBody(t, testTraces(map[string]any{"costpipe.tenant": "globex"}, nil)),
			code: 403, respCT: pb, msg: `forbidden 1 of 1 span(s): span 0af7651916cd43dd8448eb211c80319c/b7ad6b7169203331 "chat gpt-4o": cannot write tenant "globex"`},
		{name: "another tenant beside an invalid span", key: "key-acme", ct: pb, body: protoBody(t, mixedTenants()),
			code: 200, respCT: pb, rejected: 2,
			partialPart: `rejected 2 of 2 span(s): span 0af7651916cd43dd8448eb211c80319c/b7ad6b7169203331 "chat gpt-4o": cannot write tenant "globex"`,
			partialAlso: `"chat gpt-4o": no model`},
		{name: "partial success", key: "key-acme", ct: js, code: 200, respCT: js, rejected: 2,
			body: jsonBody(t, testTraces(res, nil,
				func(sp ptrace.Span) { sp.Attributes().Remove("gen_ai.request.model") },
				func(sp ptrace.Span) {
					sp.Attributes().Remove("gen_ai.usage.input_tokens")
					sp.Attributes().Remove("gen_ai.usage.output_tokens")
				},
				func(sp ptrace.Span) { sp.Attributes().PutInt("gen_ai.usage.input_tokens", -5) })),
			partialPart: `rejected 2 of 4 span(s): span 0af7651916cd43dd8448eb211c80319c/b7ad6b7169203332 "chat gpt-4o": no model`,
			partialAlso: `attribute "gen_ai.usage.input_tokens" = -5`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp *http.Response
			var body []byte
			if tc.method == http.MethodGet {
				req, _ := http.NewRequest(http.MethodGet, g.url+"/v1/traces", nil)
				req.Header.Set("Authorization", "Bearer "+tc.key)
				req.Header.Set("Content-Type", tc.ct)
				r, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ = io.ReadAll(r.Body)
				r.Body.Close()
				resp = r
			} else {
				resp, body = postOTLP(t, g, tc.key, tc.ct, tc.body, tc.headers...)
			}
			if resp.StatusCode != tc.code || resp.Header.Get("Content-Type") != tc.respCT {
				t.Fatalf("answer %d %q %q, want %d %s", resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.code, tc.respCT)
			}
			if tc.code != 200 {
				st := rpcStatus(t, resp, body)
				if !strings.Contains(st.Message, tc.msg) {
					t.Errorf("message %q, want it to contain %q", st.Message, tc.msg)
				}
				if !schemas.ValidText(st.Message) {
					t.Errorf("message %q holds a control character", st.Message)
				}
				return
			}
			er := ptraceotlp.NewExportResponse()
			var err error
			if tc.respCT == js {
				err = er.UnmarshalJSON(body)
			} else {
				err = er.UnmarshalProto(body)
			}
			if err != nil {
				t.Fatalf("answer %q is not an ExportTraceServiceResponse: %v", body, err)
			}
			ps := er.PartialSuccess()
			if ps.RejectedSpans() != tc.rejected || !strings.Contains(ps.ErrorMessage(), tc.partialPart) {
				t.Errorf("partial success %d %q, want %d and %q", ps.RejectedSpans(), ps.ErrorMessage(), tc.rejected, tc.partialPart)
			}
			if !strings.Contains(ps.ErrorMessage(), tc.partialAlso) {
				t.Errorf("partial success message %q does not name the other rejected span's reason %q", ps.ErrorMessage(), tc.partialAlso)
			}
		})
	}
	// A 413 is counted once the rest of the body is drained, after the answer.
	if n := waitMetric(t, g, `costpipe_ingest_otlp_requests_total{code="413"}`, 2); n != 2 {
		t.Errorf("413 answers counted %v, want 2", n)
	}
	if n := metricValue(t, g, `costpipe_ingest_otlp_spans_total{result="forbidden"}`); n != 2 {
		t.Errorf("forbidden spans counted %v, want 2", n)
	}
}

// waitMetric reads a sample of /metrics until it equals want, for at most
// 5 s, and returns the last value read.
func waitMetric(t testing.TB, g *gateway, sample string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := metricValue(t, g, sample)
		if v == want || time.Now().After(deadline) {
			return v
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mixedTenants is an export of two resources: one of the key's tenant whose
// span has no model, then one naming tenant globex.
func mixedTenants() ptrace.Traces {
	td := testTraces(map[string]any{"service.name": "chat-ui"}, func(sp ptrace.Span) { sp.Attributes().Remove("gen_ai.request.model") })
	testTraces(map[string]any{"costpipe.tenant": "globex"}, nil).ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	return td
}

// TestOTLPBudget checks that a request whose body and decoded spans fit the
// in-flight byte budget succeeds and that all of its reservation is
// released.
func TestOTLPBudget(t *testing.T) {
	t.Parallel()
	g := startGateway(t, func(o *Options) { o.MaxBodyBytes, o.MaxInFlightBytes = 256<<10, 4<<20 })
	spans := make([]func(ptrace.Span), 600)
	td := testTraces(map[string]any{"service.name": "chat-ui"}, spans...)
	body := protoBody(t, td)
	if len(body) < 64<<10 || len(body) > 200<<10 {
		t.Fatalf("body of %d bytes: want one between 64 KiB and 200 KiB", len(body))
	}
	resp, out := postOTLP(t, g, "key-acme", "application/x-protobuf", body)
	if resp.StatusCode != http.StatusOK || len(out) != 0 {
		t.Fatalf("answer %d %q, want 200 and an empty response", resp.StatusCode, out)
	}
	if n := metricValue(t, g, `costpipe_ingest_otlp_spans_total{result="accepted"}`); n != 600 {
		t.Errorf("%v spans accepted, want 600", n)
	}
	if n := waitMetric(t, g, "costpipe_ingest_inflight_bytes", 0); n != 0 {
		t.Errorf("%v bytes still reserved after the request", n)
	}
}

func TestJSONDepthWithin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"a":[{"b":[]}]}`, true},         // depth 4
		{`{"a":[{"b":[[]]}]}`, false},      // depth 5
		{`{"a":"[[[[[[{{{{"}`, true},       // brackets in a string
		{`{"a":"\"[[[[[","b":[]}`, true},   // an escaped quote does not end the string
		{`{"a":"\\","b":[[[[]]]]}`, false}, // an escaped backslash does
	} {
		if err := jsonDepthWithin([]byte(tc.body), 4); (err == nil) != tc.ok {
			t.Errorf("jsonDepthWithin(%s, 4) = %v, want ok %v", tc.body, err, tc.ok)
		}
	}
}

// emptySpans returns an export of one resource and scope holding n empty
// spans, in enc: 2 bytes a span in protobuf (12 00), 3 in JSON ({},), each
// a ~250-byte object once decoded.
func emptySpans(enc otlpEncoding, n int) []byte {
	if enc == otlpJSON {
		return []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[` + strings.TrimSuffix(strings.Repeat("{},", n), ",") + `]}]}]}`)
	}
	spans := bytes.Repeat([]byte{0x12, 0x00}, n) // ScopeSpans.spans (2), each empty
	return appendBytesField(nil, 1, appendBytesField(nil, 2, spans))
}

// TestOTLPBudgetBoundsDecodedSpans: a body of empty spans decodes to about
// 100 times its size. Its reservation must cover that: a body that could
// never fit the in-flight budget is answered 413 naming the budget, before
// it is decoded.
func TestOTLPBudgetBoundsDecodedSpans(t *testing.T) {
	t.Parallel()
	const budget = 4 << 20
	g := startGateway(t, func(o *Options) { o.MaxBodyBytes, o.MaxInFlightBytes = 256<<10, budget })
	for _, tc := range []struct {
		name string
		ct   string
		body []byte
	}{
		{"protobuf", "application/x-protobuf", emptySpans(otlpProto, 80_000)},
		{"JSON", "application/json", emptySpans(otlpJSON, 80_000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.body) > 256<<10 {
				t.Fatalf("body of %d bytes is over the body limit", len(tc.body))
			}
			resp, out := postOTLP(t, g, "key-acme", tc.ct, tc.body)
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("answer %d %q, want 413", resp.StatusCode, out)
			}
			if st := rpcStatus(t, resp, out); !strings.Contains(st.Message, "80000 spans") || !strings.Contains(st.Message, "--max-inflight-bytes") {
				t.Errorf("message %q, want the span count and the budget named", st.Message)
			}
		})
	}
	if n := waitMetric(t, g, "costpipe_ingest_inflight_bytes", 0); n != 0 {
		t.Errorf("%v bytes still reserved after the requests", n)
	}
}
