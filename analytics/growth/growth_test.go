package growth

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// trendCase is a known growth rate to be recovered by Compute.
type trendCase struct {
	s    synth
	days int // series length
}

// computeSeeds runs Compute over seeds of c with the default window.
func computeSeeds(c trendCase, seeds int, f func(seed int, g Growth)) {
	for seed := range seeds {
		s := c.s
		s.phase = seed % 7
		f(seed, Compute(s.gen(c.days, uint64(seed)), 0))
	}
}

func TestComputeDoublingEvery5Days(t *testing.T) {
	c := trendCase{synth{level: 10, rate: math.Ln2 / 5, weekend: 0.4, noise: 0.3}, 35}
	rate := func(seeds int) (within int) {
		computeSeeds(c, seeds, func(seed int, g Growth) {
			if g.HalvingDays != nil {
				t.Errorf("seed %d: halving %v reported for a doubling series", seed, *g.HalvingDays)
			}
			if g.DoublingDays != nil && math.Abs(*g.DoublingDays-5) <= 0.5 {
				within++
			} else if seeds == 20 {
				t.Logf("seed %d: doubling %v, rate %v [%v, %v]", seed, fmtp(g.DoublingDays), fmtp(g.DailyRate), fmtp(g.RateCILow), fmtp(g.RateCIHigh))
			}
		})
		return within
	}
	w20, w500 := rate(20), rate(500)
	t.Logf("| doubling every 5 days, ±30%% noise, weekends at 40%%, 28-day window | DoublingDays within 10%% of 5 | %d/20 seeds; %d/500 (%.1f%%) |", w20, w500, 100*float64(w500)/500)
	if w20 < 19 {
		t.Errorf("doubling time within 10%% of 5 days in %d of 20 seeds; want ≥ 19", w20)
	}
}

func TestComputeFlatReportsNoTrend(t *testing.T) {
	for _, c := range []struct {
		name string
		s    synth
	}{
		{"flat, ±30% noise", synth{level: 50, noise: 0.3}},
		{"flat, ±30% noise, weekends at 40%", synth{level: 50, noise: 0.3, weekend: 0.4}},
	} {
		const seeds = 500
		none := 0
		computeSeeds(trendCase{c.s, 35}, seeds, func(seed int, g Growth) {
			if g.DailyRate == nil || g.RateCILow == nil {
				t.Fatalf("%s seed %d: no rate: %s", c.name, seed, g.Note)
			}
			straddles := *g.RateCILow <= 0 && 0 <= *g.RateCIHigh
			if straddles != (g.DoublingDays == nil && g.HalvingDays == nil) {
				t.Errorf("%s seed %d: interval [%v, %v] but doubling %v halving %v", c.name, seed, *g.RateCILow, *g.RateCIHigh, fmtp(g.DoublingDays), fmtp(g.HalvingDays))
			}
			if straddles {
				none++
			}
		})
		share := float64(none) / seeds
		t.Logf("| %s, 28-day window | no doubling or halving (90%% interval contains 0) | %d/%d seeds (%.1f%%) |", c.name, none, seeds, 100*share)
		if share < 0.9 {
			t.Errorf("%s: no trend reported in %.1f%% of seeds; want ≥ 90%%", c.name, 100*share)
		}
	}
}

func TestComputeHalvingEvery10Days(t *testing.T) {
	c := trendCase{synth{level: 1000, rate: -math.Ln2 / 10, weekend: 0.4, noise: 0.3}, 35}
	rate := func(seeds int) (within int) {
		computeSeeds(c, seeds, func(seed int, g Growth) {
			if g.DoublingDays != nil {
				t.Errorf("seed %d: doubling %v reported for a shrinking series", seed, *g.DoublingDays)
			}
			if g.HalvingDays != nil && math.Abs(*g.HalvingDays-10) <= 1.5 {
				within++
			} else if seeds == 20 {
				t.Logf("seed %d: halving %v, rate %v [%v, %v]", seed, fmtp(g.HalvingDays), fmtp(g.DailyRate), fmtp(g.RateCILow), fmtp(g.RateCIHigh))
			}
		})
		return within
	}
	w20, w500 := rate(20), rate(500)
	t.Logf("| halving every 10 days, ±30%% noise, weekends at 40%%, 28-day window | HalvingDays within 15%% of 10, DoublingDays nil | %d/20 seeds; %d/500 (%.1f%%) |", w20, w500, 100*float64(w500)/500)
	// About 95% of seeds hold (the slope's spread with 4 weeks of ±30%
	// noise), so 18 of 20 is what can honestly be required.
	if w20 < 18 {
		t.Errorf("halving time within 15%% of 10 days in %d of 20 seeds; want ≥ 18", w20)
	}
}

