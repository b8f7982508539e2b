package ingest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/costpipe/costpipe/schemas"
)

// sdkCall is one inference call the tests emit as a span through the
// OpenTelemetry Go SDK, and the event it must become.
type sdkCall struct {
	provider, model                   string // gen_ai.provider.name (OTel value), gen_ai.response.model
	operation                         string
	input, output, cacheRead, cacheWr int64
	reasoning                         int64 // as gen_ai.usage.reasoning_tokens (OpenLLMetry), 0: absent
	start                             time.Time
	duration                          time.Duration
	ttft                              time.Duration // 0: no TTFT attribute
	errorType                         string        // non-empty: status Error with error.type
	tier                              string        // openai.response.service_tier, "" absent
}

// sdkExporter is a TracerProvider exporting to a gateway through
// otlptracehttp, the way an instrumented application does.
type sdkExporter struct {
	tp *sdktrace.TracerProvider
	tr trace.Tracer
}

// newSDKExporter exports to url+"/v1/traces" with key, in the encoding
// ("protobuf" or "json"), gzip-compressed when gz; res are the resource
// attributes.
func newSDKExporter(t testing.TB, url, key, encoding string, gz bool, res ...attribute.KeyValue) *sdkExporter {
	t.Helper()
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(url + "/v1/traces"),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + key}),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
		otlptracehttp.WithTimeout(30 * time.Second),
	}
	if encoding == "json" {
		opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
	}
	if gz {
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	} else {
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.NoCompression))
	}
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(512), sdktrace.WithMaxQueueSize(1<<16),
			sdktrace.WithBatchTimeout(time.Hour)), // export on ForceFlush only
		sdktrace.WithResource(resource.NewSchemaless(res...)),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
	)
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return &sdkExporter{tp: tp, tr: tp.Tracer("github.com/costpipe/costpipe/producers/ingest/test")}
}

// emit records c as a client span the way GenAI instrumentations do.
func (x *sdkExporter) emit(c sdkCall) trace.SpanContext {
	attrs := []attribute.KeyValue{
		semconv.GenAIProviderNameKey.String(c.provider),
		semconv.GenAIOperationNameKey.String(c.operation),
		semconv.GenAIRequestModelKey.String(c.model + "-requested"),
		semconv.GenAIResponseModelKey.String(c.model),
		semconv.GenAIUsageInputTokensKey.Int64(c.input),
		semconv.GenAIUsageOutputTokensKey.Int64(c.output),
		semconv.GenAIResponseIDKey.String("resp-" + c.model),
		semconv.GenAIResponseFinishReasonsKey.StringSlice([]string{"stop", "length"}),
	}
	if c.cacheRead > 0 {
		attrs = append(attrs, semconv.GenAIUsageCacheReadInputTokensKey.Int64(c.cacheRead))
	}
	if c.cacheWr > 0 {
		attrs = append(attrs, semconv.GenAIUsageCacheCreationInputTokensKey.Int64(c.cacheWr))
	}
	if c.reasoning > 0 {
		attrs = append(attrs, attribute.Int64("gen_ai.usage.reasoning_tokens", c.reasoning))
	}
	if c.ttft > 0 {
		attrs = append(attrs, attribute.Float64("gen_ai.server.time_to_first_token", c.ttft.Seconds()))
	}
	if c.tier != "" {
		attrs = append(attrs, semconv.OpenAIResponseServiceTierKey.String(c.tier))
	}
	_, sp := x.tr.Start(context.Background(), c.operation+" "+c.model, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(c.start), trace.WithAttributes(attrs...))
	if c.errorType != "" {
		sp.SetAttributes(semconv.ErrorTypeKey.String(c.errorType))
		sp.SetStatus(codes.Error, "the provider refused the call")
	}
	sp.End(trace.WithTimestamp(c.start.Add(c.duration)))
	return sp.SpanContext()
}

// emitPlain records a span without gen_ai usage (an HTTP handler, a
// database call): it must be ignored.
func (x *sdkExporter) emitPlain(start time.Time) {
	_, sp := x.tr.Start(context.Background(), "GET /chat", trace.WithTimestamp(start),
		trace.WithAttributes(attribute.String("http.request.method", "GET")))
	sp.End(trace.WithTimestamp(start.Add(3 * time.Millisecond)))
}

// flush exports everything recorded and returns the export error, if any.
func (x *sdkExporter) flush(t testing.TB) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return x.tp.ForceFlush(ctx)
}

