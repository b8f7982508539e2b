package alerts

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
)

// TestLifecycleForecastSpentOverBudget: a group with too little history
// for a forecast that has already spent more than the budget fires, its
// value what it spent; one under the budget without a forecast is unknown
// and starts nothing.
func TestLifecycleForecastSpentOverBudget(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "rules:\n  - {name: fc, kind: forecast, by: [tenant], period: month, amount_usd: 1000}\n")
	now := ts("2026-03-10T12:00:00Z")
	for _, c := range []struct {
		soFar float64
		want  State
	}{{1200, StateFiring}, {1000, StateFiring}, {300, ""}} {
		e := evalAt(t, cfg, scriptedForecast{at: func(time.Time) (*float64, float64) { return nil, c.soFar }}, now)
		st := states(e, "fc")
		if st["tenant=acme|"] != c.want {
			t.Errorf("USD %v spent, no forecast: %v, want %q", c.soFar, st, c.want)
			continue
		}
		if c.want == StateFiring {
			a := e.Alerts()[0]
			if a.Value != c.soFar || !strings.Contains(a.Summary, "has spent USD") || !strings.Contains(a.Summary, "already over the budget") {
				t.Errorf("value %v %q: want what is spent and that it is spent", a.Value, a.Summary)
			}
		}
	}
}

// TestLifecycleForecastWithoutForecastStaysFiring: a firing forecast
// alert whose forecast turns nil keeps firing (it used to resolve) for a
// day after it last held, then resolves saying there is no forecast; a
// new period resolves it at once.
func TestLifecycleForecastWithoutForecastStaysFiring(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "rules:\n  - {name: fc, kind: forecast, by: [tenant], period: month, amount_usd: 1000}\n")
	t0 := ts("2026-03-10T12:00:00Z")
	src := scriptedForecast{at: func(at time.Time) (*float64, float64) {
		if at.After(t0) {
			return nil, 300
		}
		return usd(1500), 300
	}}
	e := NewEngine(cfg, src)
	for _, c := range []struct {
		after time.Duration
		want  State
	}{{0, StateFiring}, {time.Hour, StateFiring}, {23 * time.Hour, StateFiring}, {24 * time.Hour, StateResolved}} {
		evalOK(t, e, t0.Add(c.after))
		if st := states(e, "fc"); st["tenant=acme|"] != c.want {
			t.Fatalf("%s without a forecast: %v, want %s", c.after, st, c.want)
		}
	}
	if a := e.Alerts()[0]; !strings.Contains(a.Summary, "has no forecast") || !strings.Contains(a.Summary, "too little data") || a.Value != 300 {
		t.Errorf("resolved: value %v %q: want what is known now and why", a.Value, a.Summary)
	}
	// Firing at the end of March, no forecast on April 1: the period is
	// over.
	t1 := ts("2026-03-31T23:00:00Z")
	src = scriptedForecast{at: func(at time.Time) (*float64, float64) {
		if at.After(t1) {
			return nil, 10
		}
		return usd(1500), 900
	}}
	e = evalAt(t, cfg, src, t1, ts("2026-04-01T00:30:00Z"))
	if st := states(e, "fc"); st["tenant=acme|"] != StateResolved {
		t.Errorf("new period without a forecast: %v, want resolved", st)
	}
}

// TestLifecycleForecastYoungTenantOverBudget: through the query layer
// `alerts run` uses, a tenant three days old (no forecast: a week of
// history needed) that has spent USD 540 of a USD 400 month fires.
func TestLifecycleForecastYoungTenantOverBudget(t *testing.T) {
	t.Parallel()
	w, _ := openStore(t)
	now := ts("2026-03-20T15:00:00Z")
	today := now.Truncate(24 * time.Hour)
	pico := func(v float64) pricing.Pico { return pricing.FromPicos(int64(math.Round(v * 1e12))) }
	var cells []historyCell
	for at := today.AddDate(0, 0, -3); at.Before(now); at = at.Add(time.Hour) {
		cells = append(cells, historyCell{at: at, tenant: "young", provider: "p", model: "m", requests: 1, cost: pico(7.5)})
	}
	landHistory(t, w, cells) // 3 days and 15 hours at USD 7.5: USD 652.50
	cfg := mustConfig(t, "rules:\n  - {name: fc, kind: forecast, by: [tenant], period: month, amount_usd: 400}\n")
	q := analytics.New(w, analytics.Options{Now: func() time.Time { return now }})
	smp, err := Evaluate(context.Background(), q, cfg, cfg.Rules[0], now)
	if err != nil {
		t.Fatal(err)
	}
	if len(smp) != 1 || !smp[0].Active || math.Abs(smp[0].Value-652.5) > 1e-6 || !strings.Contains(smp[0].Summary, "no forecast") {
		t.Fatalf("samples %+v: want one, active, value USD 652.50, no forecast", smp)
	}
}
