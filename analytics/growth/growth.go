package growth

import (
	"fmt"
	"math"
	"strings"
)

// Window bounds of Compute's trend, in days.
const (
	// DefaultWindow is the trend window Compute uses when it is given 0 or
	// less: four whole weeks.
	DefaultWindow = 28
	// MinWindow is the shortest trend window: two weeks, so that each
	// weekday can be compared with itself a week later.
	MinWindow = 14
	// MaxWindow is the longest trend window; longer ones are cut to it
	// (the slope is quadratic in the window's days).
	MaxWindow = 366
	// MinTrendDays is the fewest days with usage a trend is fitted on.
	MinTrendDays = 7
)

// Growth is how fast a daily series grows. Every pointer is nil when the
// number cannot be known from the series (Note says why); non-nil ones
// are finite.
type Growth struct {
	// Last7d is the sum of the last 7 days; nil when the series has fewer.
	Last7d *float64 `json:"last_7d"`
	// Prev7d is the sum of the 7 days before those; nil when the series
	// has fewer than 14 days.
	Prev7d *float64 `json:"prev_7d"`
	// WoWPct is the week-over-week change in percent,
	// 100·(Last7d/Prev7d − 1); nil when Prev7d is unknown or 0.
	WoWPct *float64 `json:"wow_pct"`
	// DoDPct is the change of the last day against the same weekday a week
	// earlier, in percent; nil when the series has fewer than 8 days or
	// that day is 0.
	DoDPct *float64 `json:"dod_pct"`

	// Window is the trend window in days: the last Window days of the
	// series (days before the series starts count as days without usage).
	Window int `json:"window"`
	// DaysUsed is the number of the window's days with usage (value > 0):
	// the days the trend is fitted on.
	DaysUsed int `json:"days_used"`
	// ZeroDays is the number of the window's days without usage, those
	// before the series starts included; DaysUsed + ZeroDays = Window.
	ZeroDays int `json:"zero_days"`
	// DailyRate is the trend's slope b of ln(value) per day: the seasonal
	// Theil–Sen slope, the median over all pairs of days with usage on the
	// same weekday (7, 14, … days apart) of the change of ln(value) per
	// day. Days without usage are skipped. Nil when the window has fewer
	// than MinTrendDays days with usage or more than half of its days
	// without.
	DailyRate *float64 `json:"daily_rate"`
	// CMGRPct is the compound monthly growth rate in percent at DailyRate,
	// 100·(e^(30·b) − 1).
	CMGRPct *float64 `json:"cmgr_pct"`
	// RateCILow and RateCIHigh are a distribution-free 90% confidence
	// interval of DailyRate: Sen's (1968) interval from the variance of the
	// seasonal Kendall statistic (Hirsch, Slack and Smith 1982), its
	// fractional ranks rounded outwards.
	RateCILow  *float64 `json:"rate_ci_low"`
	RateCIHigh *float64 `json:"rate_ci_high"`
	// DoublingDays is ln 2 / DailyRate, only when the whole interval is
	// above 0; HalvingDays is ln 2 / −DailyRate, only when it is all below
	// 0. Both are nil when the interval contains 0 (no trend shown).
	DoublingDays *float64 `json:"doubling_days"`
	HalvingDays  *float64 `json:"halving_days"`

	// Note says why numbers are unknown, "; "-separated; empty when all
	// are known (the doubling and halving times excepted, which are nil by
	// design when the interval contains 0).
	Note string `json:"note,omitempty"`
}

