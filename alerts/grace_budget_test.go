package alerts

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
)

// graceRules is a daily budget of USD 100 per tenant (late_data_grace
// grace: "" for the default), sent at once.
func graceRules(t *testing.T, grace string) *Config {
	t.Helper()
	g := ""
	if grace != "" {
		g = ", late_data_grace: " + grace
	}
	return mustConfig(t, `
group_wait: 0s
group_interval: 1s
receivers: [{name: r, type: log}]
rules:
  - {name: daily, kind: budget, by: [tenant], period: day, amount_usd: 100`+g+`, notify: [r]}
`)
}

// graceRun evaluates an engine over s every 30 s in [from, to) (run), as a
// replica restarted at every evaluation (restarted: the state table's
// copy), with a second replica evaluating each instant from the same
// state, which must send nothing more; sent is what was sent, "15:04:05
// type".
type graceRun struct {
	t    *testing.T
	cfg  *Config
	src  *Script
	e    *Engine
	log  *deliveryLog
	sent []string
}

func newGraceRun(t *testing.T, cfg *Config, src *Script) *graceRun {
	return &graceRun{t: t, cfg: cfg, src: src, e: NewEngine(cfg, src), log: newDeliveryLog()}
}

func (g *graceRun) run(from, to time.Time) {
	g.t.Helper()
	for at := from; at.Before(to); at = at.Add(30 * time.Second) {
		other := restarted(g.e, g.cfg, g.src)
		evalOK(g.t, g.e, at)
		for _, n := range g.log.send(g.e, at) {
			g.sent = append(g.sent, at.Format("15:04:05")+" "+n.Type)
		}
		evalOK(g.t, other, at)
		for _, n := range g.log.send(other, at) {
			g.t.Errorf("%s: a second replica sent %s %s", at.Format(time.RFC3339), n.Type, n.Summary)
		}
		g.e = restarted(g.e, g.cfg, g.src)
	}
}

var graceAcme = map[analytics.Dim]string{analytics.DimTenant: "acme"}

// spendDay adds USD 99 to acme's day 2026-03-09 (UTC), spread over its
// first 23 hours and 50 minutes: under the budget of 100 when the day ends.
func spendDay(t *testing.T, s *Script) {
	t.Helper()
	if err := s.AddSpan(graceAcme, ts("2026-03-09T00:00:00Z"), 23*time.Hour+50*time.Minute, Point{Cost: 99, Requests: 1}); err != nil {
		t.Fatal(err)
	}
}

// TestGraceLateCrossingNotifiedOnce: the review's case (R6). A daily
// budget of USD 100 whose spend was 99 when the day ended; the last
// minutes' spend (USD 7.28, 106.28 in all) lands three minutes after
// midnight. The crossing is notified once, as the previous day's (its
// period and key), saying so, however many restarts and replicas; it
// resolves when the grace ends. (Nothing was sent before: the evaluation
// had moved on to the new day.)
func TestGraceLateCrossingNotifiedOnce(t *testing.T) {
	t.Parallel()
	s := NewScript()
	spendDay(t, s)
	cfg := graceRules(t, "")
	g := newGraceRun(t, cfg, s)
	g.run(ts("2026-03-09T23:55:00Z"), ts("2026-03-10T00:03:00Z"))
	if len(g.sent) != 0 {
		t.Fatalf("USD 99 of 100 sent %v", g.sent)
	}
	// The aggregator lands the last minutes: the previous day's spend.
	if err := s.Add(graceAcme, ts("2026-03-09T23:55:00Z"), Point{Cost: 7.28, Requests: 1}); err != nil {
		t.Fatal(err)
	}
	g.run(ts("2026-03-10T00:03:00Z"), ts("2026-03-10T02:00:00Z"))
	want := []string{"00:03:00 alert.firing", "01:00:00 alert.resolved"}
	if !slices.Equal(g.sent, want) {
		t.Fatalf("sent %v, want %v", g.sent, want)
	}
	n := g.log.sent[0]
	prevDay, day := ts("2026-03-09T00:00:00Z"), ts("2026-03-10T00:00:00Z")
	if !n.PeriodStart.Equal(prevDay) || !n.PeriodEnd.Equal(day) || n.Value < 106.27 || n.Value > 106.29 || n.Threshold != 100 {
		t.Errorf("late crossing %+v: want the day of March 9, USD 106.28 of 100", n)
	}
	for _, w := range []string{"USD 106.28", "in the previous day, 2026-03-09 00:00 UTC to 2026-03-10 00:00 UTC", "landed late"} {
		if !strings.Contains(n.Summary, w) {
			t.Errorf("summary %q does not say %q", n.Summary, w)
		}
	}
	// Its key is the one a crossing before midnight had: the previous
	// day's start and the limit.
	onTime := &Alert{Rule: "daily", Kind: KindBudget, Group: map[string]string{"tenant": "acme"}, Threshold: "100%",
		PeriodStart: prevDay, ThresholdValue: 100}
	if id := onTime.notificationID("firing"); n.ID != id {
		t.Errorf("late crossing's ID %s, want the day's %s", n.ID, id)
	}
	if r := g.log.sent[1]; !strings.HasPrefix(r.Summary, "resolved: ") || !r.PeriodStart.Equal(prevDay) {
		t.Errorf("resolved %+v", r)
	}
}

