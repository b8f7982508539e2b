package ingest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/costpipe/costpipe/schemas"
)

// specJSON is an OTLP/JSON export written by hand the way the OTLP spec
// describes its JSON mapping: lowerCamelCase names, trace and span ids in
// hex, int64 values as decimal strings, enums as names or integers.
const specJSON = `{"resourceSpans":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"chat-ui"}},
  {"key":"costpipe.tenant","value":{"stringValue":"globex"}}]},
 "scopeSpans":[{"scope":{"name":"openlit"},"spans":[
  {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"chat gpt-4o",
   "kind":"SPAN_KIND_CLIENT","startTimeUnixNano":"1795856832345000000","endTimeUnixNano":"1795856833157500000",
   "attributes":[
    {"key":"gen_ai.system","value":{"stringValue":"openai"}},
    {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},
    {"key":"gen_ai.usage.input_tokens","value":{"intValue":"1200"}},
    {"key":"gen_ai.usage.output_tokens","value":{"intValue":350}},
    {"key":"gen_ai.server.time_to_first_token","value":{"doubleValue":0.12}}],
   "status":{"code":"STATUS_CODE_ERROR","message":"rate limited"}},
  {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203332","name":"db",
   "kind":3,"startTimeUnixNano":1795856832345000000,"endTimeUnixNano":1795856833157500000,
   "status":{"code":2}}]}]}]}`

// TestOTLPJSONSpecMapping decodes specJSON and checks the one gen_ai span's
// event: hex ids, int64 strings and enum names are read as the spec says.
func TestOTLPJSONSpecMapping(t *testing.T) {
	t.Parallel()
	req, err := decodeTraces(otlpJSON, []byte(specJSON))
	if err != nil {
		t.Fatal(err)
	}
	b := newBatch()
	b.reset(AnyTenant, timeBounds{})
	var c traceCounts
	(&Server{}).mapTraces(newOTLPMapper(DefaultOTLPTenantAttribute, nil), req, AnyTenant, b, &c)
	if c.spans != 2 || c.noUsage != 1 || len(b.spans) != 1 || c.rejected != 0 {
		t.Fatalf("counts %+v, %d events", c, len(b.spans))
	}
	var got schemas.Event
	if err := schemas.DecodeJSON(b.arena[b.spans[0].v:b.spans[0].end], &got); err != nil {
		t.Fatal(err)
	}
	want := baseEvent()
	want.Tenant = "globex"
	want.Operation = ""
	want.Status, want.ErrorType = schemas.StatusError, "_OTHER"
	want.TTFTMs, want.HasTTFT = 120, true
	if !got.Equal(&want) {
		t.Errorf("event\n got %s\nwant %s", schemas.AppendJSON(nil, &got), schemas.AppendJSON(nil, &want))
	}
}

