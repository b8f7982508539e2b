package sketch

import (
	"math/rand/v2"
	"testing"
)

// latencies returns n log-normal latencies of one model: median 800 ms,
// shape σ.
func latencies(n int, sigma float64) []float64 {
	r := rand.New(rand.NewPCG(99, uint64(n)))
	return fill(n, func() float64 { return logNormal(r, 800, sigma) })
}

func reportEvents(b *testing.B, perOp float64) {
	b.ReportMetric(perOp*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIndex measures the bucket mapping alone.
func BenchmarkIndex(b *testing.B) {
	xs := latencies(1<<16, 1)
	var sink int16
	for i := range b.N {
		sink += Index(xs[i&(len(xs)-1)])
	}
	_ = sink
	reportEvents(b, 1)
}

// BenchmarkAdd measures Add of log-normal latencies (one value per event)
// into one key-minute's histogram, reset every 10 000 values as a flushed
// window would be.
func BenchmarkAdd(b *testing.B) {
	for _, tc := range []struct {
		name  string
		sigma float64
	}{{"sigma=0.5", 0.5}, {"sigma=1", 1}, {"sigma=2", 2}} {
		b.Run(tc.name, func(b *testing.B) {
			xs := latencies(1<<16, tc.sigma)
			var h Histogram
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i%10000 == 0 {
					h.Reset()
				}
				h.Add(xs[i&(len(xs)-1)])
			}
			reportEvents(b, 1)
		})
	}
}

// BenchmarkMerge measures merging key-minute histograms of 1 000 values
// (σ = 1) into an hourly total, the query layer's roll-up; events/s counts
// the values merged.
func BenchmarkMerge(b *testing.B) {
	parts := make([]*Histogram, 60)
	for k := range parts {
		parts[k] = histogramOf(latencies(1000+k, 1))
	}
	var total Histogram
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%len(parts) == 0 {
			total.Reset()
		}
		total.Merge(parts[i%len(parts)])
	}
	reportEvents(b, 1000)
	b.ReportMetric(float64(len(parts[0].idx)), "buckets/op")
}

// BenchmarkQuantile measures one quantile of a histogram of 100 000 values
// (σ = 1).
func BenchmarkQuantile(b *testing.B) {
	h := histogramOf(latencies(100000, 1))
	qs := []float64{0.5, 0.9, 0.99, 0.999}
	var sink float64
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		v, _ := h.Quantile(qs[i&3])
		sink += v
	}
	_ = sink
	b.ReportMetric(float64(len(h.idx)), "buckets")
}

// BenchmarkFromArrays measures decoding a merged row read from ClickHouse.
func BenchmarkFromArrays(b *testing.B) {
	idx, cnt := histogramOf(latencies(100000, 1)).AppendArrays(nil, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := FromArrays(idx, cnt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(idx)), "buckets")
}

// BenchmarkFootprint reports the average Bytes of a histogram of n
// log-normal latencies of one model, the number of distinct buckets, and
// the bytes a dense window of uint32 counts would take instead.
func BenchmarkFootprint(b *testing.B) {
	for _, tc := range []struct {
		name  string
		n     int
		sigma float64
	}{
		{"n=100/sigma=0.5", 100, 0.5},
		{"n=10000/sigma=0.5", 10000, 0.5},
		{"n=100/sigma=1", 100, 1},
		{"n=10000/sigma=1", 10000, 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var bytes, buckets, dense float64
			for range b.N {
				bytes, buckets, dense = footprint(tc.n, tc.sigma)
			}
			b.ReportMetric(bytes, "B/hist")
			b.ReportMetric(buckets, "buckets/hist")
			b.ReportMetric(dense, "denseB/hist")
		})
	}
}