// TestGraceOnTimeCrossingNotRepeated: a crossing notified before the day
// ended resolves at midnight, as before the grace; the previous day's
// spend evaluated in the grace, and more of it landing late, notify
// nothing more, and the alert does not flap (it stays resolved).
func TestGraceOnTimeCrossingNotRepeated(t *testing.T) {
	t.Parallel()
	s := NewScript()
	spendDay(t, s)
	if err := s.Add(graceAcme, ts("2026-03-09T23:00:00Z"), Point{Cost: 5, Requests: 1}); err != nil {
		t.Fatal(err)
	}
	cfg := graceRules(t, "")
	g := newGraceRun(t, cfg, s)
	g.run(ts("2026-03-09T22:59:00Z"), ts("2026-03-10T00:03:00Z"))
	if err := s.Add(graceAcme, ts("2026-03-09T23:55:00Z"), Point{Cost: 7.28, Requests: 1}); err != nil {
		t.Fatal(err)
	}
	for at := ts("2026-03-10T00:03:00Z"); at.Before(ts("2026-03-10T01:30:00Z")); at = at.Add(10 * time.Minute) {
		g.run(at, at.Add(10*time.Minute))
		if a := g.e.Alerts(); len(a) != 1 || a[0].State != StateResolved || !a[0].ResolvedAt.Equal(ts("2026-03-10T00:00:00Z")) {
			t.Fatalf("at %s: %+v, want the alert resolved at midnight", at.Format(time.RFC3339), a)
		}
	}
	want := []string{"23:00:30 alert.firing", "00:00:00 alert.resolved"}
	if !slices.Equal(g.sent, want) {
		t.Fatalf("sent %v, want %v", g.sent, want)
	}
}

// TestGraceCurrentCrossingWaitsForALateOne: a late crossing of the
// previous day and a crossing of the new day within the grace are both
// notified, each once with its own period: the new day's after the
// previous day's alert resolved at the end of the grace (one alert per
// threshold).
func TestGraceCurrentCrossingWaitsForALateOne(t *testing.T) {
	t.Parallel()
	s := NewScript()
	spendDay(t, s)
	cfg := graceRules(t, "30m")
	g := newGraceRun(t, cfg, s)
	g.run(ts("2026-03-09T23:59:00Z"), ts("2026-03-10T00:05:00Z"))
	s.Add(graceAcme, ts("2026-03-09T23:55:00Z"), Point{Cost: 2, Requests: 1})
	s.Add(graceAcme, ts("2026-03-10T00:10:00Z"), Point{Cost: 150, Requests: 1})
	g.run(ts("2026-03-10T00:05:00Z"), ts("2026-03-10T01:00:00Z"))
	want := []string{"00:05:00 alert.firing", "00:30:00 alert.resolved", "00:30:30 alert.firing"}
	if !slices.Equal(g.sent, want) {
		t.Fatalf("sent %v, want %v", g.sent, want)
	}
	if a, b := g.log.sent[0], g.log.sent[2]; !a.PeriodStart.Equal(ts("2026-03-09T00:00:00Z")) || !b.PeriodStart.Equal(ts("2026-03-10T00:00:00Z")) ||
		a.Value != 101 || b.Value != 150 || a.ID == b.ID {
		t.Errorf("the previous day's %+v and the new day's %+v", a, b)
	}
}

