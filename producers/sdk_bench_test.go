package producers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/schemas"
)

// benchEvents returns n typical events: 50 tenants × 4 models, a tenth with
// two attributes.
func benchEvents(n int, withAttrs bool) []schemas.Event { return benchEventsAttrs(n, withAttrs, 10) }

// benchEventsAttrs is benchEvents with one event in every attrEvery having
// attributes.
func benchEventsAttrs(n int, withAttrs bool, attrEvery int) []schemas.Event {
	evs := make([]schemas.Event, n)
	for i := range evs {
		e := testEvent(i)
		e.Tenant = fmt.Sprintf("tenant-%02d", i%50)
		e.EventID = fmt.Sprintf("%08x-4f1c-8a2b-%04x-%012x", i*2654435761, i%65536, i*40503)
		e.Attributes = nil
		if withAttrs && i%attrEvery == 0 {
			e.Attributes = map[string]string{"tier": "pro", "experiment": "b"}
		}
		evs[i] = e
	}
	return evs
}

// BenchmarkEmit measures what Emit costs the calling goroutine: validation
// and the copy into the buffer (target ≤ 200 ns). Linger and BatchEvents are
// set so the background stays idle while the timer runs; every 16384 events
// (what a Producer buffers in 10 ms at 1.6M events/s) the timer stops and
// the buffer is flushed to the embedded broker, so the caller never waits
// for room and buffer chunks are recycled as in steady state. BenchmarkEmitDraining is the same with the
// background encoding and sending at the same time on the other core.
func BenchmarkEmit(b *testing.B) {
	for _, tc := range []struct {
		name  string
		enc   Encoding
		attrs bool
	}{
		{"json", EncodingJSON, false},
		{"arrow", EncodingArrow, false},
		{"arrow-attrs10pct", EncodingArrow, true},
		{"arrow-attrs100pct", EncodingArrow, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			every := 10
			if strings.HasSuffix(tc.name, "100pct") {
				every = 1
			}
			benchEmit(b, tc.enc, benchEventsAttrs(4096, tc.attrs, every), func(o *Options) {
				o.Linger = time.Minute
				o.BatchEvents = 100_000
				o.BufferEvents = 400_000
			})
		})
	}
}

// BenchmarkEmitDraining is BenchmarkEmit with the default Linger and
// BatchEvents: the Producer encodes and sends while the caller emits, so
// the caller competes with it (and with the broker) for the CPU, the lock
// and the memory bandwidth.
func BenchmarkEmitDraining(b *testing.B) {
	benchEmit(b, EncodingArrow, benchEvents(4096, true), func(o *Options) { o.BufferEvents = 400_000 })
}

func benchEmit(b *testing.B, enc Encoding, evs []schemas.Event, edit func(*Options)) {
	br := kafkatest.Start(b, 6)
	o := DefaultOptions()
	o.Brokers = []string{br.Addr()}
	o.Encoding = enc
	edit(&o)
	p, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := context.Background()
	flush := func() {
		if err := p.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%16384 == 16383 {
			b.StopTimer()
			flush()
			b.StartTimer()
		}
		if err := p.Emit(ctx, &evs[i&4095]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	flush()
	if s := p.Stats(); s.Sent != int64(b.N) {
		b.Fatalf("stats %+v, want %d sent", s, b.N)
	}
}

// BenchmarkProduce measures end-to-end throughput: Emit b.N events, then
// Flush until Kafka (the embedded broker, over TCP) acknowledged them all.
// events/s is the figure (target ≥ 1M/s for Arrow); it shares the machine's
// cores with the broker.
func BenchmarkProduce(b *testing.B) {
	for _, enc := range []Encoding{EncodingArrow, EncodingJSON} {
		b.Run(string(enc), func(b *testing.B) {
			br := kafkatest.Start(b, 6)
			o := DefaultOptions()
			o.Brokers = []string{br.Addr()}
			o.Encoding = enc
			p, err := New(o)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(context.Background())
			evs := benchEvents(4096, true)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			// Warm up: topic metadata, connections, buffers.
			for i := range 10_000 {
				if err := p.Emit(ctx, &evs[i&4095]); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := p.Emit(ctx, &evs[i&4095]); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if s := p.Stats(); s.Sent != int64(b.N)+10_000 || s.Failed != 0 {
				b.Fatalf("stats %+v, want %d sent", s, b.N+10_000)
			}
		})
	}
}
