package usage

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/costpipe/costpipe/schemas"
)

func benchEvents(keys, n int, t0 time.Time, minutes int) []schemas.Event {
	models := []string{"gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-4.1-mini"}
	out := make([]schemas.Event, n)
	for i := range out {
		k := i % keys
		out[i] = schemas.Event{EventID: fmt.Sprint(i), Timestamp: t0.Add(time.Duration((i/keys)%minutes) * time.Minute),
			Tenant: fmt.Sprintf("tenant-%03d", k/len(models)), Provider: "openai", Model: models[k%len(models)],
			Status: schemas.StatusOK, Application: "app", InputTokens: int64(1000 + i%900), OutputTokens: int64(200 + i%300),
			LatencyMs: 300 + float64(i%5000)*1.7, HasLatency: true, TTFTMs: 80 + float64(i%700), HasTTFT: true}
	}
	return out
}

// BenchmarkPipelineAdd: price + aggregate (no decode) of typical events.
func BenchmarkPipelineAdd(b *testing.B) {
	p, err := New(nil, DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	p.AssignLanded([]int32{0}, nil)
	events := benchEvents(160, 1<<16, time.Now().UTC().Truncate(time.Minute), 2)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Add(0, int64(i), &events[i%len(events)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkWindowMemory reports the heap held per active key-minute window
// (the aggregator's state between flushes) for 1000 keys × 10 minutes of
// log-spread latencies, and checks that adding 10× more events over the same
// keys does not grow it.
func BenchmarkWindowMemory(b *testing.B) {
	const keys, minutes = 1000, 10
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	events := benchEvents(keys, 200_000, t0, minutes)
	for i := 0; i < b.N; i++ {
		p, _ := New(nil, DefaultOptions())
		p.AssignLanded([]int32{0}, nil)
		before := heap()
		for j := 0; j < 1_000_000; j++ {
			p.Add(0, int64(j), &events[j%len(events)])
		}
		after1M := heap()
		for j := 0; j < 9_000_000; j++ {
			p.Add(0, int64(j), &events[j%len(events)])
		}
		after10M := heap()
		runtime.KeepAlive(p)
		b.ReportMetric(float64(after1M-before)/float64(p.Windows()), "B/window")
		b.ReportMetric(float64(after10M-before)/float64(p.Windows()), "B/window@10M")
		b.ReportMetric(float64(p.Windows()), "windows")
	}
}

func heap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
