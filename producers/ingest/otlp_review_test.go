package ingest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/schemas"
)

// These tests cover the review of the OTLP mapping: the Vercel AI SDK's
// provider values, failed calls without usage, attribute precedence
// independent of attribute order, invalid optional fields left out, and
// forbidden resources beside permitted ones.

// mapOne maps the one span of testTraces(res, span) with the key of tenant
// acme and returns the mapper (its ev and dropped), the outcome and the
// reason of a rejection.
func mapOne(t *testing.T, res map[string]any, span func(ptrace.Span)) (*otlpMapper, spanOutcome, error) {
	t.Helper()
	td := testTraces(res, span)
	m := newOTLPMapper(DefaultOTLPTenantAttribute, DefaultOTLPSkipOperations())
	ri, _ := m.resource(td.ResourceSpans().At(0).Resource(), "acme")
	outcome, err := m.mapSpan(&ri, td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0))
	return m, outcome, err
}

// TestOTLPProviderNameAISDK: the Vercel AI SDK sets gen_ai.system to its
// model's provider, `<provider>.<api>` or a bare id; each maps to the
// catalog's provider, so that the embedded catalog prices the call.
func TestOTLPProviderNameAISDK(t *testing.T) {
	t.Parallel()
	cat := pricing.Default()
	for _, tc := range []struct {
		value, want, model string // model: one the embedded catalog prices for want ("" not checked)
	}{
		{"openai.chat", "openai", "gpt-4o"},
		{"openai.responses", "openai", "gpt-4o"},
		{"anthropic.messages", "anthropic", "claude-sonnet-4-5"},
		{"amazon-bedrock", "bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0"},
		{"bedrock.anthropic.messages", "bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0"},
		{"google.generative-ai", "google", "gemini-2.5-flash"},
		{"google.vertex.chat", "vertex_ai", "gemini-2.5-flash"},
		{"vertex.anthropic.messages", "vertex_ai", "claude-sonnet-4-5"},
		{"azure.chat", "azure", "gpt-4o"},
		{"azure.responses", "azure", "gpt-4o"},
		{"mistral.chat", "mistral", "mistral-large-latest"},
		{"groq.chat", "groq", "llama-3.3-70b-versatile"},
		{"xai.chat", "xai", "grok-3"},
		{"deepseek.chat", "deepseek", "deepseek-chat"},
		{"togetherai.chat", "together", "Qwen/Qwen3-235B-A22B-Thinking-2507"},
		{"ollama.chat", "ollama", ""},
		// The table's own values are unchanged.
		{"aws.bedrock", "bedrock", ""},
		{"gcp.vertex_ai", "vertex_ai", ""},
		{"azure.ai.inference", "azure_ai", ""},
		{"google.ai.studio", "google", ""},
		{"Ollama", "ollama", ""},
		// An unknown provider part keeps the whole value, lower-cased.
		{"Acme.Chat", "acme.chat", ""},
		{"my-proxy", "my-proxy", ""},
	} {
		if got := ProviderName(tc.value); got != tc.want {
			t.Errorf("ProviderName(%q) = %q, want %q", tc.value, got, tc.want)
		}
		if tc.model != "" && cat.Lookup(tc.want, tc.model) == nil {
			t.Errorf("the embedded catalog has no price for %s %s (from %q)", tc.want, tc.model, tc.value)
		}
	}

	// A doGenerate span of the AI SDK, as it sets its attributes.
	m, outcome, err := mapOne(t, map[string]any{"service.name": "chat-ui"}, func(sp ptrace.Span) {
		a := sp.Attributes()
		a.Remove("gen_ai.provider.name")
		a.Remove("gen_ai.operation.name")
		a.PutStr("gen_ai.system", "anthropic.messages")
		a.PutStr("gen_ai.request.model", "claude-sonnet-4-5")
		a.PutStr("gen_ai.response.model", "claude-sonnet-4-5")
		a.PutStr("ai.operationId", "ai.generateText.doGenerate")
	})
	if outcome != spanMapped {
		t.Fatalf("outcome %d (%v), want mapped", outcome, err)
	}
	if m.ev.Provider != "anthropic" || cat.Lookup(m.ev.Provider, m.ev.Model) == nil {
		t.Errorf("provider %q model %q: want anthropic, priced by the embedded catalog", m.ev.Provider, m.ev.Model)
	}
}

