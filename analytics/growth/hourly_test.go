package growth

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// hourSynth describes a synthetic hourly series with a known truth: a
// level moving at rate per day (ln units), a daily profile
// 1 + amp·cos(2π(h − 14)/24) (peak at 14:00, trough at 02:00), weekend
// days at weekend× a weekday, and multiplicative noise uniform in
// [1−noise, 1+noise].
type hourSynth struct {
	level, rate, amp, weekend, noise float64
	phase                            int // hour of the week of hour 0 (0: Monday 00:00)
}

// gen returns n hours of s drawn with seed.
func (s hourSynth) gen(n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d))
	out := make([]float64, n)
	for t := range out {
		hw := (s.phase + t) % HoursPerWeek
		v := s.level * math.Exp(s.rate*float64(t)/24) * (1 + s.amp*math.Cos(2*math.Pi*float64(hw%24-14)/24))
		if hw/24 >= 5 {
			v *= s.weekend
		}
		out[t] = v * (1 + s.noise*(2*r.Float64()-1))
	}
	return out
}

var hourlyCases = []struct {
	name string
	s    hourSynth
}{
	{"growth +2%/day, daily profile ±60%, weekends at 50%, ±30% noise", hourSynth{level: 10, rate: math.Log(1.02), amp: 0.6, weekend: 0.5, noise: 0.3}},
	{"flat, daily profile ±80%, weekends at 30%, ±20% noise", hourSynth{level: 10, amp: 0.8, weekend: 0.3, noise: 0.2}},
	{"shrinking, halving every 30 days, daily profile ±50%, weekends at 60%, ±30% noise", hourSynth{level: 10, rate: -math.Ln2 / 30, amp: 0.5, weekend: 0.6, noise: 0.3}},
	{"flat, no pattern, ±40% noise", hourSynth{level: 10, weekend: 1, noise: 0.4}},
}

// TestForecastHoursAccuracy backtests ForecastHours on 12 weeks of
// hourly history for the next day and the next week: the chosen method's
// MASE is at most seasonal naive's, the backtest's P10–P90 covers at
// least 70% of origins, and the realised total of the hours after the
// history (out of sample, 100 seeds: ±0.045 at 0.8) at least 65%.
func TestForecastHoursAccuracy(t *testing.T) {
	const seeds, oosSeeds = 20, 100
	n := MaxHourlyHistory
	t.Logf("| hourly series (12 weeks of history) | horizon | methods chosen | MASE chosen (mean) | MASE seasonal naive (mean) | backtest coverage, pooled | out of sample: covered, %d seeds | mean width / total |", oosSeeds)
	t.Logf("|---|---|---|---|---|---|---|---|")
	for ci, c := range hourlyCases {
		for _, h := range []int{24, HoursPerWeek} {
			chosen := map[string]int{}
			var mase, naive float64
			in, all := 0, 0
			for seed := range seeds {
				s := c.s
				s.phase = (seed * 37) % HoursPerWeek
				y := s.gen(n, uint64(100*ci+seed))
				f, bt := forecastHours(y, 0, h)
				if f.MASE == nil || f.Coverage == nil || f.P10 == nil || bt == nil {
					t.Fatalf("%s, %d h, seed %d: %+v", c.name, h, seed, f)
				}
				chosen[f.Method]++
				naiveMASE := bt.mae[0] / bt.naiveQ
				if *f.MASE > naiveMASE+1e-12 {
					t.Errorf("%s, %d h, seed %d: chosen %s MASE %.3f > seasonal naive's %.3f", c.name, h, seed, f.Method, *f.MASE, naiveMASE)
				}
				mase += *f.MASE / seeds
				naive += naiveMASE / seeds
				for _, o := range bt.origins {
					all++
					if o.in {
						in++
					}
				}
			}
			oos, width := 0, 0.0
			for seed := range oosSeeds {
				s := c.s
				s.phase = (seed * 37) % HoursPerWeek
				y := s.gen(n+h, uint64(100*ci+seed+50_000))
				f := ForecastHours(y[:n], 0, h)
				total := sum(y[n:])
				if *f.P10 <= total && total <= *f.P90 {
					oos++
				}
				width += (*f.P90 - *f.P10) / total / oosSeeds
			}
			pooled, out := float64(in)/float64(all), float64(oos)/oosSeeds
			t.Logf("| %s | %d h | %s | %.3f | %.3f | %.2f of %d | %.2f | %.1f%% |", c.name, h, methodCounts(chosen), mase, naive, pooled, all, out, 100*width)
			if pooled < 0.7 || out < 0.65 {
				t.Errorf("%s, %d h: P10–P90 covered %.2f of backtest origins and %.2f of later totals; want ≥ 0.7 and ≥ 0.65", c.name, h, pooled, out)
			}
		}
	}
}

