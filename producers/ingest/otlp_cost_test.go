package ingest

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// pbRepeat is a message of n times field f holding m (an empty message
// when m is nil).
func pbRepeat(f int, m []byte, n int) []byte {
	return bytes.Repeat(appendBytesField(nil, f, m), n)
}

// pbExport wraps spans (the bytes of Span messages' fields) in one
// resource and scope.
func pbExport(spans []byte) []byte {
	return appendBytesField(nil, 1, appendBytesField(nil, 2, spans))
}

// jsExport wraps the JSON spans in one resource and scope.
func jsExport(spans string) []byte {
	return []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[` + spans + `]}]}]}`)
}

func jsRepeat(s string, n int) string { return strings.TrimSuffix(strings.Repeat(s+",", n), ",") }

// liveBytes is the heap that the value f returns keeps alive.
func liveBytes(f func() any) (live, alloc int64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc), int64(after.TotalAlloc - before.TotalAlloc)
}

// TestOTLPCostBoundsDecodedMemory: for ordinary exports and for the
// shapes that decode to the most memory per byte (empty spans, events,
// links, attributes, array values, map entries, short strings), the
// estimate is at least the heap the decoded traces hold, and for ordinary
// exports not far above it.
func TestOTLPCostBoundsDecodedMemory(t *testing.T) {
	// Not parallel: it measures the heap, which other tests would move.
	const n = 40_000
	typical := make([]func(ptrace.Span), 2000)
	td := testTraces(map[string]any{"service.name": "chat-ui", "costpipe.tenant": "acme"}, typical...)
	kv := func(key, value string) []byte { // KeyValue{key, {string_value}}
		return appendBytesField(appendStringField(nil, 1, key), 2, appendStringField(nil, 1, value))
	}
	for _, tc := range []struct {
		name     string
		enc      otlpEncoding
		body     []byte
		ordinary bool
	}{
		{"typical protobuf", otlpProto, protoBody(t, td), true},
		{"typical JSON", otlpJSON, jsonBody(t, td), true},
		{"empty spans protobuf", otlpProto, emptySpans(otlpProto, n), false},
		{"empty spans JSON", otlpJSON, emptySpans(otlpJSON, n), false},
		{"empty resources protobuf", otlpProto, pbRepeat(1, nil, n), false},
		{"empty scopes protobuf", otlpProto, appendBytesField(nil, 1, pbRepeat(2, nil, n)), false},
		{"empty attributes protobuf", otlpProto, pbExport(appendBytesField(nil, 2, pbRepeat(9, nil, n))), false},
		{"empty attributes JSON", otlpJSON, jsExport(`{"attributes":[` + jsRepeat(`{}`, n) + `]}`), false},
		{"empty events protobuf", otlpProto, pbExport(appendBytesField(nil, 2, pbRepeat(11, nil, n))), false},
		{"empty links JSON", otlpJSON, jsExport(`{"links":[` + jsRepeat(`{}`, n) + `]}`), false},
		{"short strings protobuf", otlpProto, pbExport(appendBytesField(nil, 2, bytes.Repeat(appendBytesField(nil, 9, kv("k", "v")), n))), false},
		{"short strings JSON", otlpJSON, jsExport(`{"attributes":[` + jsRepeat(`{"key":"k","value":{"stringValue":"v"}}`, n) + `]}`), false},
		{"int values JSON", otlpJSON, jsExport(`{"attributes":[` + jsRepeat(`{"value":{"intValue":1}}`, n) + `]}`), false},
		{"array values protobuf", otlpProto, pbExport(appendBytesField(nil, 2, appendBytesField(nil, 9,
			appendBytesField(nil, 2, appendBytesField(nil, 5, pbRepeat(1, nil, n)))))), false},
		{"array values JSON", otlpJSON, jsExport(`{"attributes":[{"value":{"arrayValue":{"values":[` + jsRepeat(`{}`, n) + `]}}}]}`), false},
		{"map entries JSON", otlpJSON, jsExport(`{"attributes":[{"value":{"kvlistValue":{"values":[` + jsRepeat(`{}`, n) + `]}}}]}`), false},
		{"escaped keys JSON", otlpJSON, []byte(`{"resourceSpans":[{"scopeSpans":[{"sp\u0061ns":[` + jsRepeat(`{}`, n) + `]}]}]}`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cost := costOf(tc.enc, tc.body)
			live, alloc := liveBytes(func() any {
				td, err := decodeTraces(tc.enc, tc.body)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				return td
			})
			t.Logf("%d bytes: %d spans, estimate %d, live heap %d (%.2fx), allocated %d", len(tc.body), cost.spans, cost.bytes, live,
				float64(cost.bytes)/float64(live), alloc)
			if cost.bytes < live {
				t.Errorf("estimate %d bytes, below the %d the decoded traces hold", cost.bytes, live)
			}
			if tc.ordinary && cost.bytes > 2*live {
				t.Errorf("estimate %d bytes, over twice the %d the decoded traces hold", cost.bytes, live)
			}
		})
	}
}

// TestOTLPCostMalformed: the walks stop at malformed input without
// panicking, counting what came before.
func TestOTLPCostMalformed(t *testing.T) {
	t.Parallel()
	for _, body := range [][]byte{
		{0x0a, 0xff, 0x01}, {0x0a}, {0x0b, 0x0c}, {0x0c}, {0x00}, appendBytesField(nil, 1, []byte{0x12, 0x05}),
		bytes.Repeat([]byte{0x0a, 0x80}, 10), []byte(`{"resourceSpans":[{`), []byte(`"\`), []byte(`]]]}}}`),
		[]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{},"\u00`),
	} {
		protoCost(body)
		jsonCost(body)
	}
	if c := protoCost(pbExport(append(pbRepeat(2, nil, 3), 0x0a, 0xff))); c.spans != 3 || !c.malformed {
		t.Errorf("protobuf cut short after 3 spans: %d spans counted, malformed %v; want 3, malformed", c.spans, c.malformed)
	}
}

// TestOTLPCostReadsAsPdataDoes: the walk reads the wire format as pdata's
// decoder does, so that no body pdata decodes hides spans from the
// estimate. A 10-byte varint whose last byte is above 1 (which
// encoding/binary refuses and pdata takes) stopped the walk at the start
// of a body of 10,000 spans; a field number past 2³² (which pdata cuts to
// an int32) hid every span it tagged. Both counted 0 spans.
func TestOTLPCostReadsAsPdataDoes(t *testing.T) {
	t.Parallel()
	const n = 10_000
	bigVarint := append([]byte{0x10}, append(bytes.Repeat([]byte{0xff}, 9), 0x7f)...) // unknown field 2, a varint
	aliased := binary.AppendUvarint(nil, (1<<32+2)<<3|2)                              // field 2³²+2: pdata reads field 2
	spans := bytes.Repeat(append(aliased, 0x00), n)
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"10-byte varint", append(bigVarint, emptySpans(otlpProto, n)...)},
		{"field number past 2^32", appendBytesField(nil, 1, appendBytesField(nil, 2, spans))},
		// An unknown group that pdata ends at its first non-group field.
		{"group ended by a field", append([]byte{0x13, 0x08, 0x00}, emptySpans(otlpProto, n)...)},
	} {
		td, err := decodeTraces(otlpProto, tc.body)
		if err != nil || td.SpanCount() != n {
			t.Fatalf("%s: pdata decodes %d spans, %v; the case needs it to decode all %d", tc.name, td.SpanCount(), err, n)
		}
		if c := protoCost(tc.body); c.spans != n || c.malformed {
			t.Errorf("%s: the walk counted %d spans (malformed %v), want %d", tc.name, c.spans, c.malformed, n)
		}
	}
	// A field number pdata refuses (0 after the cut) stops the walk.
	if c := protoCost(binary.AppendUvarint(nil, 1<<35|2)); !c.malformed {
		t.Error("field number 2^32: the walk went on")
	}
}

