package growth

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// The synthetic series of the accuracy tests, 90 days of history (over
// 12 weeks). shiftBack is how many days before the end of the history
// the level shift happens (0: none).
var forecastCases = []struct {
	name      string
	s         synth
	shiftBack int
}{
	{"steady growth +2%/day, ±20% noise, weekends at 60%", synth{level: 100, rate: math.Log(1.02), weekend: 0.6, noise: 0.2}, 0},
	{"weekly seasonal: flat, weekends at 30%, ±15% noise", synth{level: 100, weekend: 0.3, noise: 0.15}, 0},
	{"level ×2 three weeks ago, weekends at 50%, ±15% noise", synth{level: 100, weekend: 0.5, noise: 0.15, shift: 2}, 21},
	{"flat, ±30% noise, no weekly pattern", synth{level: 100, noise: 0.3}, 0},
	{"shrinking, halving every 30 days, ±20% noise, weekends at 50%", synth{level: 100, rate: -math.Ln2 / 30, weekend: 0.5, noise: 0.2}, 0},
}

const historyDays = 90

func TestForecastBacktestAccuracy(t *testing.T) {
	const seeds = 20
	t.Logf("| series (90 days of history, remaining 14 days, %d seeds) | methods chosen | MASE chosen (mean) | MASE seasonal naive (mean) | backtest coverage, all origins pooled | per seed: min / median, seeds ≥ 0.7 |", seeds)
	t.Logf("|---|---|---|---|---|---|")
	for ci, c := range forecastCases {
		chosen := map[string]int{}
		var mase, naive float64
		var covs []float64
		in, all := 0, 0
		for seed := range seeds {
			s := c.s
			s.phase = seed % 7
			if c.shiftBack > 0 {
				s.shiftAt = historyDays - c.shiftBack
			}
			y := s.gen(historyDays, uint64(1000*ci+seed))
			f, p := forecastPeriod(y, 0, 14, ForecastOptions{})
			if f.MASE == nil || f.Coverage == nil || p == nil {
				t.Fatalf("%s seed %d: mase %v coverage %v: %s", c.name, seed, fmtp(f.MASE), fmtp(f.Coverage), f.Note)
			}
			// The level shift is found and adjusted for; nothing else is.
			switch ls := f.LevelShift; {
			case c.shiftBack == 0 && ls != nil:
				t.Errorf("%s seed %d: a level shift %+v", c.name, seed, *ls)
			case c.shiftBack > 0 && (ls == nil || ls.DaysAgo != c.shiftBack || math.Abs(math.Log(ls.Ratio/c.s.shift)) > math.Log(1.2)):
				t.Errorf("%s seed %d: level shift %v, want ×%v %d days ago", c.name, seed, fmtp(ls), c.s.shift, c.shiftBack)
			}
			chosen[f.Method]++
			naiveMASE := p.mae[0] / p.naiveQ
			if *f.MASE > naiveMASE+1e-12 {
				t.Errorf("%s seed %d: chosen %s MASE %.3f > seasonal naive's %.3f", c.name, seed, f.Method, *f.MASE, naiveMASE)
			}
			mase += *f.MASE
			naive += naiveMASE
			covs = append(covs, *f.Coverage)
			for _, o := range p.origins {
				all++
				if o.in {
					in++
				}
			}
		}
		slices.Sort(covs)
		ok := 0
		for _, v := range covs {
			if v >= 0.7 {
				ok++
			}
		}
		pooled := float64(in) / float64(all)
		t.Logf("| %s | %s | %.3f | %.3f | %.2f of %d | %.2f / %.2f, %d of %d |", c.name, methodCounts(chosen), mase/seeds, naive/seeds, pooled, all, covs[0], covs[len(covs)/2], ok, seeds)
		// With a level shift the backtest runs on the history adjusted
		// for it (levelShifts); TestForecastOutOfSample checks the
		// interval against days that were not in the history.
		if pooled < 0.7 {
			t.Errorf("%s: P10–P90 covered %.2f of backtest origins; want ≥ 0.7", c.name, pooled)
		}
	}
}

