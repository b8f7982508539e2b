package growth

// seasonalNaive repeats the last week seen: day t+k is forecast with the
// last day before t on the same weekday.
type seasonalNaive struct{}

func (seasonalNaive) name() string { return MethodSeasonalNaive }

func (seasonalNaive) fit(y []float64, origins []int, out []state) {
	for i, t := range origins {
		s := state{level: 1}
		for j := t - 7; j < t; j++ {
			s.season[j%7] = y[j]
		}
		out[i] = s
	}
}
