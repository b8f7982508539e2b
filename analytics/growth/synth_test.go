package growth

import (
	"math"
	"math/rand/v2"
)

// synth describes a synthetic daily series with a known truth: a level
// that moves at rate per day (ln units), optionally multiplied by shift
// from day shiftAt on, a weekly pattern (weekend days at weekend× the
// weekday level; 1 means none) and multiplicative noise uniform in
// [1−noise, 1+noise].
type synth struct {
	level   float64 // value of a weekday at day 0 before noise
	rate    float64 // ln growth per day
	weekend float64 // weekend factor; 0 or 1 means no weekly pattern
	noise   float64 // half-width of the multiplicative noise
	shiftAt int     // day from which the level is multiplied by shift; ignored when shift is 0
	shift   float64
	phase   int // weekday of day 0 (days phase+t ≡ 5, 6 mod 7 are the weekend)
}

// gen returns n days of s drawn with seed.
func (s synth) gen(n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([]float64, n)
	for t := range out {
		v := s.level * math.Exp(s.rate*float64(t))
		if s.shift != 0 && t >= s.shiftAt {
			v *= s.shift
		}
		if s.weekend != 0 && s.weekend != 1 {
			if wd := (s.phase + t) % 7; wd == 5 || wd == 6 {
				v *= s.weekend
			}
		}
		v *= 1 + s.noise*(2*r.Float64()-1)
		out[t] = v
	}
	return out
}