// TestForecastOutOfSample checks the interval where the backtest cannot:
// on the realised total of the 14 days after the history, which neither
// the method choice, the level-shift adjustment nor the interval saw.
// Each of the accuracy tests' series with 200 seeds, and a grid of level
// shifts (×0.5, ×2, ×3, ±15% noise, 3 to 60 days before the end of the
// history, 100 seeds each).
func TestForecastOutOfSample(t *testing.T) {
	// covers forecasts 14 days after hist days of y and reports whether
	// the realised total fell in the interval, and its width relative to
	// the total.
	covers := func(y []float64, hist int) (in bool, width float64, f Forecast) {
		f = ForecastPeriod(y[:hist], 0, 14, ForecastOptions{})
		if f.P10 == nil || f.P90 == nil {
			t.Fatalf("no interval: %s", f.Note)
		}
		total := sum(y[hist : hist+14])
		return *f.P10 <= total && total <= *f.P90, (*f.P90 - *f.P10) / total, f
	}
	t.Logf("| series (90 days of history, the next 14 days) | seeds | P10–P90 covers the realised total | mean width / total |")
	t.Logf("|---|---|---|---|")
	for ci, c := range forecastCases {
		const seeds = 200
		in, width := 0, 0.0
		for seed := range seeds {
			s := c.s
			s.phase = seed % 7
			if c.shiftBack > 0 {
				s.shiftAt = historyDays - c.shiftBack
			}
			ok, w, _ := covers(s.gen(historyDays+14, uint64(1000*ci+seed+700)), historyDays)
			if ok {
				in++
			}
			width += w / seeds
		}
		got := float64(in) / seeds
		t.Logf("| %s | %d | %.2f | %.1f%% |", c.name, seeds, got, 100*width)
		if got < 0.7 {
			t.Errorf("%s: P10–P90 covered %.2f of %d realised totals; want ≥ 0.7", c.name, got, seeds)
		}
	}

	t.Logf("| level shift, weekends at 50%%, ±15%% noise, 100 seeds | shift found | P10–P90 covers the realised total | mean width / total |")
	t.Logf("|---|---|---|---|")
	in, n := 0, 0
	for _, back := range []int{3, 7, 10, 14, 21, 28, 42, 60} {
		for ri, r := range []float64{0.5, 2, 3} {
			const seeds = 100
			cin, found, width := 0, 0, 0.0
			for seed := range seeds {
				s := synth{level: 100, weekend: 0.5, noise: 0.15, shift: r, shiftAt: historyDays - back, phase: seed % 7}
				ok, w, f := covers(s.gen(historyDays+14, uint64(9000+1000*ri+seed)), historyDays)
				if ok {
					cin++
				}
				if f.LevelShift != nil {
					found++
				}
				width += w / seeds
			}
			got := float64(cin) / seeds
			t.Logf("| ×%v %d days ago | %d | %.2f | %.1f%% |", r, back, found, got, 100*width)
			if back < shiftBlock {
				continue // too recent to be told from noise: not claimed
			}
			in += cin
			n += seeds
			if got < 0.6 {
				t.Errorf("×%v %d days ago: P10–P90 covered %.2f of %d realised totals; want ≥ 0.6 in every cell", r, back, got, seeds)
			}
		}
	}
	t.Logf("| shifts 7–60 days ago, pooled | | **%.2f** | |", float64(in)/float64(n))
	if got := float64(in) / float64(n); got < 0.7 {
		t.Errorf("shifts 7–60 days ago: P10–P90 covered %.2f of %d realised totals; want ≥ 0.7", got, n)
	}
}

// methodCounts formats how often each method was chosen.
func methodCounts(m map[string]int) string {
	var parts []string
	for _, name := range []string{MethodSeasonalNaive, MethodRunRate, MethodHoltWinters} {
		if m[name] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", name, m[name]))
		}
	}
	return strings.Join(parts, ", ")
}