// TestForecastHoursDailyPattern: on a series with a daily and a weekly
// pattern, Holt–Winters with both seasons beats repeating last week hour
// by hour, and its forecast of a night is lower than of an afternoon.
func TestForecastHoursDailyPattern(t *testing.T) {
	s := hourSynth{level: 10, amp: 0.8, weekend: 0.3, noise: 0.2}
	hw := 0
	for seed := range 20 {
		if f := ForecastHours(s.gen(MaxHourlyHistory, uint64(seed+900)), 0, 24); f.Method == MethodHoltWinters {
			hw++
		}
	}
	if hw < 15 {
		t.Errorf("Holt–Winters chosen for %d of 20 series with a daily and weekly pattern; want ≥ 15", hw)
	}
	// Hour 0 of the history is Monday 00:00; 2016 hours later it is
	// Monday 00:00 again: hours 0–5 are the night, 12–17 the afternoon.
	y := s.gen(MaxHourlyHistory, 901)
	night, afternoon := ForecastHours(y, 0, 6), ForecastHours(append(slices.Clone(y), s.gen(12, 902)...)[12:], 0, 6)
	if night.P50 == nil || afternoon.P50 == nil || !(*night.P50 < *afternoon.P50/2) {
		t.Errorf("night P50 %v, afternoon P50 %v: want the night below half the afternoon", fmtp(night.P50), fmtp(afternoon.P50))
	}
}

func TestForecastHoursEdges(t *testing.T) {
	y := hourSynth{level: 10, amp: 0.5, weekend: 0.5, noise: 0.2}.gen(MaxHourlyHistory+500, 3)
	for _, c := range []struct {
		hist   []float64
		toDate float64
		h      int
		method string
		note   string
	}{
		{y[:100], 5, 24, "", "only 100 hours of history; a forecast needs at least 168"},
		{y[:600], 5, 24, MethodRunRate, "only 600 hours of history; choosing a method and an interval needs 696: run rate without interval"},
		{y[:800], 5, 168, MethodRunRate, "choosing a method and an interval needs 840"},
		{y, math.NaN(), 24, "", "invalid input: to_date is NaN"},
		{[]float64{1, -1}, 0, 24, "", "invalid input: history[1] is -1"},
		{y, 0, 0, "", "invalid input: remaining hours 0 must be in [1, 168]"},
		{y, 0, 169, "", "invalid input: remaining hours 169"},
	} {
		f := ForecastHours(c.hist, c.toDate, c.h)
		if f.Method != c.method || !strings.Contains(f.Note, c.note) {
			t.Errorf("%d hours, %d ahead: method %q note %q; want %q, %q", len(c.hist), c.h, f.Method, f.Note, c.method, c.note)
		}
		if f.P10 != nil || f.MASE != nil || f.Coverage != nil {
			t.Errorf("%d hours, %d ahead: invented an interval: %+v", len(c.hist), c.h, f)
		}
		if c.method == MethodRunRate {
			want := c.toDate + sum(c.hist[len(c.hist)-HoursPerWeek:])/HoursPerWeek*float64(c.h)
			if f.P50 == nil || math.Abs(*f.P50-want) > 1e-9*want {
				t.Errorf("%d hours: P50 %v, want the run rate's %v", len(c.hist), fmtp(f.P50), want)
			}
		}
	}
	// Nothing ever: the total so far, no interval, and a note that says so.
	if f := ForecastHours(make([]float64, 1000), 2, 24); f.P50 == nil || *f.P50 != 2 || f.P10 != nil || f.MASE != nil ||
		f.Note != "nothing in the 1000 hours of history: the forecast is the total so far, without interval" {
		t.Errorf("all-zero history: P50 %v P10 %v MASE %v note %q", fmtp(f.P50), fmtp(f.P10), fmtp(f.MASE), f.Note)
	}
	// Longer history than MaxHourlyHistory is cut, not refused; scale
	// does not matter; toDate is added.
	a := ForecastHours(y, 0, 24)
	big := make([]float64, len(y))
	for i, v := range y {
		big[i] = v * 1e9
	}
	b := ForecastHours(big, 7e9, 24)
	if a.P50 == nil || b.P50 == nil || a.Method != b.Method || math.Abs((*a.P50*1e9+7e9)-*b.P50) > 1e-9**b.P50 || a.BacktestOrigins != maxHourOrigins {
		t.Errorf("scaled ×1e9: %s %v vs %s %v, %d origins", a.Method, fmtp(a.P50), b.Method, fmtp(b.P50), a.BacktestOrigins)
	}
	if !(*a.P10 <= *a.P50 && *a.P50 <= *a.P90) {
		t.Errorf("P10 %v P50 %v P90 %v out of order", *a.P10, *a.P50, *a.P90)
	}
	// A week without usage: a forecast of 0, no interval.
	quiet := append(slices.Clone(y[:MaxHourlyHistory-HoursPerWeek]), make([]float64, HoursPerWeek)...)
	if f := ForecastHours(quiet, 0, 24); f.P10 != nil || !strings.Contains(f.Note, "no usage in the last week") {
		t.Errorf("quiet last week: %+v", f)
	}
}

func BenchmarkForecastHours(b *testing.B) {
	var series [][]float64
	for i := range 16 {
		c := hourlyCases[i%len(hourlyCases)].s
		c.phase = i * 11
		series = append(series, c.gen(MaxHourlyHistory, uint64(i)))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f := ForecastHours(series[i%len(series)], 0, 24)
		if f.P90 == nil {
			b.Fatal(f.Note)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "series/s")
}
