package alerts

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

// anomalyRule is the reviewer's rule: a tenant's hour against the same
// hour of the last 4 weeks.
const anomalyRule = `
group_wait: 0s
rules:
  - {name: spend-anomaly, kind: anomaly, by: [tenant], window: 1h, z: 3.5, min_usd: 20, min_pct: 50}
`

// anomalySample evaluates the rule of cfg at at and returns its one sample.
func anomalySample(t *testing.T, cfg *Config, src Source, at time.Time) Sample {
	t.Helper()
	smp, err := Evaluate(context.Background(), src, cfg, cfg.Rules[0], at)
	if err != nil {
		t.Fatal(err)
	}
	if len(smp) != 1 {
		t.Fatalf("at %s: %d samples %+v", at, len(smp), smp)
	}
	return smp[0]
}

// A tenant onboarded on Thursday March 12 spends USD 30 an hour, flat. Its
// weeks before that are not weeks of no spend: until two of its weeks are
// known at the time of the week it is Unknown (it neither fires nor
// resolves), then compared with them, and a real spike fires.
func TestAnomalyNewGroupWaitsForTwoWeeks(t *testing.T) {
	t.Parallel()
	spike := ts("2026-03-27T11:00:00Z")
	s := NewScript()
	for at := ts("2026-03-12T00:00:00Z"); at.Before(ts("2026-03-28T00:00:00Z")); at = at.Add(time.Hour) {
		c := 30.0
		if at.Equal(spike) {
			c = 150
		}
		s.AddSpan(map[analytics.Dim]string{analytics.DimTenant: "newco", analytics.DimModel: "m"}, at, time.Hour, Point{Cost: c, Requests: 10})
	}
	cfg := mustConfig(t, anomalyRule)
	// The week of March 12 starts on its first day: it may have begun
	// after the span of that day, so it counts from the week after.
	for _, at := range []time.Time{ts("2026-03-12T12:00:00Z"), ts("2026-03-13T12:00:00Z"), ts("2026-03-20T12:00:00Z"), ts("2026-03-26T12:00:00Z")} {
		smp := anomalySample(t, cfg, s, at)
		if !smp.Unknown || smp.Active || !strings.Contains(smp.Summary, "no baseline yet") {
			t.Errorf("at %s: %+v", at.Format(time.RFC3339), smp)
		}
		if e := evalAt(t, cfg, s, at); len(e.Alerts()) != 0 {
			t.Errorf("at %s: %s", at.Format(time.RFC3339), e.Alerts()[0].Summary)
		}
	}
	flat := anomalySample(t, cfg, s, ts("2026-03-27T10:00:00Z"))
	if flat.Unknown || flat.Active || !strings.Contains(flat.Summary, "median of USD 30.00 for this time of the week over 2 weeks") {
		t.Errorf("flat after two weeks: %+v", flat)
	}
	e := evalAt(t, cfg, s, spike.Add(time.Hour))
	if as := e.Alerts(); len(as) != 1 || as[0].State != StateFiring || as[0].Value != 150 {
		t.Errorf("the spike after two weeks: %v", states(e, "spend-anomaly"))
	}
}

// minuteRetention is a Source whose minute rollups begin at since (the
// ones before were dropped by retention): a series at minute steps reads
// no usage before it; hours and days are all there.
type minuteRetention struct {
	Source
	since time.Time
}

func (m *minuteRetention) Series(ctx context.Context, sq analytics.SeriesQuery) (analytics.SeriesResult, error) {
	res, err := m.Source.Series(ctx, sq)
	if err != nil || sq.Step != time.Minute {
		return res, err
	}
	kept := res.Series[:0]
	for _, gs := range res.Series {
		used := false
		for i := range gs.Values {
			if res.Steps[i].Before(m.since) {
				gs.Values[i] = 0
			}
			used = used || gs.Values[i] != 0
		}
		if used {
			kept = append(kept, gs)
		}
	}
	res.Series = kept
	return res, nil
}

// A tenant of long standing, flat, whose minute rollups are kept for less
// than the baseline's 4 weeks: the weeks retention dropped are left out,
// not read as weeks of no spend (with one week left it paged on flat
// spend: a median of 0); with one left it is Unknown, and a firing alert
// stays firing until it is known again.
func TestAnomalyLeavesOutWeeksRetentionDropped(t *testing.T) {
	t.Parallel()
	spike := ts("2026-03-28T11:00:00Z")
	s := NewScript()
	for at := ts("2026-02-01T00:00:00Z"); at.Before(ts("2026-03-29T00:00:00Z")); at = at.Add(time.Hour) {
		c := 30.0
		if at.Equal(spike) {
			c = 150
		}
		s.AddSpan(map[analytics.Dim]string{analytics.DimTenant: "acme", analytics.DimModel: "m"}, at, time.Hour, Point{Cost: c, Requests: 10})
	}
	cfg := mustConfig(t, anomalyRule)
	src := &minuteRetention{Source: s}

	// Minutes kept since March 20: one week of four.
	src.since = ts("2026-03-20T00:00:00Z")
	if smp := anomalySample(t, cfg, src, ts("2026-03-28T10:00:00Z")); !smp.Unknown || smp.Active {
		t.Errorf("one week of minutes: %+v", smp)
	}
	// Since March 14: two weeks, flat, then the spike.
	src.since = ts("2026-03-14T00:00:00Z")
	if smp := anomalySample(t, cfg, src, ts("2026-03-28T10:00:00Z")); smp.Unknown || smp.Active || !strings.Contains(smp.Summary, "over 2 weeks") {
		t.Errorf("two weeks of minutes: %+v", smp)
	}
	e := evalAt(t, cfg, src, spike.Add(time.Hour))
	if as := e.Alerts(); len(as) != 1 || as[0].State != StateFiring {
		t.Fatalf("the spike: %v", states(e, "spend-anomaly"))
	}
	// The minutes of the week before are gone: Unknown keeps the alert
	// firing (it does not resolve on a sample that cannot say).
	src.since = ts("2026-03-22T00:00:00Z")
	if _, failed := e.Eval(context.Background(), spike.Add(70*time.Minute)); len(failed) > 0 {
		t.Fatal(failed[0].Err)
	}
	if as := e.Alerts(); len(as) != 1 || as[0].State != StateFiring || as[0].Value != 150 {
		t.Errorf("unknown: %v", states(e, "spend-anomaly"))
	}
	// Known again and flat: it resolves.
	src.since = ts("2026-03-14T00:00:00Z")
	if _, failed := e.Eval(context.Background(), spike.Add(3*time.Hour)); len(failed) > 0 {
		t.Fatal(failed[0].Err)
	}
	if as := e.Alerts(); len(as) != 1 || as[0].State != StateResolved {
		t.Errorf("known again: %v", states(e, "spend-anomaly"))
	}
}

