package growth

// runRate forecasts every day with the mean of the last 7 days seen.
type runRate struct{}

func (runRate) name() string { return MethodRunRate }

func (runRate) fit(y []float64, origins []int, out []state) {
	for i, t := range origins {
		out[i] = state{level: mean7(y, t), season: flatSeason}
	}
}
