package ingest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

const benchSpans = 500

// benchTraces returns n OTLP requests of benchSpans gen_ai spans each, as an
// instrumented service sends them: one resource (service, tenant, SDK
// attributes), spans over 10 models with the attributes GenAI
// instrumentations set (about 16 each).
func benchTraces(n int) []ptrace.Traces {
	out := make([]ptrace.Traces, n)
	start := time.Now().Add(-time.Hour)
	models := []string{"gpt-4o", "gpt-4o-mini", "o3", "claude-sonnet-4-5", "claude-haiku-4-5",
		"gemini-2.5-pro", "gemini-2.5-flash", "amazon.nova-pro-v1:0", "mistral-large", "deepseek-chat"}
	for i := range out {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", "support-assistant")
		ra.PutStr("service.version", "1.42.0")
		ra.PutStr("deployment.environment.name", "production")
		ra.PutStr("telemetry.sdk.language", "python")
		ra.PutStr("telemetry.sdk.name", "opentelemetry")
		ra.PutStr("telemetry.sdk.version", "1.38.0")
		ra.PutStr(DefaultOTLPTenantAttribute, fmt.Sprintf("tenant-%d", i%10))
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("opentelemetry.instrumentation.openai_v2")
		for j := range benchSpans {
			sp := ss.Spans().AppendEmpty()
			var tid pcommon.TraceID
			var sid pcommon.SpanID
			binary.BigEndian.PutUint64(tid[:8], uint64(i+1))
			binary.BigEndian.PutUint64(tid[8:], uint64(j+1))
			binary.BigEndian.PutUint64(sid[:], uint64(i*benchSpans+j+1))
			sp.SetTraceID(tid)
			sp.SetSpanID(sid)
			sp.SetParentSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
			model := models[j%len(models)]
			sp.SetName("chat " + model)
			sp.SetKind(ptrace.SpanKindClient)
			t0 := start.Add(time.Duration(j) * time.Millisecond)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(300+j) * time.Millisecond)))
			a := sp.Attributes()
			a.PutStr("gen_ai.provider.name", "openai")
			a.PutStr("gen_ai.operation.name", "chat")
			a.PutStr("gen_ai.request.model", model)
			a.PutStr("gen_ai.response.model", model+"-2025-08-07")
			a.PutStr("gen_ai.response.id", fmt.Sprintf("chatcmpl-%d-%d", i, j))
			a.PutEmptySlice("gen_ai.response.finish_reasons").AppendEmpty().SetStr("stop")
			a.PutInt("gen_ai.usage.input_tokens", int64(1000+j))
			a.PutInt("gen_ai.usage.output_tokens", int64(200+j%100))
			a.PutInt("gen_ai.usage.cache_read.input_tokens", int64(j%4)*128)
			a.PutDouble("gen_ai.request.temperature", 0.7)
			a.PutInt("gen_ai.request.max_tokens", 1024)
			a.PutStr("gen_ai.openai.response.service_tier", "default")
			a.PutStr("server.address", "api.openai.com")
			a.PutInt("server.port", 443)
			a.PutDouble("gen_ai.server.time_to_first_token", 0.12)
			a.PutStr("gen_ai.conversation.id", fmt.Sprintf("conv-%d", j%37))
		}
		out[i] = td
	}
	return out
}

// processCPU returns the user and system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOTLPTraces posts OTLP exports of 500 gen_ai spans over real HTTP
// on loopback to a gateway backed by the embedded broker over TCP, from 8
// concurrent clients; every request waits for Kafka's acknowledgement of
// its events (acks=all). One op is one request; spans/s counts spans,
// p50-ms and p99-ms are request latencies, cpu-µs/span the process's CPU
// time (gateway, clients and broker together) per span.
func BenchmarkOTLPTraces(b *testing.B) {
	for _, bc := range []struct {
		name string
		json bool
		gzip bool
	}{
		{"protobuf", false, false},
		{"protobuf-gzip", false, true},
		{"json", true, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := startGateway(b, nil)
			tds := benchTraces(16)
			bodies := make([][]byte, len(tds))
			headers := http.Header{"Authorization": {"Bearer key-admin"}, "Content-Type": {"application/x-protobuf"}}
			for i, td := range tds {
				var err error
				req := ptraceotlp.NewExportRequestFromTraces(td)
				if bc.json {
					bodies[i], err = req.MarshalJSON()
				} else {
					bodies[i], err = req.MarshalProto()
				}
				if err != nil {
					b.Fatal(err)
				}
				if bc.gzip {
					bodies[i] = []byte(gzipped(string(bodies[i])))
				}
			}
			if bc.json {
				headers.Set("Content-Type", "application/json")
			}
			if bc.gzip {
				headers.Set("Content-Encoding", "gzip")
			}
			const clients = 8
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}}
			defer client.CloseIdleConnections()
			post := func(body []byte) error {
				req, _ := http.NewRequest(http.MethodPost, g.url+"/v1/traces", bytes.NewReader(body))
				req.Header = headers.Clone()
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || len(out) > 2 {
					return fmt.Errorf("status %d: %q", resp.StatusCode, out)
				}
				return nil
			}
			if err := post(bodies[0]); err != nil { // warm up: metadata, producer ID
				b.Fatal(err)
			}
			b.SetBytes(int64(len(bodies[0])))
			cpu0 := processCPU()
			lat := postConcurrently(b, clients, bodies, post)
			cpu := processCPU() - cpu0
			pct := func(p float64) float64 { return percentileMs(lat, p) }
			b.ReportMetric(float64(b.N)*benchSpans/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			// CPU of the whole process (gateway, clients and broker) per span:
			// what the machine's other load does not change.
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*benchSpans), "cpu-µs/span")
			if n := metricValue(b, g, `costpipe_ingest_otlp_spans_total{result="accepted"}`); n != float64((b.N+1)*benchSpans) {
				b.Fatalf("%v spans accepted, want %d", n, (b.N+1)*benchSpans)
			}
		})
	}
}

// BenchmarkOTLPDecodeMap measures the CPU cost of one span without HTTP or
// Kafka: decoding a 500-span protobuf export, mapping every span, encoding
// its event. One op is one span.
func BenchmarkOTLPDecodeMap(b *testing.B) {
	body, err := ptraceotlp.NewExportRequestFromTraces(benchTraces(1)[0]).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	bt := newBatch()
	m := newOTLPMapper(DefaultOTLPTenantAttribute, DefaultOTLPSkipOperations())
	s := &Server{}
	b.SetBytes(int64(len(body) / benchSpans))
	b.ReportAllocs()
	for i := 0; i < b.N; i += benchSpans {
		req, err := decodeTraces(otlpProto, body)
		if err != nil {
			b.Fatal(err)
		}
		bt.reset(AnyTenant, timeBounds{})
		var c traceCounts
		s.mapTraces(m, req, AnyTenant, bt, &c)
		if len(bt.spans) != benchSpans {
			b.Fatalf("%d events of %d spans: %v", len(bt.spans), benchSpans, c.reasons)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "spans/s")
}
