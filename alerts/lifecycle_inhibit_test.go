package alerts

import (
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
)

// TestLifecycleInhibitionOnlyByABreachedBudget: a budget alert inhibits
// the forecast and anomaly alerts of the same scope only at a threshold
// of 100% or more, for exactly the same group, and a forecast only when
// the budget has its period. A tenant at 50% of its monthly budget used
// to have its spike and forecast pages muted for the rest of the month,
// and a budget without by muted every group.
func TestLifecycleInhibitionOnlyByABreachedBudget(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, `
group_wait: 0s
receivers: [{name: r, type: log}]
rules:
  - {name: month, kind: budget, by: [tenant], period: month, amount_usd: 800, thresholds: [50, 100], notify: [r]}
  - {name: day, kind: budget, by: [tenant], period: day, amount_usd: 100, thresholds: [100], notify: [r]}
  - {name: all, kind: budget, period: month, amount_usd: 5000, thresholds: [100], notify: [r]}
  - {name: spike, kind: anomaly, by: [tenant], notify: [r]}
  - {name: spike-model, kind: anomaly, by: [tenant, model], notify: [r]}
  - {name: spike-all, kind: anomaly, notify: [r]}
  - {name: spike-chat, kind: anomaly, by: [tenant], scope: {application: chat}, notify: [r]}
  - {name: fc-month, kind: forecast, by: [tenant], period: month, amount_usd: 800, notify: [r]}
`)
	now := ts("2026-03-20T12:00:00Z")
	acme, globex := map[string]string{"tenant": "acme"}, map[string]string{"tenant": "globex"}
	firing := func(rule string, kind Kind, g map[string]string, threshold string) *Alert {
		return &Alert{Rule: rule, Kind: kind, Group: g, Threshold: threshold, State: StateFiring,
			ActiveAt: now.Add(-time.Hour), FiredAt: now.Add(-time.Hour), LastActive: now, Value: 1, ThresholdValue: 1}
	}
	// The alerts that could be inhibited, all firing.
	victims := []*Alert{
		firing("spike", KindAnomaly, acme, ""),
		firing("spike", KindAnomaly, globex, ""),
		firing("spike-model", KindAnomaly, map[string]string{"tenant": "acme", "model": "m"}, ""),
		firing("spike-all", KindAnomaly, map[string]string{}, ""),
		firing("spike-chat", KindAnomaly, acme, ""),
		firing("fc-month", KindForecast, acme, ""),
	}
	for _, c := range []struct {
		name   string
		budget *Alert
		want   []string // the inhibited victims: rule{group}
	}{
		{"50% of the month", firing("month", KindBudget, acme, "50%"), nil},
		{"100% of the month", firing("month", KindBudget, acme, "100%"), []string{"fc-month{tenant=acme}", "spike{tenant=acme}"}},
		{"100% of the day", firing("day", KindBudget, acme, "100%"), []string{"spike{tenant=acme}"}},
		{"100% of all calls", firing("all", KindBudget, map[string]string{}, "100%"), []string{"spike-all{}"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := NewEngine(cfg, NewScript())
			var as []*Alert
			for _, v := range victims {
				cp := *v
				as = append(as, &cp)
			}
			e.Restore(append(as, c.budget))
			due := map[string]bool{}
			for _, o := range e.Due(now, nil) {
				due[o.Notification.Rule+"{"+groupKey(o.Notification.Group)+"}"] = true
			}
			var inhibited []string
			for _, v := range victims {
				if k := v.Rule + "{" + groupKey(v.Group) + "}"; !due[k] {
					inhibited = append(inhibited, k)
				}
			}
			sort.Strings(inhibited)
			if !slices.Equal(inhibited, c.want) {
				t.Errorf("inhibited %v, want %v", inhibited, c.want)
			}
			if !due[c.budget.Rule+"{"+groupKey(c.budget.Group)+"}"] {
				t.Errorf("the budget alert itself is not due")
			}
		})
	}
}

// TestLifecycleSpikeNotMutedByHalfBudget: the review's case through the
// evaluation: a tenant at 60% of its monthly budget (the 50% threshold
// firing) spends 20 times its usual hour; its spike is sent.
func TestLifecycleSpikeNotMutedByHalfBudget(t *testing.T) {
	t.Parallel()
	s := NewScript()
	g := map[analytics.Dim]string{analytics.DimTenant: "acme", analytics.DimModel: "m"}
	for at := ts("2026-02-01T00:00:00Z"); at.Before(ts("2026-03-21T00:00:00Z")); at = at.Add(time.Hour) {
		c := 1.0
		if !at.Before(ts("2026-03-20T10:00:00Z")) && at.Before(ts("2026-03-20T13:00:00Z")) {
			c = 20
		}
		if err := s.AddSpan(g, at, time.Hour, Point{Cost: c, Requests: 1}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := mustConfig(t, `
group_wait: 0s
rules:
  - {name: budget, kind: budget, by: [tenant], period: month, amount_usd: 800, thresholds: [50, 80, 100], notify: [r]}
  - {name: spike, kind: anomaly, by: [tenant], window: 1h, min_usd: 1, notify: [r]}
receivers: [{name: r, type: log}]
`)
	now := ts("2026-03-20T11:00:00Z")
	e := evalAt(t, cfg, s, now)
	if st := states(e, "budget"); st["tenant=acme|50%"] != StateFiring || st["tenant=acme|100%"] != "" {
		t.Fatalf("budget: %v, want 50%% firing only", st)
	}
	if st := states(e, "spike"); st["tenant=acme|"] != StateFiring {
		t.Fatalf("spike: %v, want firing", st)
	}
	due := map[string]bool{}
	for _, o := range e.Due(now, nil) {
		due[o.Notification.Rule] = true
	}
	if !due["spike"] || !due["budget"] {
		t.Errorf("due %v: want the budget and the spike", due)
	}
}
