package growth

import (
	"math"
	"slices"
	"testing"
)

func TestLevelShifts(t *testing.T) {
	// No step: nothing found.
	nulls := []synth{
		{level: 100, rate: math.Log(1.02), weekend: 0.6, noise: 0.2},
		{level: 100, rate: math.Ln2 / 5, weekend: 0.4, noise: 0.3},
		{level: 100, rate: math.Log(1.05), weekend: 0.2, noise: 0.4},
		{level: 100, weekend: 0.3, noise: 0.15},
		{level: 100, noise: 0.3},
		{level: 100, rate: -math.Ln2 / 30, weekend: 0.5, noise: 0.2},
	}
	found, maxZ := 0, 0.0
	for ki, s := range nulls {
		for seed := range 500 {
			s.phase = seed % 7
			y := s.gen(90, uint64(77000+1000*ki+seed))
			l, d := logChanges(y)
			_, z, _ := strongestStep(l, d)
			maxZ = max(maxZ, z)
			if adj, f := levelShifts(y); len(f) > 0 {
				found++
			} else if &adj[0] != &y[0] {
				t.Errorf("no step, but a copy of y returned")
			}
		}
	}
	t.Logf("series without a step: a step found in %d of %d, the largest z %.2f (threshold %v)", found, 500*len(nulls), maxZ, float64(shiftZ))
	if found > 0 {
		t.Errorf("a step found in %d of %d series without one", found, 500*len(nulls))
	}

	// A step, ±15% noise, 1%/day growth: found on its day, its ratio
	// within 20% and unbiased.
	for _, r := range []float64{0.5, 2, 3} {
		for _, back := range []int{7, 10, 14, 21, 42} {
			exact := 0
			bias := 0.0
			for seed := range 100 {
				s := synth{level: 100, rate: math.Log(1.01), weekend: 0.5, noise: 0.15, shift: r, shiftAt: 90 - back, phase: seed % 7}
				y := s.gen(90, uint64(5000+seed))
				orig := slices.Clone(y)
				adj, f := levelShifts(y)
				if !slices.Equal(y, orig) {
					t.Fatal("levelShifts modified its input")
				}
				if len(f) != 1 {
					t.Errorf("×%v %d days ago, seed %d: found %v", r, back, seed, f)
					continue
				}
				if f[0].DaysAgo == back {
					exact++
				}
				e := math.Log(f[0].Ratio / r)
				bias += e / 100
				if math.Abs(e) > math.Log(1.2) {
					t.Errorf("×%v %d days ago, seed %d: ratio %.3f", r, back, seed, f[0].Ratio)
				}
				c := 90 - f[0].DaysAgo
				if adj[c-1] != y[c-1]*f[0].Ratio || adj[c] != y[c] {
					t.Errorf("×%v %d days ago, seed %d: the days before the step are not rescaled by its ratio", r, back, seed)
				}
			}
			if exact < 95 {
				t.Errorf("×%v %d days ago: on the right day in %d of 100 seeds", r, back, exact)
			}
			if math.Abs(bias) > 0.02 {
				t.Errorf("×%v %d days ago: mean ln(ratio found / true) %.3f", r, back, bias)
			}
		}
	}

	base := func(seed int) []float64 {
		return synth{level: 100, weekend: 0.5, noise: 0.15, phase: seed % 7}.gen(90, uint64(seed))
	}
	for seed := range 20 {
		// A two-day spike ×5 is not a step.
		y := base(seed)
		y[60] *= 5
		y[61] *= 5
		if _, f := levelShifts(y); len(f) > 0 {
			t.Errorf("spike, seed %d: found %v", seed, f)
		}
		// Growth of 5%/day from 30 days ago is a change of trend.
		y = base(seed)
		for i := 60; i < 90; i++ {
			y[i] *= math.Exp(0.05 * float64(i-60))
		}
		if _, f := levelShifts(y); len(f) > 0 {
			t.Errorf("change of trend, seed %d: found %v", seed, f)
		}
		// Usage that started 40 days ago: days without usage have no log.
		y = base(seed)
		clear(y[:50])
		if _, f := levelShifts(y); len(f) > 0 {
			t.Errorf("start 40 days ago, seed %d: found %v", seed, f)
		}
		// Two steps: ×2 50 days ago, ×0.5 20 days ago: both, latest first.
		y = base(seed)
		for i := 40; i < 70; i++ {
			y[i] *= 2
		}
		adj, f := levelShifts(y)
		if len(f) != 2 || f[0].DaysAgo != 20 || f[1].DaysAgo != 50 || math.Abs(math.Log(f[0].Ratio/0.5)) > math.Log(1.2) || math.Abs(math.Log(f[1].Ratio/2)) > math.Log(1.2) {
			t.Errorf("two steps, seed %d: found %v", seed, f)
			continue
		}
		if r := adj[45] / y[45]; math.Abs(r-f[0].Ratio) > 1e-12 {
			t.Errorf("two steps, seed %d: a day between them rescaled by %v, want %v", seed, r, f[0].Ratio)
		}
	}
}

// logChanges returns ln y and its seasonal changes as levelShifts does.
func logChanges(y []float64) (l, d []float64) {
	l, d = make([]float64, len(y)), make([]float64, len(y))
	for i, v := range y {
		l[i], d[i] = math.NaN(), math.NaN()
		if v > 0 {
			l[i] = math.Log(v)
		}
		if i >= shiftBlock {
			d[i] = l[i] - l[i-shiftBlock]
		}
	}
	return l, d
}