// TestForecastMonths simulates whole months after 90 days of history and
// forecasts each month's total from several of its days, as a caller
// would: toDate the month's complete days, remainingDays the rest of the
// month, today included.
func TestForecastMonths(t *testing.T) {
	const seeds = 20
	days := []int{2, 5, 10, 15, 20, 25}
	t.Logf("| series (30-day months, %d seeds) | forecast on day | P10–P90 covers the month | mean width / total | P50 abs. error | seasonal naive abs. error | run rate abs. error |", seeds)
	t.Logf("|---|---|---|---|---|---|---|")
	for ci, c := range forecastCases {
		var in, n int
		for _, d := range days {
			var cin int
			var width, e50, eNaive, eRR float64
			for seed := range seeds {
				s := c.s
				s.phase = seed % 7
				hist := historyDays + d - 1 // days before today
				if c.shiftBack > 0 {
					s.shiftAt = hist - c.shiftBack
				}
				y := s.gen(historyDays+30, uint64(1000*ci+seed+500))
				toDate := sum(y[historyDays:hist])
				total := sum(y[historyDays:])
				rem := 30 - d + 1
				f := ForecastPeriod(y[:hist], toDate, rem, ForecastOptions{})
				if f.P10 == nil || f.P50 == nil || f.P90 == nil {
					t.Fatalf("%s day %d seed %d: no interval: %s", c.name, d, seed, f.Note)
				}
				if !(*f.P10 <= *f.P50 && *f.P50 <= *f.P90) {
					t.Errorf("%s day %d seed %d: P10 %v P50 %v P90 %v out of order", c.name, d, seed, *f.P10, *f.P50, *f.P90)
				}
				if *f.P10 <= total && total <= *f.P90 {
					cin++
				}
				width += (*f.P90 - *f.P10) / total
				e50 += math.Abs(*f.P50-total) / total
				naive, rr := 0.0, sum(y[hist-7:hist])/7*float64(rem)
				for k := range rem {
					naive += y[hist-7+k%7]
				}
				eNaive += math.Abs(toDate+naive-total) / total
				eRR += math.Abs(toDate+rr-total) / total
			}
			in += cin
			n += seeds
			t.Logf("| %s | %d | %.2f | %.1f%% | %.1f%% | %.1f%% | %.1f%% |", c.name, d, float64(cin)/seeds, 100*width/seeds, 100*e50/seeds, 100*eNaive/seeds, 100*eRR/seeds)
		}
		t.Logf("| %s | all | **%.2f** | | | | |", c.name, float64(in)/float64(n))
		if got := float64(in) / float64(n); got < 0.7 {
			t.Errorf("%s: P10–P90 covered %.2f of the month totals; want ≥ 0.7", c.name, got)
		}
	}
}

func sum(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}

