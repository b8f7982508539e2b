package alerts

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/costpipe/costpipe/alerts/notify"
	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/analytics/growth"
)

// scriptedForecast answers Forecast with one group (tenant acme) whose
// quantiles and spend so far are chosen per evaluation time; nil p50 is
// no forecast.
type scriptedForecast struct {
	Source
	at func(at time.Time) (p50 *float64, soFar float64)
}

func (f scriptedForecast) Forecast(_ context.Context, fq analytics.ForecastQuery) ([]analytics.ForecastRow, error) {
	loc := fq.Location
	if loc == nil {
		loc = time.UTC
	}
	start, end := fq.Period.Bounds(fq.At, loc)
	p50, soFar := f.at(fq.At)
	row := analytics.ForecastRow{Group: map[analytics.Dim]string{analytics.DimTenant: "acme"}, PeriodStart: start, PeriodEnd: end, SoFar: soFar}
	if p50 != nil {
		row.Forecast = growth.Forecast{P10: p50, P50: p50, P90: p50}
	} else {
		row.Forecast = growth.Forecast{Note: "too little history: 3 days, at least 7 needed"}
	}
	return []analytics.ForecastRow{row}, nil
}

func usd(v float64) *float64 { return &v }

// TestLifecycleForecastRefiresWithNewIDs: a forecast alert that resolves
// and fires again within its month is a new episode with new IDs, so the
// second firing is delivered (it had the first one's ID, which the log
// has as delivered: it was never sent); a restart or a second replica
// reading the stored state computes the same IDs, and sends nothing again.
func TestLifecycleForecastRefiresWithNewIDs(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, `
group_wait: 0s
group_interval: 1s
rules:
  - {name: fc, kind: forecast, by: [tenant], period: month, amount_usd: 1000, notify: [r]}
receivers: [{name: r, type: log}]
`)
	src := scriptedForecast{at: func(at time.Time) (*float64, float64) {
		switch {
		case at.Before(ts("2026-03-05T00:00:00Z")):
			return usd(1200), 100 // over
		case at.Before(ts("2026-03-15T00:00:00Z")):
			return usd(900), 400 // under: resolves
		default:
			return usd(1500), 700 // over again
		}
	}}
	e := NewEngine(cfg, src)
	log := newDeliveryLog()
	var got [][]string
	for _, at := range []time.Time{ts("2026-03-03T00:00:00Z"), ts("2026-03-10T00:00:00Z"), ts("2026-03-20T00:00:00Z")} {
		evalOK(t, e, at)
		got = append(got, types(log.send(e, at)))
		if at.Equal(ts("2026-03-20T00:00:00Z")) {
			// The same evaluation on a restarted process and on a second
			// replica: nothing new.
			for _, other := range []*Engine{restarted(e, cfg, src), restarted(e, cfg, src)} {
				evalOK(t, other, at)
				if again := log.send(other, at); len(again) != 0 {
					t.Errorf("after a restart: sent %v again", types(again))
				}
			}
		}
	}
	want := [][]string{{notify.TypeFiring}, {notify.TypeResolved}, {notify.TypeFiring}}
	if !slices.EqualFunc(got, want, slices.Equal[[]string]) {
		t.Fatalf("sent %v, want %v", got, want)
	}
	if first, second := log.sent[0], log.sent[2]; first.ID == second.ID || second.Value != 1500 {
		t.Errorf("second firing %+v: want a new ID (first %s) and value 1500", second, first.ID)
	}
}