// TestOTLPFailedCallWithoutUsage: a failed gen_ai call the provider
// reported no usage for (a 429) is an event of zero tokens with status
// error; a span without usage that did not fail, or names no provider,
// model or operation, is still ignored.
func TestOTLPFailedCallWithoutUsage(t *testing.T) {
	t.Parallel()
	res := map[string]any{"service.name": "chat-ui"}
	noUsage := func(edit func(sp ptrace.Span)) func(ptrace.Span) {
		return func(sp ptrace.Span) {
			sp.Attributes().Remove("gen_ai.usage.input_tokens")
			sp.Attributes().Remove("gen_ai.usage.output_tokens")
			edit(sp)
		}
	}
	rateLimited := func(sp ptrace.Span) {
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Attributes().PutStr("error.type", "rate_limited")
		sp.Attributes().PutInt("http.response.status_code", 429)
	}
	for _, tc := range []struct {
		name    string
		span    func(ptrace.Span)
		outcome spanOutcome
		errType string
	}{
		{"429 with status ERROR and error.type", noUsage(rateLimited), spanMapped, "rate_limited"},
		{"status ERROR, type from the HTTP status", noUsage(func(sp ptrace.Span) {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Attributes().PutInt("http.response.status_code", 503)
		}), spanMapped, "server_error"},
		{"status UNSET with error.type, OpenLLMetry names", noUsage(func(sp ptrace.Span) {
			a := sp.Attributes()
			a.Remove("gen_ai.provider.name")
			a.Remove("gen_ai.operation.name")
			a.PutStr("gen_ai.system", "openai")
			a.PutStr("llm.request.type", "chat")
			a.PutStr("error.type", "timeout")
		}), spanMapped, "timeout"},
		{"success without usage", noUsage(func(ptrace.Span) {}), spanNoUsage, ""},
		{"status OK with error.type", noUsage(func(sp ptrace.Span) {
			sp.Status().SetCode(ptrace.StatusCodeOk)
			sp.Attributes().PutStr("error.type", "rate_limited")
		}), spanNoUsage, ""},
		{"error without a provider", noUsage(func(sp ptrace.Span) {
			rateLimited(sp)
			sp.Attributes().Remove("gen_ai.provider.name")
		}), spanNoUsage, ""},
		{"error without a model", noUsage(func(sp ptrace.Span) {
			rateLimited(sp)
			sp.Attributes().Remove("gen_ai.request.model")
		}), spanNoUsage, ""},
		{"error without an operation", noUsage(func(sp ptrace.Span) {
			rateLimited(sp)
			sp.Attributes().Remove("gen_ai.operation.name")
		}), spanNoUsage, ""},
		{"failed agent span skipped", noUsage(func(sp ptrace.Span) {
			rateLimited(sp)
			sp.Attributes().PutStr("gen_ai.operation.name", "invoke_agent")
		}), spanSkipped, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, outcome, err := mapOne(t, res, tc.span)
			if outcome != tc.outcome {
				t.Fatalf("outcome %d (%v), want %d", outcome, err, tc.outcome)
			}
			if outcome != spanMapped {
				return
			}
			want := baseEvent()
			want.InputTokens, want.OutputTokens = 0, 0
			want.Status, want.ErrorType = schemas.StatusError, tc.errType
			if !m.ev.Equal(&want) {
				t.Errorf("event\n got %s\nwant %s", schemas.AppendJSON(nil, &m.ev), schemas.AppendJSON(nil, &want))
			}
		})
	}
}