func TestForecastBudget(t *testing.T) {
	// A steady 100 a day: every method is exact, the interval is a point.
	hist := make([]float64, 60)
	for i := range hist {
		hist[i] = 100
	}
	for _, c := range []struct {
		budget    float64
		p50, p90  *int
		overspend float64
	}{
		{2550, ptr(15), ptr(15), 1},   // 1000 + 100·16 ≥ 2550 at the end of day 16: offset 15
		{2500, ptr(14), ptr(14), 1},   // reached exactly at the end of day 15
		{3000, ptr(19), ptr(19), 0},   // reached on the last day, not exceeded
		{3500, nil, nil, 0},           // never
		{900, ptr(0), ptr(0), 1},      // already exceeded
		{1000, ptr(0), ptr(0), 1},     // already reached, and more will be spent
		{0, ptr(0), ptr(0), 1},        // a zero budget
		{2999.5, ptr(19), ptr(19), 1}, // crossed on the last day
	} {
		f := ForecastPeriod(hist, 1000, 20, ForecastOptions{Budget: &c.budget})
		if f.P50 == nil || *f.P50 != 3000 || *f.P10 != 3000 || *f.P90 != 3000 {
			t.Fatalf("budget %v: P10 %v P50 %v P90 %v, want 3000: %s", c.budget, fmtp(f.P10), fmtp(f.P50), fmtp(f.P90), f.Note)
		}
		if !eqIntPtr(f.ExhaustionP50, c.p50) || !eqIntPtr(f.ExhaustionP90, c.p90) {
			t.Errorf("budget %v: exhaustion p50 %v p90 %v, want %v %v", c.budget, fmtp(f.ExhaustionP50), fmtp(f.ExhaustionP90), fmtp(c.p50), fmtp(c.p90))
		}
		if f.POverspend == nil || *f.POverspend != c.overspend {
			t.Errorf("budget %v: p_overspend %v, want %v", c.budget, fmtp(f.POverspend), c.overspend)
		}
	}

	// A noisy growing series: the P50 path crosses where the P50 path's
	// own cumulative totals say, the P90 path no later, and the
	// probability of overspending is consistent with the quantiles.
	y := synth{level: 100, rate: math.Log(1.01), weekend: 0.5, noise: 0.1}.gen(90, 7)
	base := ForecastPeriod(y, 2000, 20, ForecastOptions{})
	if base.P10 == nil {
		t.Fatalf("no interval: %s", base.Note)
	}
	mid := (2000 + *base.P50) / 2 // crossed around the middle of the period
	f, p := forecastPeriod(y, 2000, 20, ForecastOptions{Budget: &mid})
	if f.ExhaustionP50 == nil || f.ExhaustionP90 == nil || *f.ExhaustionP90 > *f.ExhaustionP50 {
		t.Fatalf("exhaustion p50 %v p90 %v", fmtp(f.ExhaustionP50), fmtp(f.ExhaustionP90))
	}
	k := *f.ExhaustionP50 + 1 // days to the end of the crossing day
	if p.total(k, 0.5) < mid || (k > 1 && p.total(k-1, 0.5) >= mid) {
		t.Errorf("p50 crosses %v on day offset %d, but the path is %v then and %v the day before", mid, k-1, p.total(k, 0.5), p.total(k-1, 0.5))
	}
	if k < 8 || k > 13 {
		t.Errorf("half the remaining spend crossed on day offset %d of 20; want about 10", k-1)
	}
	t.Logf("budget halfway to P50 %.0f of a 20-day remainder: exhausted at offset %d (P50 path), %d (P90 path)", *base.P50, *f.ExhaustionP50, *f.ExhaustionP90)
	for _, c := range []struct {
		budget *float64
		want   float64
	}{{base.P50, 0.5}, {base.P90, 0.1}, {base.P10, 0.9}} {
		f := ForecastPeriod(y, 2000, 20, ForecastOptions{Budget: c.budget})
		if f.POverspend == nil || math.Abs(*f.POverspend-c.want) > 1e-9 {
			t.Errorf("budget %v: p_overspend %v, want %v", *c.budget, fmtp(f.POverspend), c.want)
		}
	}
}

func eqIntPtr(a, b *int) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func TestForecastShortHistory(t *testing.T) {
	y := synth{level: 10, noise: 0.2}.gen(40, 1)
	budget := 1e9
	for _, c := range []struct {
		n      int
		method string
		note   string
	}{
		{0, "", "only 0 days of history; a forecast needs at least 7"},
		{6, "", "only 6 days of history; a forecast needs at least 7"},
		{20, MethodRunRate, "only 20 days of history; choosing a method and an interval needs 35: run rate without interval"},
		{34, MethodRunRate, "only 34 days of history; choosing a method and an interval needs 35"},
	} {
		hist := y[:c.n]
		f := ForecastPeriod(hist, 50, 10, ForecastOptions{Budget: &budget})
		if f.Method != c.method || !strings.Contains(f.Note, c.note) {
			t.Errorf("%d days: method %q note %q; want %q, %q", c.n, f.Method, f.Note, c.method, c.note)
		}
		if f.P10 != nil || f.P90 != nil || f.MASE != nil || f.Coverage != nil || f.POverspend != nil || f.ExhaustionP90 != nil {
			t.Errorf("%d days: invented an interval: %+v", c.n, f)
		}
		if f.ToDate == nil || *f.ToDate != 50 {
			t.Errorf("%d days: to_date %v", c.n, fmtp(f.ToDate))
		}
		switch {
		case c.method == "" && f.P50 != nil:
			t.Errorf("%d days: P50 %v without a forecast", c.n, *f.P50)
		case c.method == MethodRunRate:
			want := 50 + sum(hist[c.n-7:])/7*10
			if f.P50 == nil || math.Abs(*f.P50-want) > 1e-9 {
				t.Errorf("%d days: P50 %v, want the run rate's %v", c.n, fmtp(f.P50), want)
			}
		}
	}
	// A short period needs less history: 28 + min(remaining, 7) days.
	if f := ForecastPeriod(y[:31], 0, 3, ForecastOptions{}); f.Method == MethodRunRate && f.P10 == nil {
		t.Errorf("31 days for 3 remaining: no backtest: %s", f.Note)
	}
}

