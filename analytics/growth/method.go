package growth

// The forecasting methods, by the name Forecast.Method reports.
const (
	// MethodSeasonalNaive forecasts each day with the same weekday of the
	// last week seen.
	MethodSeasonalNaive = "seasonal_naive"
	// MethodRunRate forecasts every day with the mean of the last 7 days
	// seen.
	MethodRunRate = "run_rate"
	// MethodHoltWinters is damped-trend Holt–Winters with a multiplicative
	// weekly season (holtwinters.go).
	MethodHoltWinters = "holt_winters"
)

// A method forecasts a daily series from its past. Each lives in its own
// file; methods lists them from the simplest on.
type method interface {
	// name is the method's Method* name.
	name() string
	// fit sets out[i] to what the method knows after seeing y[:origins[i]]
	// only. origins are ascending, each in [minOrigin, len(y)].
	fit(y []float64, origins []int, out []state)
}

// methods are the candidates of the backtest, simplest first: a later one
// is chosen only when it beats every earlier one by more than tieMargin.
var methods = []method{seasonalNaive{}, runRate{}, holtWinters{}}

// state is a fitted method at an origin t: the forecast of day t+k (k ≥ 0)
// is (level + trend·(φ + φ² + … + φ^(k+1)))·season[(t+k) mod 7], never
// below 0. Seasonal naive keeps last week in season with level 1; run rate
// has a flat season of 1s.
type state struct {
	level, trend, phi float64
	season            [7]float64
}

// path writes the forecasts of days t, t+1, …, t+len(dst)−1 to dst.
func (s *state) path(t int, dst []float64) {
	damp, cum := 1.0, 0.0
	for k := range dst {
		damp *= s.phi
		cum += damp
		dst[k] = max((s.level+s.trend*cum)*s.season[(t+k)%7], 0)
	}
}

// flatSeason is a season without a weekly pattern.
var flatSeason = [7]float64{1, 1, 1, 1, 1, 1, 1}

// mean7 is the mean of the 7 days before t (t ≥ 7).
func mean7(y []float64, t int) float64 {
	s := 0.0
	for _, v := range y[t-7 : t] {
		s += v
	}
	return s / 7
}