// Compute measures the growth of daily, one value per calendar day, oldest
// first, ending with the last complete day. window is the trend window in
// days: 0 or less means DefaultWindow, more than MaxWindow is cut to it,
// less than MinWindow leaves the trend unknown.
//
// Values must be finite and non-negative: a series with a NaN, an
// infinity or a negative value is invalid input, for which every number
// is unknown and Note names the first bad day.
func Compute(daily []float64, window int) Growth {
	var notes []string
	if window <= 0 {
		window = DefaultWindow
	}
	if window > MaxWindow {
		notes = append(notes, fmt.Sprintf("window %d cut to %d days", window, MaxWindow))
		window = MaxWindow
	}
	g := Growth{Window: window}
	if i, ok := firstInvalid(daily); !ok {
		g.Note = invalidNote("daily", i, daily[i])
		return g
	}
	n := len(daily)
	scale := maxOf(daily)

	// Week over week and day over day, on values scaled to at most 1 so
	// that sums and ratios of huge values do not overflow on the way.
	if n < 7 {
		notes = append(notes, fmt.Sprintf("the series has %d days; the last-7-day sum needs 7", n))
	} else {
		last := sumScaled(daily[n-7:], scale)
		g.Last7d = unscaled(last, scale, &notes, "last_7d")
		if n < 14 {
			notes = append(notes, fmt.Sprintf("the series has %d days; week over week needs 14", n))
		} else {
			prev := sumScaled(daily[n-14:n-7], scale)
			g.Prev7d = unscaled(prev, scale, &notes, "prev_7d")
			if prev == 0 {
				notes = append(notes, "no usage in the previous 7 days: week over week is unknown")
			} else {
				g.WoWPct = finite(100*(last/prev-1), &notes, "wow_pct")
			}
		}
	}
	if n >= 8 {
		if base := daily[n-8]; base == 0 {
			notes = append(notes, "no usage on the same weekday a week before the last day: day over day is unknown")
		} else {
			g.DoDPct = finite(100*(daily[n-1]/scale/(base/scale)-1), &notes, "dod_pct")
		}
	} else if n >= 7 {
		notes = append(notes, fmt.Sprintf("the series has %d days; day over day needs 8", n))
	}

	g.trend(daily, &notes)
	g.Note = strings.Join(notes, "; ")
	return g
}

// trend fills the window counts and, when the window allows, the rate.
func (g *Growth) trend(daily []float64, notes *[]string) {
	w, n := g.Window, len(daily)
	before := max(w-n, 0) // window days before the series starts
	xs := make([]int, 0, min(w, n))
	ys := make([]float64, 0, min(w, n))
	for i := before; i < w; i++ {
		if v := daily[n-w+i]; v > 0 {
			xs = append(xs, i)
			ys = append(ys, math.Log(v))
		}
	}
	g.DaysUsed = len(xs)
	g.ZeroDays = w - len(xs)
	if w < MinWindow {
		*notes = append(*notes, fmt.Sprintf("window %d is shorter than %d days: no trend", w, MinWindow))
		return
	}
	short := false
	if g.DaysUsed < MinTrendDays {
		*notes = append(*notes, fmt.Sprintf("only %d days with usage in the %d-day window; need %d", g.DaysUsed, w, MinTrendDays))
		short = true
	}
	if g.ZeroDays > w/2 {
		what := fmt.Sprintf("%d of the %d days in the window have no usage", g.ZeroDays, w)
		if before > 0 {
			what += fmt.Sprintf(" (%d of them before the series starts)", before)
		}
		*notes = append(*notes, what+fmt.Sprintf("; a trend needs usage on at least %d", w-w/2))
		short = true
	}
	if short {
		return
	}
	fit, ok := seasonalSen(xs, ys)
	if !ok {
		*notes = append(*notes, "no two days with usage fall on the same weekday: no trend")
		return
	}
	b := fit.slope
	g.DailyRate = finite(b, notes, "daily_rate")
	g.CMGRPct = finite(100*math.Expm1(30*b), notes, "cmgr_pct")
	g.RateCILow = finite(fit.low, notes, "rate_ci_low")
	g.RateCIHigh = finite(fit.high, notes, "rate_ci_high")
	switch {
	case fit.low > 0:
		g.DoublingDays = finite(math.Ln2/b, notes, "doubling_days")
	case fit.high < 0:
		g.HalvingDays = finite(math.Ln2/-b, notes, "halving_days")
	}
}

// firstInvalid returns the index of the first value of xs that is NaN,
// infinite or negative, and ok = false; ok is true when there is none.
func firstInvalid(xs []float64) (i int, ok bool) {
	for i, x := range xs {
		if !(x >= 0) || math.IsInf(x, 1) {
			return i, false
		}
	}
	return 0, true
}

// invalidNote says that name[i] = v is invalid input.
func invalidNote(name string, i int, v float64) string {
	return fmt.Sprintf("invalid input: %s[%d] is %v; values must be finite and non-negative", name, i, v)
}

// maxOf is the largest of xs, or 0 when xs is empty.
func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// sumScaled is the sum of xs/scale (0 when scale is 0).
func sumScaled(xs []float64, scale float64) float64 {
	if scale == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x / scale
	}
	return s
}

// unscaled is a pointer to v·scale, or nil with a note when that
// overflows.
func unscaled(v, scale float64, notes *[]string, field string) *float64 {
	return finite(v*scale, notes, field)
}

// finite is a pointer to v, or nil with a note naming field when v is not
// finite.
func finite(v float64, notes *[]string, field string) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		*notes = append(*notes, field+" is out of range")
		return nil
	}
	return &v
}