// A tenant of long standing that never spends at night has weeks of no
// spend at 03:00 that are real (the hours say so, whatever the minutes
// hold): its first night-time spend fires.
func TestAnomalyKeepsWeeksOfNoSpend(t *testing.T) {
	t.Parallel()
	s := NewScript()
	for at := ts("2026-02-01T00:00:00Z"); at.Before(ts("2026-03-29T00:00:00Z")); at = at.Add(time.Hour) {
		c := 0.0
		if h := at.Hour(); h >= 9 && h < 18 {
			c = 30
		}
		if at.Equal(ts("2026-03-28T03:00:00Z")) {
			c = 100
		}
		if c > 0 {
			s.AddSpan(map[analytics.Dim]string{analytics.DimTenant: "acme", analytics.DimModel: "m"}, at, time.Hour, Point{Cost: c, Requests: 10})
		}
	}
	cfg := mustConfig(t, anomalyRule)
	for _, src := range []Source{s, &minuteRetention{Source: s, since: ts("2026-03-14T00:00:00Z")}} {
		smp := anomalySample(t, cfg, src, ts("2026-03-28T04:00:00Z"))
		if smp.Unknown || !smp.Active || !strings.Contains(smp.Summary, "median of USD 0.00") {
			t.Errorf("%T: %+v", src, smp)
		}
	}
}

// byMonth calls land with the cells of each month in turn (an insert
// touches one month).
func byMonth(cells []historyCell, land func([]historyCell)) {
	months := map[time.Month][]historyCell{}
	var order []time.Month
	for _, c := range cells {
		if months[c.at.Month()] == nil {
			order = append(order, c.at.Month())
		}
		months[c.at.Month()] = append(months[c.at.Month()], c)
	}
	for _, m := range order {
		land(months[m])
	}
}

// landMinutesFrom lands cells as landHistory does, but their minute rows
// only from since on (retention dropped the ones before).
func landMinutesFrom(t *testing.T, w *warehouse.Warehouse, cells []historyCell, since time.Time) {
	t.Helper()
	byMonth(cells, func(cs []historyCell) { landTables(t, w, cs, warehouse.Hour, warehouse.Day) })
	var recent []historyCell
	for _, c := range cells {
		if !c.at.Before(since) {
			recent = append(recent, c)
		}
	}
	byMonth(recent, func(cs []historyCell) { landTables(t, w, cs, warehouse.Minute) })
}

// Against ClickHouse (`alerts run`): a tenant of five weeks whose minute
// rows are kept for 8 days is Unknown (it paged on flat spend), and known
// once 15 days of minutes are there.
func TestAnomalyRetentionInClickHouse(t *testing.T) {
	t.Parallel()
	w, _ := openStore(t)
	usd := func(v float64) pricing.Pico { return pricing.FromPicos(int64(v * 1e12)) }
	var cells []historyCell
	for at := ts("2026-02-20T00:00:00Z"); at.Before(ts("2026-03-28T13:00:00Z")); at = at.Add(time.Hour) {
		cells = append(cells, historyCell{at: at, tenant: "acme", provider: "p", model: "m", requests: 10, cost: usd(30)})
	}
	landMinutesFrom(t, w, cells, ts("2026-03-20T00:00:00Z"))
	q := analytics.New(w, analytics.DefaultOptions())
	cfg := mustConfig(t, anomalyRule)
	at := ts("2026-03-28T12:00:00Z")
	if smp := anomalySample(t, cfg, q, at); !smp.Unknown || smp.Active || smp.Value != 30 {
		t.Errorf("8 days of minutes: %+v", smp)
	}
	if e := evalAt(t, cfg, q, at); len(e.Alerts()) != 0 {
		t.Errorf("8 days of minutes: %s", e.Alerts()[0].Summary)
	}
	// The minute rows of March 13 to 19 back (as if kept 15 days).
	var back []historyCell
	for _, c := range cells {
		if !c.at.Before(ts("2026-03-13T00:00:00Z")) && c.at.Before(ts("2026-03-20T00:00:00Z")) {
			back = append(back, c)
		}
	}
	byMonth(back, func(cs []historyCell) { landTables(t, w, cs, warehouse.Minute) })
	if smp := anomalySample(t, cfg, q, at); smp.Unknown || smp.Active || !strings.Contains(smp.Summary, "median of USD 30.00 for this time of the week over 2 weeks") {
		t.Errorf("15 days of minutes: %+v", smp)
	}
}
