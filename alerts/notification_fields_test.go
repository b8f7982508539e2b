package alerts

import (
	"reflect"
	"testing"
)

// A notification says what its numbers are: the unit of value and
// threshold per kind (the SLO forms: a burn rate), the threshold's name,
// and the rule's scope.
func TestNotificationUnitsAndScope(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig("r.yaml", []byte(`rules:
  - {name: b, kind: budget, amount_usd: 10, thresholds: [50, 100], scope: {application: [chat, search]}}
  - {name: f, kind: forecast, amount_usd: 10}
  - {name: a, kind: anomaly}
  - {name: g, kind: growth, doubling_days: 14}
  - {name: l, kind: latency, threshold_ms: 900}
  - {name: ls, kind: latency, objective: "99% under 2 s"}
  - {name: e, kind: error_rate, threshold_pct: 5}
  - {name: es, kind: error_rate, objective: "99.5%"}
  - {name: u, kind: unpriced}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"b": "USD", "f": "USD", "a": "USD", "g": "days", "l": "ms", "ls": "burn_rate",
		"e": "percent", "es": "burn_rate", "u": "calls"}
	e := &Engine{cfg: cfg}
	for _, r := range cfg.Rules {
		if got := r.unit(); got != want[r.Name] {
			t.Errorf("rule %s: unit %q, want %q", r.Name, got, want[r.Name])
		}
		a := &Alert{Rule: r.Name, Kind: r.Kind, Group: map[string]string{}, Threshold: "", State: StateFiring}
		if r.Name == "b" {
			a.Threshold = "50%"
		}
		n := e.outgoing(a, r, a.FiredAt).Notification
		if n.Unit != want[r.Name] || n.ThresholdLabel != a.Threshold {
			t.Errorf("rule %s: notification unit %q, threshold label %q", r.Name, n.Unit, n.ThresholdLabel)
		}
		if wantScope := map[string][]string(nil); r.Name == "b" {
			if wantScope = map[string][]string{"application": {"chat", "search"}}; !reflect.DeepEqual(n.Scope, wantScope) {
				t.Errorf("rule b: scope %v, want %v", n.Scope, wantScope)
			}
		} else if n.Scope != nil {
			t.Errorf("rule %s: scope %v, want none", r.Name, n.Scope)
		}
	}
}