// FuzzOTLPDecode feeds arbitrary bodies to the OTLP protobuf and JSON
// decoders and the span mapping. A body either fails to decode, and the
// handler answers 400 with a google.rpc.Status saying so, or decodes, and
// then every span has exactly one outcome and every accepted record is a
// valid event under the contract key, for the key's tenant, with an
// event_id made of the span's ids; a body that yields no event is answered
// 200 (403 when every rejected span's resource names a tenant the key may
// not write).
func FuzzOTLPDecode(f *testing.F) {
	res := map[string]any{"service.name": "svc", "costpipe.tenant": "acme"}
	td := testTraces(res, nil,
		func(sp ptrace.Span) { sp.Attributes().PutStr("gen_ai.usage.output_tokens", "x") },
		func(sp ptrace.Span) { sp.Attributes().PutStr("gen_ai.operation.name", "invoke_agent") },
		func(sp ptrace.Span) { sp.Attributes().Clear() })
	pb, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		f.Fatal(err)
	}
	js, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{pb, js, []byte(specJSON), pb[:len(pb)/2], js[:len(js)/2], nil, []byte("{}"),
		[]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`), {0x0a, 0x80}, {0xff}} {
		f.Add(seed, false, false)
		f.Add(seed, true, false)
		f.Add(seed, false, true)
		f.Add(seed, true, true)
	}
	m := newOTLPMapper(DefaultOTLPTenantAttribute, DefaultOTLPSkipOperations())
	// The real handler, for the bodies that produce nothing: its Kafka
	// client never connects (nothing is produced), so no broker is needed.
	opts := DefaultOptions()
	opts.Brokers = []string{"127.0.0.1:1"}
	opts.Keys = testKeys(f)
	srv, err := New(opts)
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	serve := func(t *testing.T, body []byte, enc otlpEncoding, key string) (int, *status.Status) {
		req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", enc.contentType())
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		st := &status.Status{}
		if rec.Code != http.StatusOK {
			var err error
			if enc == otlpJSON {
				err = protojson.Unmarshal(rec.Body.Bytes(), st)
			} else {
				err = proto.Unmarshal(rec.Body.Bytes(), st)
			}
			if err != nil || st.Message == "" {
				t.Fatalf("answer %d %q is not a google.rpc.Status with a message: %v", rec.Code, rec.Body.Bytes(), err)
			}
		}
		return rec.Code, st
	}
	f.Fuzz(func(t *testing.T, body []byte, asJSON, anyTenant bool) {
		enc, tenant := otlpProto, "acme"
		if asJSON {
			enc = otlpJSON
		}
		if anyTenant {
			tenant = AnyTenant
		}
		key := map[string]string{"acme": "key-acme", AnyTenant: "key-admin"}[tenant]
		req, err := decodeTraces(enc, body)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cannot decode the OTLP ") {
				t.Fatalf("decode error %q does not say what failed", err)
			}
			if code, st := serve(t, body, enc, key); code != http.StatusBadRequest || !strings.Contains(st.Message, "cannot decode the OTLP") {
				t.Fatalf("undecodable body answered %d %q, want 400", code, st.Message)
			}
			return
		}
		b := newBatch()
		b.reset(tenant, timeBounds{})
		var c traceCounts
		(&Server{}).mapTraces(m, req, tenant, b, &c)
		if len(b.spans)+c.noUsage+c.skipped+c.rejected != c.spans {
			t.Fatalf("%d spans: %d events, %d without usage, %d skipped, %d rejected", c.spans, len(b.spans), c.noUsage, c.skipped, c.rejected)
		}
		if c.forbidden > c.rejected || len(c.reasons) != min(c.rejected-c.forbidden, maxListedSpanErrors) ||
			len(c.forbiddenReasons) != min(c.forbidden, maxListedSpanErrors) {
			t.Fatalf("%d rejected, %d reasons, %d forbidden, %d reasons", c.rejected, len(c.reasons), c.forbidden, len(c.forbiddenReasons))
		}
		for _, sp := range b.spans {
			var ev schemas.Event
			if err := schemas.DecodeJSON(b.arena[sp.v:sp.end], &ev); err != nil {
				t.Fatalf("accepted record %q is invalid: %v", b.arena[sp.v:sp.end], err)
			}
			if string(b.arena[sp.k:sp.v]) != string(ev.Key()) {
				t.Fatalf("record key %q, want %q", b.arena[sp.k:sp.v], ev.Key())
			}
			if tenant != AnyTenant && ev.Tenant != tenant {
				t.Fatalf("event for tenant %q accepted with a key for %q", ev.Tenant, tenant)
			}
			if len(ev.EventID) != 49 || ev.EventID[32] != '-' || strings.Trim(ev.EventID, "0123456789abcdef-") != "" {
				t.Fatalf("event_id %q is not trace id-span id in hex", ev.EventID)
			}
		}
		if len(b.spans) == 0 {
			want := http.StatusOK
			if c.forbidden > 0 && c.forbidden == c.rejected {
				want = http.StatusForbidden
			}
			if code, st := serve(t, body, enc, key); code != want {
				t.Fatalf("body of %d spans (%d rejected, %d forbidden) answered %d %q, want %d",
					c.spans, c.rejected, c.forbidden, code, st.Message, want)
			}
		}
	})
}
