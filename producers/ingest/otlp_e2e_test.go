package ingest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/consumers"
	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/sketch"
	"github.com/costpipe/costpipe/pipelines/usage"
	"github.com/costpipe/costpipe/warehouse"
)

// TestMain runs the package's tests through chtest.Main, which kills the
// private ClickHouse servers of TestOTLPSDKToClickHouse if the test binary
// is interrupted.
func TestMain(m *testing.M) { chtest.Main(m) }

// e2ePrices prices the three models of sdkCalls, in USD per 1M tokens,
// with round micro-dollar rates so the test computes every cost by hand.
const e2ePrices = `
models:
  - provider: openai
    model: gpt-4o
    prices:
      - from: 2024-01-01
        input: "2.50"
        cached_input: "1.25"
        output: "10"
  - provider: anthropic
    model: claude-sonnet-4-5
    prices:
      - from: 2024-01-01
        input: "3"
        cached_input: "0.30"
        cache_write: "3.75"
        output: "15"
  - provider: bedrock
    model: amazon.nova-pro-v1:0
    prices:
      - from: 2024-01-01
        input: "0.80"
        output: "3.20"
        reasoning: "6.40"
`

// e2eRates are e2ePrices in micro-dollars per 1M tokens, so that tokens ×
// rate is pico-dollars: input, cached input, cache write, output, reasoning.
var e2eRates = map[string][5]int64{
	"gpt-4o":               {2_500_000, 1_250_000, 2_500_000, 10_000_000, 10_000_000},
	"claude-sonnet-4-5":    {3_000_000, 300_000, 3_750_000, 15_000_000, 15_000_000},
	"amazon.nova-pro-v1:0": {800_000, 800_000, 800_000, 3_200_000, 6_400_000},
}

// recorder keeps the request bodies an exporter sent, so a test can send
// them again as an exporter retry would.
type recorder struct {
	mu     sync.Mutex
	bodies [][]byte
	ctype  []string
	encs   []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body.Close()
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	r.ctype = append(r.ctype, req.Header.Get("Content-Type"))
	r.encs = append(r.encs, req.Header.Get("Content-Encoding"))
	r.mu.Unlock()
	req.Body = io.NopCloser(bytes.NewReader(body))
	return http.DefaultTransport.RoundTrip(req)
}

// modelTotals is what the rollups must hold for one model.
type modelTotals struct {
	requests, errors                                   uint64
	input, cached, cacheWrite, output, reasoning       uint64
	costPicos                                          int64
	latencySumUs, latencyMinMs, latencyMaxMs, ttftSumU float64
	ttftCount                                          uint64
}