// want is the event c must become for tenant and application.
func (c sdkCall) want(sc trace.SpanContext, tenant, application string) schemas.Event {
	tid, sid := sc.TraceID(), sc.SpanID()
	ev := schemas.Event{
		EventID:           fmt.Sprintf("%x-%x", tid[:], sid[:]),
		Timestamp:         c.start.UTC(),
		Tenant:            tenant,
		Provider:          ProviderName(c.provider),
		Model:             c.model,
		Status:            schemas.StatusOK,
		Application:       application,
		Operation:         c.operation,
		InputTokens:       c.input,
		CachedInputTokens: c.cacheRead,
		CacheWriteTokens:  c.cacheWr,
		OutputTokens:      c.output,
		ReasoningTokens:   c.reasoning,
		LatencyMs:         float64(c.duration) / 1e6,
		HasLatency:        true,
		Attributes: map[string]string{
			"gen_ai.response.id":             "resp-" + c.model,
			"gen_ai.response.finish_reasons": "stop,length",
			"deployment.environment.name":    "test",
		},
	}
	if c.ttft > 0 {
		ev.TTFTMs, ev.HasTTFT = c.ttft.Seconds()*1000, true
	}
	if c.errorType != "" {
		ev.Status, ev.ErrorType = schemas.StatusError, c.errorType
	}
	if c.tier != "" && c.tier != "default" {
		ev.ServiceTier = c.tier
	}
	return ev
}

// otelErrors captures what the SDK reports through the global error
// handler, such as an OTLP partial success.
type otelErrors struct {
	mu   sync.Mutex
	errs []error
}

func (h *otelErrors) Handle(err error) {
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
}

func (h *otelErrors) all() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprint(h.errs)
}

// sdkCalls returns n calls over three providers and models, starting at
// base, each a whole number of milliseconds long.
func sdkCalls(base time.Time, n int) []sdkCall {
	calls := make([]sdkCall, n)
	for i := range calls {
		c := sdkCall{operation: "chat", start: base.Add(time.Duration(i) * 7 * time.Millisecond),
			duration: time.Duration(200+i%50) * time.Millisecond}
		switch i % 3 {
		case 0:
			c.provider, c.model = "openai", "gpt-4o"
			c.input, c.output, c.cacheRead = int64(1000+i), int64(100+i%17), int64(i%5)*100
			c.ttft = time.Duration(40+i%9) * time.Millisecond
			if i%6 == 0 {
				c.tier = "default"
			}
		case 1:
			c.provider, c.model = "anthropic", "claude-sonnet-4-5"
			c.input, c.output, c.cacheRead, c.cacheWr = int64(3000+i), int64(300+i%13), 1024, int64(i%4)*64
			if i%10 == 1 {
				c.errorType = "rate_limited"
			}
		case 2:
			c.provider, c.model, c.operation = "aws.bedrock", "amazon.nova-pro-v1:0", "text_completion"
			c.input, c.output, c.reasoning = int64(500+i), int64(80+i%7), int64(i%3)*10
		}
		calls[i] = c
	}
	return calls
}

// TestOTLPSDKToKafka exports spans from the OpenTelemetry Go SDK's OTLP/HTTP
// exporter (real wire bytes) to the gateway in protobuf and JSON, with and
// without gzip, and checks that every gen_ai span is on the topic exactly
// as the mapping says, spans without usage are not, and the same spans
// exported twice (an exporter retry) keep their event_id.
func TestOTLPSDKToKafka(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	base := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	want := make(map[string]schemas.Event)
	total := 0
	for i, enc := range []struct {
		encoding string
		gzip     bool
		key      string
	}{
		{"protobuf", false, "key-acme"},
		{"protobuf", true, "key-admin"},
		{"json", false, "key-acme"},
		{"json", true, "key-admin"},
	} {
		res := []attribute.KeyValue{semconv.ServiceName("support-bot"), attribute.String("deployment.environment.name", "test")}
		if enc.key == "key-admin" {
			res = append(res, attribute.String(DefaultOTLPTenantAttribute, "globex"))
		}
		tenant := map[string]string{"key-acme": "acme", "key-admin": "globex"}[enc.key]
		x := newSDKExporter(t, g.url, enc.key, enc.encoding, enc.gzip, res...)
		for j, c := range sdkCalls(base.Add(time.Duration(i)*time.Minute), 300) {
			sc := x.emit(c)
			if j%10 == 0 {
				x.emitPlain(c.start)
			}
			want[sc.TraceID().String()+"-"+sc.SpanID().String()] = c.want(sc, tenant, "support-bot")
			total++
		}
		if err := x.flush(t); err != nil {
			t.Fatalf("%s gzip=%v: export: %v", enc.encoding, enc.gzip, err)
		}
	}
	got := consumeAll(t, g.broker.Addr(), g.opts.Topic, total, time.Second)
	if len(got) != len(want) {
		t.Errorf("%d events on the topic, want %d", len(got), len(want))
	}
	for id, w := range want {
		c, ok := got[id]
		if !ok {
			t.Errorf("span %s is not on the topic", id)
			continue
		}
		if !c.event.Equal(&w) {
			t.Errorf("event %s:\n got %s\nwant %s", id, c.value, schemas.AppendJSON(nil, &w))
		}
		if c.key != string(w.Key()) || c.contentType != schemas.ContentTypeJSON {
			t.Errorf("event %s: key %q content-type %q", id, c.key, c.contentType)
		}
	}
	if n := metricValue(t, g, `costpipe_ingest_otlp_spans_total{result="no_usage"}`); n != float64(4*30) {
		t.Errorf("no_usage spans %v, want %d", n, 4*30)
	}
	if n := metricValue(t, g, `costpipe_ingest_otlp_spans_total{result="accepted"}`); n != float64(total) {
		t.Errorf("accepted spans %v, want %d", n, total)
	}
}

