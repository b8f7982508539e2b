package growth

import (
	"encoding/binary"
	"math"
	"testing"
)

// floats decodes data as little-endian float64s (a trailing partial one
// is dropped), at most 400.
func floats(data []byte) []float64 {
	n := min(len(data)/8, 400)
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:]))
	}
	return out
}

// encode is the inverse of floats, for the seed corpus.
func encode(xs ...float64) []byte {
	b := make([]byte, 8*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

// seedSeries are the fuzz targets' seed series.
func seedSeries() [][]byte {
	grow := synth{level: 10, rate: 0.05, weekend: 0.4, noise: 0.3}.gen(60, 1)
	withNaN := append([]float64(nil), grow...)
	withNaN[30] = math.NaN()
	tiny := make([]float64, 40)
	huge := make([]float64, 40)
	for i := range tiny {
		tiny[i] = 5e-324 * float64(i%3)
		huge[i] = math.MaxFloat64 / float64(1+i%4)
	}
	return [][]byte{
		nil,
		encode(1),
		encode(grow...),
		encode(withNaN...),
		encode(append(grow[:20:20], math.Inf(1))...),
		encode(append(grow[:20:20], -1)...),
		encode(make([]float64, 50)...),
		encode(tiny...),
		encode(huge...),
	}
}

func FuzzCompute(f *testing.F) {
	for _, s := range seedSeries() {
		for _, w := range []int{0, 7, 14, 28, 1000} {
			f.Add(s, w)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, window int) {
		g := Compute(floats(data), window)
		for name, p := range map[string]*float64{
			"last_7d": g.Last7d, "prev_7d": g.Prev7d, "wow_pct": g.WoWPct, "dod_pct": g.DoDPct,
			"daily_rate": g.DailyRate, "cmgr_pct": g.CMGRPct, "rate_ci_low": g.RateCILow, "rate_ci_high": g.RateCIHigh,
			"doubling_days": g.DoublingDays, "halving_days": g.HalvingDays,
		} {
			if p != nil && (math.IsNaN(*p) || math.IsInf(*p, 0)) {
				t.Fatalf("%s = %v", name, *p)
			}
		}
		if g.DoublingDays != nil && g.HalvingDays != nil {
			t.Fatalf("both doubling %v and halving %v", *g.DoublingDays, *g.HalvingDays)
		}
		if g.RateCILow != nil && g.RateCIHigh != nil && *g.RateCILow > *g.RateCIHigh {
			t.Fatalf("interval [%v, %v]", *g.RateCILow, *g.RateCIHigh)
		}
		if g.DaysUsed+g.ZeroDays != g.Window && g.Note[:min(len(g.Note), 7)] != "invalid" {
			t.Fatalf("days used %d + zero %d != window %d", g.DaysUsed, g.ZeroDays, g.Window)
		}
	})
}

func FuzzForecastPeriod(f *testing.F) {
	for _, s := range seedSeries() {
		for _, rem := range []int{0, 1, 14, 31, -1, 400} {
			f.Add(s, 100.0, rem, 1000.0, true)
		}
		f.Add(s, math.NaN(), 10, 0.0, false)
		f.Add(s, 0.0, 10, math.Inf(1), true)
		f.Add(s, math.MaxFloat64, 10, 5e-324, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, toDate float64, rem int, budget float64, hasBudget bool) {
		opts := ForecastOptions{}
		if hasBudget {
			opts.Budget = &budget
		}
		rem = rem % 500
		fc := ForecastPeriod(floats(data), toDate, rem, opts)
		for name, p := range map[string]*float64{
			"mase": fc.MASE, "coverage": fc.Coverage, "to_date": fc.ToDate,
			"forecast_p10": fc.P10, "forecast_p50": fc.P50, "forecast_p90": fc.P90, "p_overspend": fc.POverspend,
		} {
			if p != nil && (math.IsNaN(*p) || math.IsInf(*p, 0) || *p < 0) {
				t.Fatalf("%s = %v", name, *p)
			}
		}
		for name, p := range map[string]*float64{"coverage": fc.Coverage, "p_overspend": fc.POverspend} {
			if p != nil && *p > 1 {
				t.Fatalf("%s = %v > 1", name, *p)
			}
		}
		if fc.P10 != nil && fc.P50 != nil && fc.P90 != nil && !(*fc.ToDate <= *fc.P10 && *fc.P10 <= *fc.P50 && *fc.P50 <= *fc.P90) {
			t.Fatalf("to_date %v P10 %v P50 %v P90 %v out of order", *fc.ToDate, *fc.P10, *fc.P50, *fc.P90)
		}
		for name, p := range map[string]*int{"exhaustion_p50": fc.ExhaustionP50, "exhaustion_p90": fc.ExhaustionP90} {
			if p != nil && (*p < 0 || *p >= max(rem, 1)) {
				t.Fatalf("%s = %d with %d days remaining", name, *p, rem)
			}
		}
	})
}
