package growth

import (
	"math"
	"testing"
)

// benchSeries are 64 series of 90 days (growing, flat, seasonal,
// shrinking), so that a benchmark does not time one lucky series.
func benchSeries() [][]float64 {
	kinds := []synth{
		{level: 100, rate: math.Log(1.02), weekend: 0.6, noise: 0.2},
		{level: 100, weekend: 0.3, noise: 0.15},
		{level: 100, noise: 0.3},
		{level: 100, rate: -math.Ln2 / 30, weekend: 0.5, noise: 0.2},
	}
	var out [][]float64
	for i := range 64 {
		s := kinds[i%len(kinds)]
		s.phase = i % 7
		out = append(out, s.gen(90, uint64(i)))
	}
	return out
}

func BenchmarkCompute(b *testing.B) {
	series := benchSeries()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		g := Compute(series[i%len(series)], 0)
		if g.DailyRate == nil {
			b.Fatal(g.Note)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "series/s")
}

func BenchmarkForecastPeriod(b *testing.B) {
	series := benchSeries()
	budget := 5000.0
	opts := ForecastOptions{Budget: &budget}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f := ForecastPeriod(series[i%len(series)], 1500, 15, opts)
		if f.P90 == nil {
			b.Fatal(f.Note)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "series/s")
}