func TestComputeTooLittleData(t *testing.T) {
	grow := synth{level: 10, rate: 0.1, noise: 0.1}.gen(10, 1)
	padded := append(make([]float64, 18), grow...)
	sparse := make([]float64, 28)
	for i := 0; i < 28; i += 6 {
		sparse[i] = 5
	}
	for _, c := range []struct {
		name  string
		daily []float64
		note  string
		used  int
		zero  int
	}{
		{"series of 10 days", grow, "18 of the 28 days in the window have no usage (18 of them before the series starts); a trend needs usage on at least 14", 10, 18},
		{"18 zero days then 10", padded, "18 of the 28 days in the window have no usage; a trend needs usage on at least 14", 10, 18},
		{"5 days with usage", sparse, "only 5 days with usage in the 28-day window; need 7", 5, 23},
		{"all zero", make([]float64, 40), "only 0 days with usage in the 28-day window; need 7", 0, 28},
		{"empty", nil, "only 0 days with usage in the 28-day window; need 7", 0, 28},
	} {
		g := Compute(c.daily, 0)
		if g.DailyRate != nil || g.CMGRPct != nil || g.RateCILow != nil || g.RateCIHigh != nil || g.DoublingDays != nil || g.HalvingDays != nil {
			t.Errorf("%s: a rate was reported: %+v", c.name, g)
		}
		if !strings.Contains(g.Note, c.note) {
			t.Errorf("%s: note %q does not say %q", c.name, g.Note, c.note)
		}
		if g.DaysUsed != c.used || g.ZeroDays != c.zero || g.Window != 28 {
			t.Errorf("%s: days used %d, zero %d, window %d; want %d, %d, 28", c.name, g.DaysUsed, g.ZeroDays, g.Window, c.used, c.zero)
		}
	}
	// All zero: the sums are known (0), the changes are not.
	g := Compute(make([]float64, 40), 0)
	if g.Last7d == nil || *g.Last7d != 0 || g.Prev7d == nil || *g.Prev7d != 0 || g.WoWPct != nil || g.DoDPct != nil {
		t.Errorf("all zero: %+v", g)
	}
	if !strings.Contains(g.Note, "no usage in the previous 7 days") {
		t.Errorf("all zero: note %q", g.Note)
	}
}

func TestComputeChanges(t *testing.T) {
	daily := []float64{10, 10, 10, 10, 10, 10, 10, 15, 15, 15, 15, 15, 15, 20}
	g := Compute(daily, 0)
	want := map[string]*float64{"last_7d": ptr(110.0), "prev_7d": ptr(70.0), "wow_pct": ptr(100 * (110.0/70 - 1)), "dod_pct": ptr(100.0)}
	got := map[string]*float64{"last_7d": g.Last7d, "prev_7d": g.Prev7d, "wow_pct": g.WoWPct, "dod_pct": g.DoDPct}
	for k, w := range want {
		if got[k] == nil || math.Abs(*got[k]-*w) > 1e-9 {
			t.Errorf("%s = %v, want %v", k, fmtp(got[k]), *w)
		}
	}
	// Short series: what needs more days is unknown, and said so.
	for _, c := range []struct {
		n    int
		note string
		nils []string
	}{
		{6, "the series has 6 days; the last-7-day sum needs 7", []string{"last_7d", "prev_7d", "wow_pct", "dod_pct"}},
		{7, "the series has 7 days; day over day needs 8", []string{"prev_7d", "wow_pct", "dod_pct"}},
		{10, "the series has 10 days; week over week needs 14", []string{"prev_7d", "wow_pct"}},
	} {
		g := Compute(daily[:c.n], 0)
		got := map[string]*float64{"last_7d": g.Last7d, "prev_7d": g.Prev7d, "wow_pct": g.WoWPct, "dod_pct": g.DoDPct}
		for _, k := range c.nils {
			if got[k] != nil {
				t.Errorf("%d days: %s = %v, want unknown", c.n, k, *got[k])
			}
		}
		if !strings.Contains(g.Note, c.note) {
			t.Errorf("%d days: note %q does not say %q", c.n, g.Note, c.note)
		}
	}
	// Huge values: sums that would overflow are unknown, not +Inf.
	huge := make([]float64, 14)
	for i := range huge {
		huge[i] = math.MaxFloat64
	}
	g = Compute(huge, 0)
	if g.Last7d != nil || g.WoWPct == nil || *g.WoWPct != 0 || !strings.Contains(g.Note, "last_7d is out of range") {
		t.Errorf("huge values: last_7d %v wow %v note %q", fmtp(g.Last7d), fmtp(g.WoWPct), g.Note)
	}
}