// TestOTLPSDKToClickHouse is the whole path: spans from the OpenTelemetry
// Go SDK's OTLP/HTTP exporter (protobuf and JSON, real wire bytes) through
// the gateway into Kafka, through the aggregator (consumer, pricing,
// windows) into a private ClickHouse server, read back per model with the
// query layer. Every export is also sent a second time, as an exporter
// retry would; the aggregator drops those duplicates by event_id. Tokens,
// cost (computed here from the test's prices), request and error counts,
// and latency (exact mean, min and max) per model must be exact.
func TestOTLPSDKToClickHouse(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	srv := chtest.Start(t)
	db := srv.NewDatabase(t)
	wopts := warehouse.DefaultOptions()
	wopts.DSN = srv.DSN(db)
	ctx := context.Background()
	w, err := warehouse.Open(ctx, wopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	cat, err := pricing.Parse("e2e-prices.yaml", []byte(e2ePrices))
	if err != nil {
		t.Fatal(err)
	}

	// The aggregator, in process, as `costpipe aggregate` runs it.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	popts := usage.DefaultOptions()
	popts.Catalog, popts.Logger = cat, log
	pipe, err := usage.New(w, popts)
	if err != nil {
		t.Fatal(err)
	}
	copts := consumers.DefaultOptions()
	copts.Brokers = []string{g.broker.Addr()}
	copts.Group = "otlp-e2e"
	copts.FlushInterval = 500 * time.Millisecond
	copts.Logger = log
	copts.DLQSpoolDir = t.TempDir()
	c, err := consumers.New(copts, pipe)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(cctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("aggregator: %v", err)
		}
	})

	// Export through the SDK in both encodings, recording the wire bytes.
	base := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Hour)
	want := make(map[string]*modelTotals)
	rec := &recorder{}
	for i, encoding := range []string{"protobuf", "json"} {
		opts := []otlptracehttp.Option{
			otlptracehttp.WithEndpointURL(g.url + "/v1/traces"),
			otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer key-admin"}),
			otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
			otlptracehttp.WithHTTPClient(&http.Client{Transport: rec}),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
		}
		if encoding == "json" {
			opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			t.Fatal(err)
		}
		tp := sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(200), sdktrace.WithMaxQueueSize(1<<14), sdktrace.WithBatchTimeout(time.Hour)),
			sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("support-bot"),
				attribute.String(DefaultOTLPTenantAttribute, "acme"))))
		x := &sdkExporter{tp: tp, tr: tp.Tracer("e2e")}
		for _, call := range sdkCalls(base.Add(time.Duration(i)*30*time.Minute), 600) {
			x.emit(call)
			x.emitPlain(call.start)
			m := want[call.model]
			if m == nil {
				m = &modelTotals{latencyMinMs: 1e18}
				want[call.model] = m
			}
			add(m, call)
		}
		if err := x.flush(t); err != nil {
			t.Fatalf("%s export: %v", encoding, err)
		}
		tp.Shutdown(ctx)
	}
	if len(rec.bodies) < 6 {
		t.Fatalf("the exporters sent %d requests, want at least 6 (batches of 200 spans)", len(rec.bodies))
	}
	sawJSON := false
	for i, body := range rec.bodies {
		sawJSON = sawJSON || rec.ctype[i] == "application/json"
		if rec.encs[i] != "gzip" {
			t.Errorf("export %d was sent with Content-Encoding %q, want gzip", i, rec.encs[i])
		}
		// The exporter's retry: the same bytes again.
		resp, out := postOTLP(t, g, "key-admin", rec.ctype[i], body, "Content-Encoding: gzip")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("retry of export %d: %d %q", i, resp.StatusCode, out)
		}
	}
	if !sawJSON {
		t.Fatal("no export was sent as application/json")
	}

	// Read back per model once everything landed.
	q := analytics.New(w, analytics.Options{})
	var total uint64
	for _, m := range want {
		total += m.requests
	}
	var rows []analytics.UsageRow
	deadline := time.Now().Add(90 * time.Second)
	for {
		rows, err = q.Usage(ctx, analytics.UsageQuery{From: base.Add(-time.Hour), To: base.Add(3 * time.Hour),
			By: []analytics.Dim{analytics.DimModel}})
		if err != nil {
			t.Fatal(err)
		}
		var got uint64
		for _, r := range rows {
			got += r.Requests
		}
		if got >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(rows) != len(want) {
		t.Fatalf("%d models in ClickHouse, want %d: %+v", len(rows), len(want), rows)
	}
	for _, r := range rows {
		model := r.Group[analytics.DimModel]
		m := want[model]
		if m == nil {
			t.Errorf("unexpected model %q in ClickHouse", model)
			continue
		}
		got := [7]uint64{r.Requests, r.Errors, r.InputTokens, r.CachedInputTokens, r.CacheWriteTokens, r.OutputTokens, r.ReasoningTokens}
		exp := [7]uint64{m.requests, m.errors, m.input, m.cached, m.cacheWrite, m.output, m.reasoning}
		if got != exp {
			t.Errorf("%s: requests, errors, input, cached, cache write, output, reasoning = %v, want %v", model, got, exp)
		}
		if wantCost := pricing.FromPicos(m.costPicos); r.CostUSD != wantCost || r.UnpricedRequests != 0 {
			t.Errorf("%s: cost %s USD (%d unpriced), want %s USD", model, r.CostUSD.Decimal(), r.UnpricedRequests, wantCost.Decimal())
		}
		// min and max are the histogram's extreme buckets (within 1%).
		wantAvg := m.latencySumUs / float64(m.requests) / 1000
		wantMin, wantMax := sketch.Value(sketch.Index(m.latencyMinMs)), sketch.Value(sketch.Index(m.latencyMaxMs))
		if r.Latency.Count != m.requests || !near(r.Latency.Avg, wantAvg) ||
			r.Latency.Min != wantMin || r.Latency.Max != wantMax {
			t.Errorf("%s: latency count %d mean %v min %v max %v ms, want %d, %v, %v, %v",
				model, r.Latency.Count, r.Latency.Avg, r.Latency.Min, r.Latency.Max, m.requests, wantAvg, wantMin, wantMax)
		}
		if r.TTFT.Count != m.ttftCount || m.ttftCount > 0 && !near(r.TTFT.Avg, m.ttftSumU/float64(m.ttftCount)/1000) {
			t.Errorf("%s: TTFT count %d mean %v, want %d, %v", model, r.TTFT.Count, r.TTFT.Avg, m.ttftCount, m.ttftSumU/float64(max(m.ttftCount, 1))/1000)
		}
		t.Logf("%s: %d calls, %d input, %d output tokens, %s USD, latency mean %.3f ms", model, r.Requests,
			r.InputTokens, r.OutputTokens, r.CostUSD.Decimal(), r.Latency.Avg)
	}
}

// add counts call into m, pricing it with e2eRates.
func add(m *modelTotals, c sdkCall) {
	m.requests++
	if c.errorType != "" {
		m.errors++
	}
	m.input += uint64(c.input)
	m.cached += uint64(c.cacheRead)
	m.cacheWrite += uint64(c.cacheWr)
	m.output += uint64(c.output)
	m.reasoning += uint64(c.reasoning)
	r := e2eRates[c.model]
	m.costPicos += (c.input-c.cacheRead-c.cacheWr)*r[0] + c.cacheRead*r[1] + c.cacheWr*r[2] +
		(c.output-c.reasoning)*r[3] + c.reasoning*r[4]
	ms := float64(c.duration) / 1e6
	m.latencySumUs += ms * 1000
	m.latencyMinMs = min(m.latencyMinMs, ms)
	m.latencyMaxMs = max(m.latencyMaxMs, ms)
	if c.ttft > 0 {
		m.ttftCount++
		m.ttftSumU += c.ttft.Seconds() * 1e6
	}
}

// near compares means computed from microsecond sums: equal to 1e-9
// relative, the rounding of one division.
func near(a, b float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= 1e-9*max(a, b, 1)
}
