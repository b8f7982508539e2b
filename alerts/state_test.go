package alerts

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/alerts/notify"
)

// The life of an error-rate alert with for and keep_firing_for, and what
// is due when: group_wait, group_interval, repeat_interval and resolved.
func TestStateMachineAndDue(t *testing.T) {
	t.Parallel()
	s := NewScript()
	t0 := ts("2026-03-10T12:00:00Z")
	bad := func(from, to time.Time) {
		fill(t, s, "acme", "m", from, to, time.Minute, func(time.Time) Point { return Point{Requests: 100, Errors: 50} })
	}
	fill(t, s, "acme", "m", t0.Add(-time.Hour), t0.Add(3*time.Hour), time.Minute, func(time.Time) Point { return Point{Requests: 100} })
	bad(t0, t0.Add(20*time.Minute))
	cfg := mustConfig(t, `group_wait: 1m
group_interval: 5m
repeat_interval: 10m
receivers: [{name: r, type: log}]
rules:
  - {name: e, kind: error_rate, threshold_pct: 5, window: 5m, min_requests: 1, for: 3m, keep_firing_for: 4m, notify: [r]}
`)
	e := NewEngine(cfg, s)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	step := func(m int) State {
		e.Eval(context.Background(), at(m))
		as := e.Alerts()
		if len(as) == 0 {
			return StateInactive
		}
		return as[0].State
	}
	for _, c := range []struct {
		min  int
		want State
	}{{0, StateInactive}, {1, StatePending}, {3, StatePending}, {4, StateFiring}, {10, StateFiring}, {24, StateFiring}, {26, StateFiring}, {28, StateResolved}} {
		if got := step(c.min); got != c.want {
			t.Fatalf("minute %d: %s, want %s", c.min, got, c.want)
		}
	}
	// Replay with notifications: not before group_wait after firing.
	e = NewEngine(cfg, s)
	var ids []string
	for m := 0; m <= 40; m++ {
		e.Eval(context.Background(), at(m))
		due := e.Due(at(m), nil)
		if len(due) > 0 {
			e.Flushed("e", at(m))
		}
		for _, o := range due {
			ids = append(ids, o.Notification.Type)
			if o.Notification.Type == notify.TypeResolved && len(o.Requires) == 0 {
				t.Errorf("resolved without Requires")
			}
			if m < 5 {
				t.Errorf("minute %d: due before group_wait: %+v", m, o)
			}
		}
	}
	// firing at 5 (group_wait), again at 10, 15, 20 (same ID until
	// repeat_interval, the log drops those), resolved at 26 (not before
	// group_interval after 25? 26-20 ≥ 5).
	if len(ids) == 0 || ids[0] != notify.TypeFiring || ids[len(ids)-1] != notify.TypeResolved {
		t.Errorf("sequence %v", ids)
	}
	// Repeat: the ID changes after repeat_interval.
	e = NewEngine(cfg, s)
	for m := 0; m <= 15; m++ {
		e.Eval(context.Background(), at(m))
	}
	first := e.Due(at(5), nil)[0].Notification.ID
	rep := e.Due(at(15), nil)[0].Notification.ID
	if first == rep || e.Due(at(13), nil)[0].Notification.ID != first {
		t.Errorf("repeat IDs: %s %s", first, rep)
	}
}

func TestInhibitionAndSilence(t *testing.T) {
	t.Parallel()
	s := NewScript()
	now := ts("2026-03-20T12:00:00Z")
	fill(t, s, "acme", "m", ts("2026-01-01T00:00:00Z"), now, time.Hour, func(time.Time) Point { return Point{Cost: 1} })
	cfg := mustConfig(t, `group_wait: 0s
receivers: [{name: r, type: log}]
rules:
  - {name: budget, kind: budget, scope: {tenant: acme}, by: [tenant], amount_usd: 100, notify: [r]}
  - {name: forecast, kind: forecast, scope: {tenant: acme}, by: [tenant], amount_usd: 200, notify: [r]}
  - {name: other-forecast, kind: forecast, amount_usd: 200, notify: [r], labels: {team: x}}
`)
	e := evalAt(t, cfg, s, now)
	due := map[string]bool{}
	for _, o := range e.Due(now, nil) {
		due[o.Notification.Rule] = true
	}
	if !due["budget"] || due["forecast"] || !due["other-forecast"] {
		t.Errorf("inhibition: due %v", due)
	}
	sil := []Silence{{ID: "s1", Matchers: map[string]string{"team": "x"}, StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour)}}
	due = map[string]bool{}
	for _, o := range e.Due(now, silencedBy(sil, now)) {
		due[o.Notification.Rule] = true
	}
	if !due["budget"] || due["other-forecast"] {
		t.Errorf("silence: due %v", due)
	}
	// Expired, the silence no longer mutes.
	due = map[string]bool{}
	for _, o := range e.Due(now.Add(2*time.Hour), silencedBy(sil, now.Add(2*time.Hour))) {
		due[o.Notification.Rule] = true
	}
	if !due["other-forecast"] {
		t.Errorf("after expiry: due %v", due)
	}
}

func TestNotificationIDIsValid(t *testing.T) {
	t.Parallel()
	id := NotificationID("r", map[string]string{"tenant": "a.b c"}, ts("2026-03-01T00:00:00Z"), "99.5%", "firing")
	if err := notify.ValidateID(id); err != nil {
		t.Fatal(err)
	}
	if id == NotificationID("r", map[string]string{"tenant": "a.b c"}, ts("2026-03-01T00:00:00Z"), "99.5%", "resolved") {
		t.Error("firing and resolved share an ID")
	}
}

func TestRunnerReady(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "interval: 30s\nrules:\n  - {name: u, kind: unpriced}\n")
	now := ts("2026-03-10T12:00:00Z")
	r, err := NewRunner(cfg, NewScript(), nil, nil, RunOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ready() == nil {
		t.Error("healthy before any evaluation")
	}
	r.last.Store(now.UnixNano())
	now = now.Add(90 * time.Second)
	if err := r.Ready(); err != nil {
		t.Errorf("90 s after an evaluation (interval 30s, limit 90s): %v", err)
	}
	now = now.Add(time.Second)
	if err := r.Ready(); err == nil || !strings.Contains(err.Error(), "1m31s ago") {
		t.Errorf("91 s after: %v", err)
	}
}