// TestOTLPSDKPartialSuccess checks what the SDK exporter sees when some
// spans are rejected: the SDK reports the OTLP partial success (rejected
// count and message; otlptracehttp returns it from the export, the
// exporter does not retry it), and the valid spans are on the topic.
func TestOTLPSDKPartialSuccess(t *testing.T) {
	// Not parallel: it swaps the process-wide otel error handler.
	g := startGateway(t, nil)
	h := &otelErrors{}
	prev := otel.GetErrorHandler()
	otel.SetErrorHandler(h)
	t.Cleanup(func() { otel.SetErrorHandler(prev) })

	// A key for every tenant and no tenant attribute: every span is rejected
	// but the plain one, which is ignored.
	x := newSDKExporter(t, g.url, "key-admin", "protobuf", false, semconv.ServiceName("svc"))
	base := time.Now().UTC().Add(-time.Minute)
	for _, c := range sdkCalls(base, 3) {
		x.emit(c)
	}
	x.emitPlain(base)
	err := x.flush(t)
	msg := fmt.Sprint(err) + h.all()
	for _, s := range []string{"3 spans rejected", "rejected 3 of 4 span(s)", `the resource must carry the attribute "costpipe.tenant"`} {
		if !strings.Contains(msg, s) {
			t.Errorf("the SDK reported %s; want it to contain %q", msg, s)
		}
	}

	// A key for one tenant: its spans are accepted; an invalid one (output
	// tokens not a number) is rejected with a reason naming the attribute.
	h2 := &otelErrors{}
	otel.SetErrorHandler(h2)
	x = newSDKExporter(t, g.url, "key-acme", "json", true, semconv.ServiceName("svc"))
	sc := x.emit(sdkCall{provider: "openai", model: "gpt-4o", operation: "chat", input: 10, output: 5, start: base, duration: time.Second})
	_, bad := x.tr.Start(context.Background(), "chat bad", trace.WithAttributes(
		semconv.GenAIProviderNameKey.String("openai"), semconv.GenAIRequestModelKey.String("gpt-4o"),
		semconv.GenAIUsageInputTokensKey.Int(5), attribute.String("gen_ai.usage.output_tokens", "many")))
	bad.End()
	err = x.flush(t)
	if msg := fmt.Sprint(err) + h2.all(); !strings.Contains(msg, "1 spans rejected") ||
		!strings.Contains(msg, `attribute \"gen_ai.usage.output_tokens\" = \"many\": want a whole number`) &&
			!strings.Contains(msg, `attribute "gen_ai.usage.output_tokens" = "many": want a whole number`) {
		t.Errorf("the SDK reported %s; want 1 span rejected for gen_ai.usage.output_tokens", msg)
	}
	got := consumeAll(t, g.broker.Addr(), g.opts.Topic, 1, 500*time.Millisecond)
	id := sc.TraceID().String() + "-" + sc.SpanID().String()
	if _, ok := got[id]; !ok || len(got) != 1 {
		t.Errorf("topic holds %d events, want only %s", len(got), id)
	}
}

// metricValue reads one sample of the gateway's /metrics.
func metricValue(t testing.TB, g *gateway, sample string) float64 {
	t.Helper()
	resp, err := httpGet(g.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(resp, "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no metric %s in /metrics", sample)
	return 0
}

// httpGet returns the body of a GET of url.
func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