func TestForecastEdges(t *testing.T) {
	y := synth{level: 10, noise: 0.2, weekend: 0.5}.gen(60, 2)
	// The period is over.
	b := 5.0
	f := ForecastPeriod(y, 7, 0, ForecastOptions{Budget: &b})
	if *f.P10 != 7 || *f.P50 != 7 || *f.P90 != 7 || f.POverspend == nil || *f.POverspend != 1 || f.ExhaustionP50 != nil {
		t.Errorf("period over: %+v", f)
	}
	// Invalid input.
	nan, neg := math.NaN(), -1.0
	for _, c := range []struct {
		hist   []float64
		toDate float64
		rem    int
		opts   ForecastOptions
		note   string
	}{
		{[]float64{1, math.NaN()}, 0, 3, ForecastOptions{}, "invalid input: history[1] is NaN"},
		{[]float64{1, -2}, 0, 3, ForecastOptions{}, "invalid input: history[1] is -2"},
		{y, math.Inf(1), 3, ForecastOptions{}, "invalid input: to_date is +Inf"},
		{y, 0, -1, ForecastOptions{}, "invalid input: remaining days -1 must be in [0, 366]"},
		{y, 0, 400, ForecastOptions{}, "invalid input: remaining days 400"},
		{y, 0, 3, ForecastOptions{Budget: &nan}, "invalid input: cannot use budget NaN"},
		{y, 0, 3, ForecastOptions{Budget: &neg}, "invalid input: cannot use budget -1"},
		{y, 0, 3, ForecastOptions{SpentToday: -1}, "invalid input: cannot use today's spend -1"},
	} {
		f := ForecastPeriod(c.hist, c.toDate, c.rem, c.opts)
		if !strings.HasPrefix(f.Note, c.note) || f.P50 != nil || f.Method != "" {
			t.Errorf("note %q, want prefix %q; P50 %v", f.Note, c.note, fmtp(f.P50))
		}
	}
	// A long period: the interval beyond the backtest's 14 days widens.
	f14 := ForecastPeriod(y, 0, 14, ForecastOptions{})
	f60 := ForecastPeriod(y, 0, 60, ForecastOptions{})
	if f60.P10 == nil || f14.P10 == nil || *f60.P90-*f60.P10 <= *f14.P90-*f14.P10 {
		t.Errorf("60-day interval %v–%v not wider than 14-day %v–%v", fmtp(f60.P10), fmtp(f60.P90), fmtp(f14.P10), fmtp(f14.P90))
	}
	// Longer history than MaxHistory is cut, not refused.
	long := synth{level: 10, noise: 0.2}.gen(400, 3)
	if f := ForecastPeriod(long, 0, 10, ForecastOptions{}); f.P50 == nil || f.BacktestOrigins != maxOrigins {
		t.Errorf("400 days: %+v", f)
	}
	// Last week without usage: a forecast of 0 but no interval.
	quiet := append(append([]float64(nil), y...), 0, 0, 0, 0, 0, 0, 0)
	if f := ForecastPeriod(quiet, 3, 10, ForecastOptions{}); f.P10 != nil || !strings.Contains(f.Note, "no usage in the last 7 days") {
		t.Errorf("quiet last week: %+v", f)
	}
	// Nothing ever: the total so far, no interval, and a note that says so.
	if f := ForecastPeriod(make([]float64, 60), 2, 10, ForecastOptions{}); f.P50 == nil || *f.P50 != 2 || f.P10 != nil || f.MASE != nil ||
		f.Note != "nothing in the 60 days of history: the forecast is the total so far, without interval" {
		t.Errorf("all-zero history: P50 %v P10 %v MASE %v note %q", fmtp(f.P50), fmtp(f.P10), fmtp(f.MASE), f.Note)
	}
	// Scale does not matter.
	big := make([]float64, len(y))
	for i, v := range y {
		big[i] = v * 1e12
	}
	a, bb := ForecastPeriod(y, 1, 10, ForecastOptions{}), ForecastPeriod(big, 1e12, 10, ForecastOptions{})
	if a.Method != bb.Method || math.Abs(*a.P50*1e12-*bb.P50) / *bb.P50 > 1e-9 {
		t.Errorf("scaled ×1e12: %s %v vs %s %v", a.Method, *a.P50, bb.Method, *bb.P50)
	}
}