// BenchmarkOTLPCost is the walk that prices a body before decoding, on
// BenchmarkOTLPDecodeMap's exports: compare with its time per span.
func BenchmarkOTLPCost(b *testing.B) {
	spans := make([]func(ptrace.Span), 500)
	td := testTraces(map[string]any{"service.name": "chat-ui"}, spans...)
	for _, enc := range []otlpEncoding{otlpProto, otlpJSON} {
		body := protoBody(b, td)
		name := "protobuf"
		if enc == otlpJSON {
			body, name = jsonBody(b, td), "JSON"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				costOf(enc, body)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/500, "ns/span")
		})
		b.Run(name+"/decode", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				decodeTraces(enc, body)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/500, "ns/span")
		})
	}
}

// FuzzOTLPCost: the walk that prices a body never panics on any input, and
// it never counts fewer spans than the decoder then makes of the body (the
// budget reserved for a body that decodes covers its spans).
func FuzzOTLPCost(f *testing.F) {
	td := testTraces(map[string]any{"service.name": "svc", "costpipe.tenant": "acme"}, nil,
		func(sp ptrace.Span) { sp.Attributes().PutStr("gen_ai.usage.output_tokens", "x") })
	f.Add(protoBody(f, td), false)
	f.Add(jsonBody(f, td), true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{},{"name":"\u0041"}]}]}]}`), true)
	f.Add([]byte{0x0a, 0x04, 0x12, 0x02, 0x12, 0x00}, false)
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x0a, 0x02, 0x12, 0x00}, false)
	f.Add([]byte{0x13, 0x08, 0x00, 0x0a, 0x02, 0x12, 0x00}, false)
	f.Fuzz(func(t *testing.T, body []byte, json bool) {
		enc := otlpProto
		if json {
			enc = otlpJSON
		}
		c := costOf(enc, body)
		if c.spans < 0 || c.bytes < 0 {
			t.Fatalf("negative cost %+v", c)
		}
		got, err := decodeTraces(enc, body)
		if err != nil {
			return
		}
		if n := int64(got.SpanCount()); c.spans < n || c.malformed {
			t.Fatalf("the walk counted %d spans (malformed %v), the decoder made %d of %q", c.spans, c.malformed, n, body)
		}
	})
}