// TestOTLPTokenPrecedenceOrderIndependent: the highest-precedence token
// attribute present decides, whatever the order of the attributes: an
// invalid fallback is ignored before or after a valid main attribute, and
// an invalid main attribute rejects the span before or after a valid
// fallback.
func TestOTLPTokenPrecedenceOrderIndependent(t *testing.T) {
	t.Parallel()
	res := map[string]any{"service.name": "chat-ui"}
	// attrs puts the span's attributes in the order given (key, value pairs).
	attrs := func(kv ...any) func(ptrace.Span) {
		return func(sp ptrace.Span) {
			a := sp.Attributes()
			a.Clear()
			a.PutStr("gen_ai.provider.name", "openai")
			a.PutStr("gen_ai.operation.name", "chat")
			a.PutStr("gen_ai.request.model", "gpt-4o")
			for i := 0; i < len(kv); i += 2 {
				switch v := kv[i+1].(type) {
				case int:
					a.PutInt(kv[i].(string), int64(v))
				case string:
					a.PutStr(kv[i].(string), v)
				}
			}
		}
	}
	for _, tc := range []struct {
		name     string
		span     func(ptrace.Span)
		rejected string // "" for the base event
	}{
		{"invalid fallback before the main attribute", attrs("gen_ai.usage.prompt_tokens", "n/a",
			"gen_ai.usage.input_tokens", 1200, "gen_ai.usage.output_tokens", 350), ""},
		{"invalid fallback after the main attribute", attrs("gen_ai.usage.input_tokens", 1200,
			"gen_ai.usage.prompt_tokens", "n/a", "gen_ai.usage.output_tokens", 350), ""},
		{"invalid cache fallbacks before the main one", attrs("gen_ai.usage.input_tokens", 1200, "gen_ai.usage.output_tokens", 350,
			"gen_ai.usage.input_tokens.cached", -1, "gen_ai.usage.cache_read_input_tokens", "x",
			"gen_ai.usage.cache_read.input_tokens", 0), ""},
		{"invalid main attribute before a valid fallback", attrs("gen_ai.usage.input_tokens", "n/a",
			"gen_ai.usage.prompt_tokens", 1200, "gen_ai.usage.output_tokens", 350), `attribute "gen_ai.usage.input_tokens" = "n/a"`},
		{"invalid main attribute after a valid fallback", attrs("gen_ai.usage.prompt_tokens", 1200,
			"gen_ai.usage.input_tokens", "n/a", "gen_ai.usage.output_tokens", 350), `attribute "gen_ai.usage.input_tokens" = "n/a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, outcome, err := mapOne(t, res, tc.span)
			if tc.rejected != "" {
				if outcome != spanRejected || err == nil || !strings.Contains(err.Error(), tc.rejected) {
					t.Fatalf("outcome %d (%v), want rejected for %q", outcome, err, tc.rejected)
				}
				return
			}
			if outcome != spanMapped {
				t.Fatalf("outcome %d (%v), want mapped", outcome, err)
			}
			if want := baseEvent(); !m.ev.Equal(&want) {
				t.Errorf("event\n got %s\nwant %s", schemas.AppendJSON(nil, &m.ev), schemas.AppendJSON(nil, &want))
			}
		})
	}
}

// TestOTLPInvalidOptionalFieldsDropped: an optional field whose value the
// contract refuses is left out of the event, which is accepted, and
// counted by field; the required fields are still checked.
func TestOTLPInvalidOptionalFieldsDropped(t *testing.T) {
	t.Parallel()
	res := map[string]any{"service.name": "chat-ui"}
	long := strings.Repeat("é", 150) // 300 bytes
	for _, tc := range []struct {
		name    string
		res     map[string]any
		span    func(ptrace.Span)
		dropped uint8
		want    func(*schemas.Event)
	}{
		{name: "TTFT in ms in a seconds attribute", span: func(sp ptrace.Span) {
			sp.Attributes().PutInt("gen_ai.response.time_to_first_chunk", 90000)
		}, dropped: dropTTFT},
		{name: "TTFT not a number, a valid one of lower precedence ignored", span: func(sp ptrace.Span) {
			sp.Attributes().PutStr("gen_ai.response.time_to_first_chunk", "fast")
			sp.Attributes().PutInt("ai.response.msToFirstChunk", 80)
		}, dropped: dropTTFT},
		{name: "TTFT of the first-chunk event over 24 h", span: func(sp ptrace.Span) {
			ev := sp.Events().AppendEmpty()
			ev.SetName("ai.stream.firstChunk")
			ev.Attributes().PutDouble("ai.response.msToFirstChunk", 1e12)
		}, dropped: dropTTFT},
		{name: "valid TTFT beside an invalid one of lower precedence", span: func(sp ptrace.Span) {
			sp.Attributes().PutDouble("gen_ai.server.time_to_first_token", -3)
			sp.Attributes().PutDouble("gen_ai.response.time_to_first_chunk", 0.2)
		}, want: func(e *schemas.Event) { e.TTFTMs, e.HasTTFT = 200, true }},
		{name: "service.name over 128 bytes", res: map[string]any{"service.name": long[:130], "cloud.region": "eu-west-1"},
			dropped: dropApplication, want: func(e *schemas.Event) { e.Application, e.Region = "", "eu-west-1" }},
		{name: "cloud.region with a control character", res: map[string]any{"service.name": "chat-ui", "cloud.region": "eu\x1b[2J"},
			dropped: dropRegion},
		{name: "error.type over 256 bytes", span: func(sp ptrace.Span) {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Attributes().PutStr("error.type", long)
			sp.Attributes().PutInt("http.response.status_code", 429)
		}, dropped: dropErrorType, want: func(e *schemas.Event) { e.Status, e.ErrorType = schemas.StatusError, "rate_limited" }},
		{name: "error.type invalid on a successful call is not read", span: func(sp ptrace.Span) {
			sp.Status().SetCode(ptrace.StatusCodeOk)
			sp.Attributes().PutStr("error.type", long)
		}},
		{name: "operation not UTF-8", span: func(sp ptrace.Span) {
			sp.Attributes().PutStr("gen_ai.operation.name", "chat\xff")
		}, dropped: dropOperation, want: func(e *schemas.Event) { e.Operation = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.res
			if r == nil {
				r = res
			}
			m, outcome, err := mapOne(t, r, tc.span)
			if outcome != spanMapped {
				t.Fatalf("outcome %d (%v), want mapped", outcome, err)
			}
			if m.dropped != tc.dropped {
				t.Errorf("dropped %05b, want %05b", m.dropped, tc.dropped)
			}
			want := baseEvent()
			if tc.want != nil {
				tc.want(&want)
			}
			if !m.ev.Equal(&want) {
				t.Errorf("event\n got %s\nwant %s", schemas.AppendJSON(nil, &m.ev), schemas.AppendJSON(nil, &want))
			}
		})
	}

	// Required fields are not dropped.
	if _, outcome, err := mapOne(t, res, func(sp ptrace.Span) {
		sp.Attributes().PutStr("gen_ai.request.model", "gpt\x1b[2J")
	}); outcome != spanRejected || !strings.Contains(err.Error(), `"model"`) {
		t.Errorf("invalid model: outcome %d (%v), want rejected", outcome, err)
	}

	// Through the gateway: accepted, and counted by field.
	g := startGateway(t, nil)
	td := testTraces(map[string]any{"service.name": long}, func(sp ptrace.Span) {
		sp.Attributes().PutInt("gen_ai.response.time_to_first_chunk", 90000)
	}, nil)
	resp, body := postOTLP(t, g, "key-acme", "application/x-protobuf", protoBody(t, td))
	if resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Fatalf("answer %d %q, want 200 without a partial success", resp.StatusCode, body)
	}
	for sample, want := range map[string]float64{
		`costpipe_ingest_otlp_spans_total{result="accepted"}`:            2,
		`costpipe_ingest_otlp_fields_dropped_total{field="application"}`: 2,
		`costpipe_ingest_otlp_fields_dropped_total{field="ttft_ms"}`:     1,
		`costpipe_ingest_otlp_fields_dropped_total{field="region"}`:      0,
	} {
		if n := metricValue(t, g, sample); n != want {
			t.Errorf("%s = %v, want %v", sample, n, want)
		}
	}
}

// TestOTLPForbiddenResourcePartialSuccess: a resource naming a tenant the
// key may not write does not cost the export's other spans: they are
// accepted, the forbidden ones reported in the partial success (naming the
// tenant) and counted as forbidden; only an export whose every gen_ai span
// is forbidden is answered 403.
func TestOTLPForbiddenResourcePartialSuccess(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	// export is two permitted spans, then a forbidden resource with one
	// gen_ai span and one without usage (ignored, as ever), in trace tid.
	export := func(tid pcommon.TraceID) ptrace.Traces {
		td := testTraces(map[string]any{"service.name": "chat-ui"}, nil, nil)
		testTraces(map[string]any{"costpipe.tenant": "globex"}, func(sp ptrace.Span) {
			sid := testSpanID
			sid[0] = 0xff
			sp.SetSpanID(sid)
		}, func(sp ptrace.Span) {
			sp.Attributes().Remove("gen_ai.usage.input_tokens")
			sp.Attributes().Remove("gen_ai.usage.output_tokens")
		}).ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			spans := rss.At(i).ScopeSpans().At(0).Spans()
			for j := 0; j < spans.Len(); j++ {
				spans.At(j).SetTraceID(tid)
			}
		}
		return td
	}
	otherTrace := testTraceID
	otherTrace[0] = 0x1b
	wantIDs := []string{testEventID, "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203332",
		"1bf7651916cd43dd8448eb211c80319c-b7ad6b7169203331", "1bf7651916cd43dd8448eb211c80319c-b7ad6b7169203332"}

	for _, enc := range []otlpEncoding{otlpProto, otlpJSON} {
		var body []byte
		tid := testTraceID
		if enc == otlpJSON {
			tid = otherTrace
			body = jsonBody(t, export(tid))
		} else {
			body = protoBody(t, export(tid))
		}
		resp, out := postOTLP(t, g, "key-acme", enc.contentType(), body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: answer %d %q, want 200 with a partial success", enc.contentType(), resp.StatusCode, out)
		}
		er := ptraceotlp.NewExportResponse()
		var err error
		if enc == otlpJSON {
			err = er.UnmarshalJSON(out)
		} else {
			err = er.UnmarshalProto(out)
		}
		if err != nil {
			t.Fatalf("answer %q is not an ExportTraceServiceResponse: %v", out, err)
		}
		ps := er.PartialSuccess()
		reason := `rejected 1 of 4 span(s): span ` + tid.String() + `/ffad6b7169203331 "chat gpt-4o": ` +
			`cannot write tenant "globex" (resource attribute "costpipe.tenant"): the API key is bound to tenant "acme"`
		if ps.RejectedSpans() != 1 || ps.ErrorMessage() != reason {
			t.Errorf("partial success %d %q, want 1 %q", ps.RejectedSpans(), ps.ErrorMessage(), reason)
		}
	}
	got := consumeAll(t, g.broker.Addr(), g.opts.Topic, len(wantIDs), 0)
	if len(got) != len(wantIDs) {
		t.Errorf("%d events on the topic, want %d", len(got), len(wantIDs))
	}
	for _, id := range wantIDs {
		if c, ok := got[id]; !ok || c.event.Tenant != "acme" {
			t.Errorf("event %s of the permitted resource is not on the topic for acme (%d events)", id, len(got))
		}
	}
	for sample, want := range map[string]float64{
		`costpipe_ingest_otlp_spans_total{result="accepted"}`:                                 4,
		`costpipe_ingest_otlp_spans_total{result="forbidden"}`:                                2,
		`costpipe_ingest_otlp_spans_total{result="rejected"}`:                                 0,
		`costpipe_ingest_otlp_requests_total{code="200"}`:                                     2,
		`costpipe_ingest_refused_requests_total{endpoint="traces",reason="forbidden_tenant"}`: 2,
	} {
		if n := metricValue(t, g, sample); n != want {
			t.Errorf("%s = %v, want %v", sample, n, want)
		}
	}

	// Every gen_ai span forbidden (beside a span without usage): 403.
	all := testTraces(map[string]any{"costpipe.tenant": "globex"}, nil, func(sp ptrace.Span) {
		sp.Attributes().Clear()
	})
	resp, out := postOTLP(t, g, "key-acme", "application/x-protobuf", protoBody(t, all))
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("answer %d %q, want 403", resp.StatusCode, out)
	}
	if st := rpcStatus(t, resp, out); !strings.Contains(st.Message, `no span was accepted: forbidden 1 of 2 span(s)`) ||
		!strings.Contains(st.Message, `cannot write tenant "globex"`) {
		t.Errorf("403 message %q", st.Message)
	}
}

// TestOTLPKeptAttributesPrecedence: deployment.environment.name wins over
// the old deployment.environment whatever their order in the resource
// (the later one won), and a span's costpipe.attributes.* value replaces
// its resource's even when the resource filled the 64 attributes (the
// span's was dropped).
func TestOTLPKeptAttributesPrecedence(t *testing.T) {
	t.Parallel()
	span := func(sp ptrace.Span) {
		sp.Attributes().PutStr("gen_ai.provider.name", "openai")
		sp.Attributes().PutStr("gen_ai.request.model", "gpt-4o")
		sp.Attributes().PutStr("costpipe.attributes.k07", "from-span")
	}
	for _, order := range [][2]string{{"deployment.environment.name", "deployment.environment"}, {"deployment.environment", "deployment.environment.name"}} {
		td := testTraces(map[string]any{}, span)
		ra := td.ResourceSpans().At(0).Resource().Attributes()
		ra.PutStr("service.name", "chat-ui")
		for _, k := range order {
			v := "prod"
			if k == "deployment.environment" {
				v = "staging"
			}
			ra.PutStr(k, v)
		}
		for i := range schemas.MaxAttributes {
			ra.PutStr(fmt.Sprintf("costpipe.attributes.k%02d", i), "from-resource")
		}
		m := newOTLPMapper(DefaultOTLPTenantAttribute, DefaultOTLPSkipOperations())
		ri, _ := m.resource(td.ResourceSpans().At(0).Resource(), "acme")
		if outcome, err := m.mapSpan(&ri, td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)); outcome != spanMapped || err != nil {
			t.Fatalf("%v: %v, %v", order, outcome, err)
		}
		if got := m.ev.Attributes["deployment.environment.name"]; got != "prod" {
			t.Errorf("resource attributes in the order %v: deployment.environment.name %q, want prod", order, got)
		}
		if got := m.ev.Attributes["k07"]; got != "from-span" {
			t.Errorf("a span's value with the resource's attributes at the bound: k07 %q, want from-span", got)
		}
		if len(m.ev.Attributes) > schemas.MaxAttributes {
			t.Errorf("%d attributes, over the bound %d", len(m.ev.Attributes), schemas.MaxAttributes)
		}
	}
}