func TestComputeRateFields(t *testing.T) {
	// An exact exponential: every slope is the rate, so is the interval.
	daily := make([]float64, 28)
	for i := range daily {
		daily[i] = 3 * math.Exp(0.05*float64(i))
	}
	g := Compute(daily, 0)
	for name, c := range map[string]struct {
		got  *float64
		want float64
	}{
		"daily_rate":    {g.DailyRate, 0.05},
		"cmgr_pct":      {g.CMGRPct, 100 * (math.Exp(1.5) - 1)},
		"rate_ci_low":   {g.RateCILow, 0.05},
		"rate_ci_high":  {g.RateCIHigh, 0.05},
		"doubling_days": {g.DoublingDays, math.Ln2 / 0.05},
	} {
		if c.got == nil || math.Abs(*c.got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, fmtp(c.got), c.want)
		}
	}
	if g.HalvingDays != nil || g.DaysUsed != 28 || g.ZeroDays != 0 || g.Note != "" {
		t.Errorf("halving %v, days used %d, zero %d, note %q", fmtp(g.HalvingDays), g.DaysUsed, g.ZeroDays, g.Note)
	}
	// Zero days are skipped, not taken as a fall.
	daily[5], daily[12], daily[20] = 0, 0, 0
	g = Compute(daily, 0)
	if g.DailyRate == nil || math.Abs(*g.DailyRate-0.05) > 1e-9 || g.DaysUsed != 25 || g.ZeroDays != 3 {
		t.Errorf("with 3 zero days: rate %v, used %d, zero %d", fmtp(g.DailyRate), g.DaysUsed, g.ZeroDays)
	}
}

func TestComputeWindowAndInvalidInput(t *testing.T) {
	daily := synth{level: 10, noise: 0.2}.gen(60, 3)
	if g := Compute(daily, -1); g.Window != DefaultWindow {
		t.Errorf("window -1: used %d, want %d", g.Window, DefaultWindow)
	}
	if g := Compute(daily, 42); g.Window != 42 || g.DaysUsed != 42 || g.DailyRate == nil {
		t.Errorf("window 42: %+v", g)
	}
	if g := Compute(daily, 1000); g.Window != MaxWindow || !strings.Contains(g.Note, "window 1000 cut to 366 days") {
		t.Errorf("window 1000: window %d note %q", g.Window, g.Note)
	}
	if g := Compute(daily, 10); g.DailyRate != nil || !strings.Contains(g.Note, "window 10 is shorter than 14 days") {
		t.Errorf("window 10: rate %v note %q", fmtp(g.DailyRate), g.Note)
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -0.5} {
		d := append([]float64(nil), daily...)
		d[7] = bad
		g := Compute(d, 0)
		if g.Last7d != nil || g.DailyRate != nil || !strings.HasPrefix(g.Note, "invalid input: daily[7] is ") {
			t.Errorf("value %v: %+v", bad, g)
		}
	}
}

func TestJSONNames(t *testing.T) {
	for _, c := range []struct {
		v    any
		keys []string
	}{
		{Compute(synth{level: 1, noise: 0.1}.gen(30, 1), 0), []string{"last_7d", "prev_7d", "wow_pct", "dod_pct", "daily_rate", "cmgr_pct", "doubling_days", "halving_days", "rate_ci_low", "rate_ci_high", "days_used", "zero_days", "window"}},
		{Compute(nil, 0), []string{"note", "last_7d", "daily_rate"}},
		{ForecastPeriod(nil, 1, 3, ForecastOptions{}), []string{"method", "mase", "coverage", "to_date", "forecast_p10", "forecast_p50", "forecast_p90", "exhaustion_p50", "exhaustion_p90", "p_overspend", "note", "backtest_horizon_days", "backtest_origins"}},
	} {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range c.keys {
			if _, ok := m[k]; !ok {
				t.Errorf("%s has no %q", b, k)
			}
		}
	}
	// Unknown is null.
	b, _ := json.Marshal(Compute(nil, 0))
	if !strings.Contains(string(b), `"daily_rate":null`) {
		t.Errorf("unknown rate is not null: %s", b)
	}
}

// fmtp formats a possibly nil pointer.
func fmtp[T any](p *T) any {
	if p == nil {
		return "nil"
	}
	return *p
}