// TestForecastFloorIsWhatIsSpent: today's spend so far (SpentToday, left
// out of toDate since today is forecast whole) is the floor of every
// total and counts for the budget: a p10 below the money already spent
// was printed when today's spend beat the low path's forecast of it.
func TestForecastFloorIsWhatIsSpent(t *testing.T) {
	y := synth{level: 10, noise: 0.3, weekend: 0.5}.gen(60, 3)
	for _, spent := range []float64{0, 5, 200} {
		budget := 150.0
		f := ForecastPeriod(y, 100, 3, ForecastOptions{Budget: &budget, SpentToday: spent})
		floor := 100 + spent
		for name, v := range map[string]*float64{"p10": f.P10, "p50": f.P50, "p90": f.P90} {
			if v == nil || *v < floor {
				t.Errorf("spent today %v: %s = %v, below the %v spent", spent, name, fmtp(v), floor)
			}
		}
		if spent == 200 && (f.POverspend == nil || *f.POverspend != 1 || f.ExhaustionP50 == nil || *f.ExhaustionP50 != 0) {
			t.Errorf("spent today 200 of a 150 budget: p_overspend %v, exhaustion %v; want 1 and today", fmtp(f.POverspend), f.ExhaustionP50)
		}
	}
	// Without an interval (a short history) the p50 is floored too.
	f := ForecastPeriod([]float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 10, 2, ForecastOptions{SpentToday: 30})
	if f.P50 == nil || *f.P50 < 40 {
		t.Errorf("short history: p50 %v, want at least 40", fmtp(f.P50))
	}
}

// TestForecastDaysAfterABurstStillCount: a today that has spent far more
// than its forecast does not stand for the days after it. The total was
// floored at what was spent alone: P10 = P50 = P90 = the spend so far, and
// a budget 5 above it was not at risk with two more days of about 10 each
// to come.
func TestForecastDaysAfterABurstStillCount(t *testing.T) {
	y := synth{level: 10, noise: 0.3, weekend: 0.5}.gen(60, 3)
	budget := 305.0
	f := ForecastPeriod(y, 100, 3, ForecastOptions{Budget: &budget, SpentToday: 200})
	if f.P10 == nil || f.P50 == nil || f.P90 == nil {
		t.Fatalf("no interval: p10 %v p50 %v p90 %v (%s)", fmtp(f.P10), fmtp(f.P50), fmtp(f.P90), f.Note)
	}
	if !(300 < *f.P10 && *f.P10 < *f.P50 && *f.P50 < *f.P90) {
		t.Errorf("p10 %v p50 %v p90 %v: want a band above the 300 spent", *f.P10, *f.P50, *f.P90)
	}
	// The two days after today, as forecast without the burst.
	base := ForecastPeriod(y, 100, 3, ForecastOptions{})
	later := (*base.P50 - 100) * 2 / 3
	if *f.P50 < 300+later/2 {
		t.Errorf("p50 %v: want about 300 + %.1f for the two days after today", *f.P50, later)
	}
	if f.POverspend == nil || *f.POverspend < 0.5 {
		t.Errorf("p_overspend %v of a budget 5 above the spend with two days to come: want most likely", fmtp(f.POverspend))
	}
	if f.ExhaustionP50 == nil {
		t.Error("exhaustion p50 unknown: want a day of the period")
	}
	// Without an interval (a short history): the next day's 1 still counts.
	s := ForecastPeriod([]float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 10, 2, ForecastOptions{SpentToday: 30})
	if s.P50 == nil || *s.P50 < 41 {
		t.Errorf("short history: p50 %v, want at least 41", fmtp(s.P50))
	}
}