// TestLifecycleBudgetOncePerPeriodAndAmount: a budget threshold crossed
// is notified once in its period, whatever the evaluations, restarts and
// replicas; when amount_usd changes mid-period the threshold of the new
// amount is a new limit, and its crossing is delivered (it had the ID of
// the old crossing, delivered already).
func TestLifecycleBudgetOncePerPeriodAndAmount(t *testing.T) {
	t.Parallel()
	rules := func(amount string) *Config {
		return mustConfig(t, `
group_wait: 0s
group_interval: 1s
rules:
  - {name: b, kind: budget, by: [tenant], period: month, amount_usd: `+amount+`, thresholds: [50], notify: [r]}
receivers: [{name: r, type: log}]
`)
	}
	s := NewScript()
	g := map[analytics.Dim]string{analytics.DimTenant: "acme"}
	// USD 10 an hour from March 1: USD 500 at 02:00 on March 3, 1000 on
	// March 5 at 04:00.
	for at := ts("2026-03-01T00:00:00Z"); at.Before(ts("2026-03-10T00:00:00Z")); at = at.Add(time.Hour) {
		if err := s.AddSpan(g, at, time.Hour, Point{Cost: 10, Requests: 1}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := rules("1000")
	e := NewEngine(cfg, s)
	log := newDeliveryLog()
	var sent []string
	step := func(from, to time.Time) {
		for at := from; at.Before(to); at = at.Add(2 * time.Hour) {
			evalOK(t, e, at)
			for _, n := range log.send(e, at) {
				sent = append(sent, at.Format("01-02T15")+" "+n.Type)
			}
			// A second replica evaluating the same instant from the
			// shared state sends nothing more.
			other := restarted(e, cfg, s)
			evalOK(t, other, at)
			for _, n := range log.send(other, at) {
				t.Errorf("%s: a second replica sent %s %s", at.Format(time.RFC3339), n.Type, n.ID)
			}
		}
	}
	step(ts("2026-03-02T00:00:00Z"), ts("2026-03-04T00:00:00Z"))
	e = restarted(e, cfg, s) // a restart with the same file
	step(ts("2026-03-04T00:00:00Z"), ts("2026-03-04T06:00:00Z"))
	// The budget is raised to USD 2000 (its 50%: USD 1000): a restart with
	// the new file. USD 700 is under it: resolved; at USD 1000 it fires.
	cfg = rules("2000")
	e = restarted(e, cfg, s)
	step(ts("2026-03-04T06:00:00Z"), ts("2026-03-05T10:00:00Z"))
	want := []string{"03-03T02 alert.firing", "03-04T06 alert.resolved", "03-05T04 alert.firing"}
	if !slices.Equal(sent, want) {
		t.Fatalf("sent %v, want %v", sent, want)
	}
	if first, last := log.sent[0], log.sent[2]; first.ID == last.ID || last.Threshold != 1000 {
		t.Errorf("the crossing of the new amount: %+v, want a new ID (first %s) and threshold 1000", last, first.ID)
	}
}

// TestLifecycleIDsFromTheStoredState: the IDs of a re-fired forecast and
// of a budget come from what the state table stores (ActiveAt, the
// period, the limit): an engine that loads the saved state computes the
// same IDs as the one that saved it.
func TestLifecycleIDsFromTheStoredState(t *testing.T) {
	t.Parallel()
	_, st := openStore(t)
	ctx := context.Background()
	cfg := mustConfig(t, `
group_wait: 0s
rules:
  - {name: fc, kind: forecast, by: [tenant], period: month, amount_usd: 1000, notify: [r]}
  - {name: b, kind: budget, by: [tenant], period: month, amount_usd: 200, thresholds: [50, 60], notify: [r]}
receivers: [{name: r, type: log}]
`)
	fc := scriptedForecast{at: func(at time.Time) (*float64, float64) {
		if at.Before(ts("2026-03-10T00:00:00Z")) || !at.Before(ts("2026-03-15T00:00:00Z")) {
			return usd(1200), 300
		}
		return usd(900), 300
	}}
	s := NewScript()
	if err := s.AddSpan(map[analytics.Dim]string{analytics.DimTenant: "acme"}, ts("2026-03-02T00:00:00Z"), time.Hour, Point{Cost: 130, Requests: 1}); err != nil {
		t.Fatal(err)
	}
	both := mixedSource{Source: s, forecast: fc}
	e := NewEngine(cfg, both)
	for _, at := range []time.Time{ts("2026-03-03T00:00:17Z"), ts("2026-03-12T00:00:00Z"), ts("2026-03-20T00:00:31Z")} {
		evalOK(t, e, at)
	}
	now := ts("2026-03-20T00:00:31Z")
	ids := func(e *Engine) []string {
		var out []string
		for _, o := range e.Due(now, nil) {
			out = append(out, o.Notification.Rule+" "+o.Notification.Type+" "+o.Notification.ID)
		}
		slices.Sort(out)
		return out
	}
	want := ids(e)
	if len(want) != 3 { // the forecast's second firing, the budget's two thresholds
		t.Fatalf("due %v, want 3", want)
	}
	if err := st.SaveAlerts(ctx, "A", e.Alerts()); err != nil {
		t.Fatal(err)
	}
	loaded, err := st.LoadAlerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other := NewEngine(cfg, both)
	other.Restore(loaded)
	if got := ids(other); !slices.Equal(got, want) {
		t.Errorf("after loading the stored state: %v, want %v", got, want)
	}
}

// mixedSource answers Forecast from forecast, the rest from Source.
type mixedSource struct {
	Source
	forecast Source
}

func (m mixedSource) Forecast(ctx context.Context, fq analytics.ForecastQuery) ([]analytics.ForecastRow, error) {
	return m.forecast.Forecast(ctx, fq)
}