// TestGraceOff: late_data_grace: 0s evaluates the current period only, as
// before: the late crossing is not notified.
func TestGraceOff(t *testing.T) {
	t.Parallel()
	s := NewScript()
	spendDay(t, s)
	s.Add(graceAcme, ts("2026-03-09T23:55:00Z"), Point{Cost: 7.28, Requests: 1})
	g := newGraceRun(t, graceRules(t, "0s"), s)
	g.run(ts("2026-03-10T00:00:00Z"), ts("2026-03-10T00:10:00Z"))
	if len(g.sent) != 0 {
		t.Fatalf("sent %v with late_data_grace: 0s", g.sent)
	}
}

// TestGraceParse: late_data_grace defaults to an hour, takes 0 (off), and
// is refused negative or longer than 12 hours for a day, a day for a week
// or a month, at its line and column.
func TestGraceParse(t *testing.T) {
	t.Parallel()
	grace := func(cfg *Config) time.Duration { return cfg.Rules[0].Spec().(*BudgetSpec).LateDataGrace }
	if g := grace(graceRules(t, "")); g != time.Hour {
		t.Errorf("default late_data_grace %s, want 1h", g)
	}
	if g := grace(graceRules(t, "0s")); g != 0 {
		t.Errorf("late_data_grace: 0s is %s", g)
	}
	if g := grace(mustConfig(t, "rules:\n  - {name: m, kind: budget, period: month, amount_usd: 1, late_data_grace: 1d}\n")); g != 24*time.Hour {
		t.Errorf("a month's late_data_grace: 1d is %s", g)
	}
	for src, want := range map[string]string{
		"rules:\n  - {name: d, kind: budget, period: day, amount_usd: 1, late_data_grace: 13h}\n":  "t.yaml:2:74: late_data_grace 13h: want at most 12h0m0s for a day budget",
		"rules:\n  - {name: w, kind: budget, period: week, amount_usd: 1, late_data_grace: 25h}\n": "t.yaml:2:75: late_data_grace 25h: want at most 24h0m0s for a week budget",
		"rules:\n  - {name: d, kind: budget, period: day, amount_usd: 1, late_data_grace: -1m}\n":  "t.yaml:2:74: late_data_grace -1m: want at least 0s",
		"rules:\n  - {name: d, kind: budget, period: day, amount_usd: 1, late_data_grace: soon}\n": `t.yaml:2:74: cannot parse late_data_grace "soon"`,
		"rules:\n  - {name: g, kind: growth, doubling_days: 7, late_data_grace: 1h}\n":             `unknown field "late_data_grace" in a growth rule`,
	} {
		_, err := ParseConfig("t.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}

// TestGraceMonthInBerlin: within the grace of a month in Europe/Berlin
// (April begins at 2026-03-31T22:00Z), a budget's samples are those of
// Berlin's March, whole, and of April so far.
func TestGraceMonthInBerlin(t *testing.T) {
	t.Parallel()
	s := NewScript()
	fill(t, s, "acme", "m", ts("2026-02-28T00:00:00Z"), ts("2026-04-01T00:00:00Z"), time.Hour, func(time.Time) Point { return Point{Cost: 1} })
	cfg := mustConfig(t, "tz: Europe/Berlin\nrules:\n  - {name: b, kind: budget, period: month, amount_usd: 1000, thresholds: [50]}\n")
	smp, err := Evaluate(context.Background(), s, cfg, cfg.Rules[0], ts("2026-03-31T22:30:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if len(smp) != 2 {
		t.Fatalf("%d samples, want the previous month's and the current one's: %+v", len(smp), smp)
	}
	// March in Berlin: 2026-02-28T23:00Z to 2026-03-31T22:00Z, 743 hours
	// (the clocks went forward on March 29).
	if p := smp[0]; !p.PeriodStart.Equal(ts("2026-02-28T23:00:00Z")) || !p.PeriodEnd.Equal(ts("2026-03-31T22:00:00Z")) || p.Value != 743 || !p.Active {
		t.Errorf("previous month %+v", p)
	}
	if c := smp[1]; !c.PeriodStart.Equal(ts("2026-03-31T22:00:00Z")) || c.Value != 1 || c.Active {
		t.Errorf("current month %+v", c)
	}
}

// TestGraceLateBudgetInhibitsNothing: a budget alert of a period that has
// ended (a late crossing, firing in the grace) does not inhibit the new
// period's spikes and forecasts.
func TestGraceLateBudgetInhibitsNothing(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, `
group_wait: 0s
receivers: [{name: r, type: log}]
rules:
  - {name: month, kind: budget, by: [tenant], period: month, amount_usd: 800, notify: [r]}
  - {name: spike, kind: anomaly, by: [tenant], notify: [r]}
  - {name: fc, kind: forecast, by: [tenant], period: month, amount_usd: 800, notify: [r]}
`)
	now := ts("2026-04-01T00:20:00Z")
	acmeG := map[string]string{"tenant": "acme"}
	mk := func(rule string, kind Kind, start, end time.Time) *Alert {
		return &Alert{Rule: rule, Kind: kind, Group: acmeG, State: StateFiring, ActiveAt: now.Add(-10 * time.Minute),
			FiredAt: now.Add(-10 * time.Minute), LastActive: now, Value: 900, ThresholdValue: 800, PeriodStart: start, PeriodEnd: end}
	}
	for _, c := range []struct {
		name       string
		start, end time.Time
		inhibits   bool
	}{
		{"March's, crossed late", ts("2026-03-01T00:00:00Z"), ts("2026-04-01T00:00:00Z"), false},
		{"April's", ts("2026-04-01T00:00:00Z"), ts("2026-05-01T00:00:00Z"), true},
	} {
		e := NewEngine(cfg, NewScript())
		b := mk("month", KindBudget, c.start, c.end)
		b.Threshold = "100%"
		e.Restore([]*Alert{b, mk("spike", KindAnomaly, time.Time{}, time.Time{}),
			mk("fc", KindForecast, ts("2026-04-01T00:00:00Z"), ts("2026-05-01T00:00:00Z"))})
		var due []string
		for _, o := range e.Due(now, nil) {
			due = append(due, o.Notification.Rule)
		}
		slices.Sort(due)
		want := []string{"fc", "month", "spike"}
		if c.inhibits {
			want = []string{"month"}
		}
		if !slices.Equal(due, want) {
			t.Errorf("budget alert of %s: due %v, want %v", c.name, due, want)
		}
	}
}

// TestGraceBacktest: a backtest with hourly steps evaluates at midnight
// the whole day that ended, so a crossing in its last hour fires then (the
// step before saw it under the budget, and the step at midnight read the
// new day alone: it was never seen), as `alerts run` does in the grace.
func TestGraceBacktest(t *testing.T) {
	t.Parallel()
	s := NewScript()
	spendDay(t, s)
	s.Add(graceAcme, ts("2026-03-09T23:30:00Z"), Point{Cost: 7.28, Requests: 1})
	res, err := Backtest(context.Background(), graceRules(t, ""), s, BacktestOptions{From: ts("2026-03-09T12:00:00Z"), To: ts("2026-03-10T12:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	eps := res[0].Episodes
	if len(eps) != 1 || !eps[0].Start.Equal(ts("2026-03-10T00:00:00Z")) || !eps[0].End.Equal(ts("2026-03-10T01:00:00Z")) ||
		!strings.Contains(eps[0].Summary, "previous day") {
		t.Fatalf("episodes %+v, want one from midnight to the end of the grace, of the previous day", eps)
	}
}

// TestGracePendingGoesOn: a threshold pending at the end of its day (for:
// 30m, crossed at 23:45) goes on pending on the ended day's spend in the
// grace and fires once for: has passed, as the previous day's; then it
// resolves when the grace ends.
func TestGracePendingGoesOn(t *testing.T) {
	t.Parallel()
	s := NewScript()
	spendDay(t, s)
	s.Add(graceAcme, ts("2026-03-09T23:45:00Z"), Point{Cost: 5, Requests: 1})
	cfg := mustConfig(t, `
group_wait: 0s
group_interval: 1s
receivers: [{name: r, type: log}]
rules:
  - {name: daily, kind: budget, by: [tenant], period: day, amount_usd: 100, for: 30m, notify: [r]}
`)
	g := newGraceRun(t, cfg, s)
	g.run(ts("2026-03-09T23:40:00Z"), ts("2026-03-10T00:00:30Z"))
	if st := states(g.e, "daily")["tenant=acme|100%"]; st != StatePending {
		t.Fatalf("at midnight: %q, want pending", st)
	}
	g.run(ts("2026-03-10T00:00:30Z"), ts("2026-03-10T01:10:00Z"))
	want := []string{"00:15:30 alert.firing", "01:00:00 alert.resolved"}
	if !slices.Equal(g.sent, want) {
		t.Fatalf("sent %v, want %v", g.sent, want)
	}
	if n := g.log.sent[0]; !n.PeriodStart.Equal(ts("2026-03-09T00:00:00Z")) {
		t.Errorf("fired %+v, want the previous day's", n)
	}
}
