package alerts

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/alerts/notify"
	"github.com/costpipe/costpipe/analytics"
)

// TestLifecycleFewCallsDecide: fewer calls than min_requests decide the
// rate when no outcome of the calls missing up to min_requests could
// change it, and are unknown otherwise.
func TestLifecycleFewCallsDecide(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		bad, total  uint64
		holds, know bool
	}{
		{6, 50, true, true},   // 6 > 5% of 100 whatever the other 50
		{5, 50, false, false}, // 5 to 55 of 100
		{0, 50, false, false}, // 0 to 50 of 100
		{0, 95, false, true},  // at most 5 of 100: not above 5%
		{1, 96, false, true},  // at most 5
		{2, 96, false, false}, // 2 to 6
		{0, 0, false, false},  // no calls
		{20, 20, true, true},  // 20 of 100 at least
		{0, 150, false, true}, // more calls than min: none missing (not a negative count)
	} {
		holds, known := decideFew(c.bad, c.total, 100, 0.05)
		if holds != c.holds || known != c.know {
			t.Errorf("%d bad of %d calls (min 100, 5%%): holds %v known %v, want %v %v", c.bad, c.total, holds, known, c.holds, c.know)
		}
	}
	// Through the rule: 6 errors in 50 calls start an alert; 0 in 96
	// resolve it at once; 0 in 50 keep it firing.
	cfg := mustConfig(t, "rules:\n  - {name: errs, kind: error_rate, by: [provider], threshold_pct: 5, min_requests: 100}\n")
	src := &fixedUsage{}
	e := NewEngine(cfg, src)
	now := ts("2026-03-10T09:00:00Z")
	for _, c := range []struct {
		requests, errors uint64
		want             State
	}{{50, 6, StateFiring}, {50, 0, StateFiring}, {96, 0, StateResolved}} {
		src.set(c.requests, c.errors)
		now = now.Add(30 * time.Second)
		evalOK(t, e, now)
		if s := onlyAlert(t, e.Alerts()); s != c.want {
			t.Errorf("%d errors of %d calls: %s, want %s", c.errors, c.requests, s, c.want)
		}
	}
}

// TestLifecycleLowTrafficResolves: after an incident the provider's
// traffic stays below min_requests, healthy (50 calls a 5-minute window,
// no errors: unknown). The alert used to fire, and repeat the incident's
// numbers every repeat_interval, for ever; it resolves 3 windows (15 min)
// after it last held, saying it resolved for too little traffic with the
// numbers of now, and a backtest replaying the same evaluations ends the
// episode at the same time.
func TestLifecycleLowTrafficResolves(t *testing.T) {
	t.Parallel()
	s := NewScript()
	g := map[analytics.Dim]string{analytics.DimProvider: "openai"}
	for at := ts("2026-03-10T10:00:00Z"); at.Before(ts("2026-03-11T10:00:00Z")); at = at.Add(time.Minute) {
		p := Point{Requests: 100, Errors: 50}
		if !at.Before(ts("2026-03-10T10:30:00Z")) {
			p = Point{Requests: 10}
		}
		if err := s.Add(g, at, p); err != nil {
			t.Fatal(err)
		}
	}
	cfg := mustConfig(t, `
group_wait: 0s
group_interval: 1s
rules:
  - {name: errs, kind: error_rate, by: [provider], threshold_pct: 5, window: 5m, notify: [r]}
receivers: [{name: r, type: log}]
`)
	e := NewEngine(cfg, s)
	log := newDeliveryLog()
	var sent []string
	for at := ts("2026-03-10T10:20:00Z"); at.Before(ts("2026-03-11T09:00:00Z")); at = at.Add(time.Minute) {
		evalOK(t, e, at)
		for _, n := range log.send(e, at) {
			sent = append(sent, at.Format("15:04")+" "+n.Type)
		}
	}
	// The last window with the incident's calls ends at 10:34 (10:29 to
	// 10:34: 100 calls, 50 errors); from 10:35 a window has 50 calls.
	want := []string{"10:20 " + notify.TypeFiring, "10:49 " + notify.TypeResolved}
	if fmt.Sprint(sent) != fmt.Sprint(want) {
		t.Fatalf("sent %v, want %v", sent, want)
	}
	r := log.sent[1]
	if !strings.Contains(r.Summary, "too little traffic") || !strings.Contains(r.Summary, "(0 of 50 calls") || r.Value != 0 {
		t.Errorf("resolved: value %v, %q: want the numbers of now and why it resolved", r.Value, r.Summary)
	}
	res, err := Backtest(context.Background(), cfg, s, BacktestOptions{From: ts("2026-03-10T10:20:00Z"), To: ts("2026-03-10T12:00:00Z"), Step: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if eps := res[0].Episodes; len(eps) != 1 || !eps[0].Start.Equal(ts("2026-03-10T10:20:00Z")) || !eps[0].End.Equal(ts("2026-03-10T10:49:00Z")) {
		t.Errorf("backtest episodes %+v, want one from 10:20 to 10:49", eps)
	}
}

// TestLifecycleUnknownLimits: a pending alert kept unknown past the limit
// becomes inactive (its for: delay starts again); keep_firing_for longer
// than the limit governs a firing one; a group no longer seen at all (no
// calls) is unknown too, not resolved at once; the latency threshold form
// has the same limit.
func TestLifecycleUnknownLimits(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, `
rules:
  - {name: pend, kind: error_rate, by: [provider], threshold_pct: 5, window: 5m, min_requests: 100, for: 1h}
  - {name: keep, kind: error_rate, by: [provider], threshold_pct: 5, window: 5m, min_requests: 100, keep_firing_for: 30m}
  - {name: plain, kind: error_rate, by: [provider], threshold_pct: 5, window: 5m, min_requests: 100}
`)
	src := &fixedUsage{}
	e := NewEngine(cfg, src)
	t0 := ts("2026-03-10T09:00:00Z")
	src.set(500, 400)
	evalOK(t, e, t0)
	got := func() map[string]State {
		out := map[string]State{}
		for _, a := range e.Alerts() {
			out[a.Rule] = a.State
		}
		return out
	}
	if g := got(); g["pend"] != StatePending || g["keep"] != StateFiring || g["plain"] != StateFiring {
		t.Fatalf("holding: %v", g)
	}
	src.set(20, 0) // unknown
	for _, c := range []struct {
		after time.Duration
		want  map[string]State
	}{
		{14 * time.Minute, map[string]State{"pend": StatePending, "keep": StateFiring, "plain": StateFiring}},
		{15 * time.Minute, map[string]State{"keep": StateFiring, "plain": StateResolved}}, // pending: inactive, forgotten
		{29 * time.Minute, map[string]State{"keep": StateFiring, "plain": StateResolved}},
		{30 * time.Minute, map[string]State{"keep": StateResolved, "plain": StateResolved}},
	} {
		evalOK(t, e, t0.Add(c.after))
		if g := got(); fmt.Sprint(g) != fmt.Sprint(c.want) {
			t.Errorf("unknown for %s: %v, want %v", c.after, g, c.want)
		}
	}

	// No calls at all: the group is not seen; unknown, not resolved.
	lat := mustConfig(t, `
rules:
  - {name: errs, kind: error_rate, by: [provider], threshold_pct: 5, window: 5m, min_requests: 10}
  - {name: slow, kind: latency, by: [provider], threshold_ms: 1000, window: 10m, min_requests: 10}
`)
	s := NewScript()
	g := map[analytics.Dim]string{analytics.DimProvider: "openai"}
	for at := t0; at.Before(t0.Add(10 * time.Minute)); at = at.Add(time.Minute) {
		if err := s.Add(g, at, Point{Requests: 10, Errors: 5, Timed: 10, Latency: Latencies{P99: 3000}}); err != nil {
			t.Fatal(err)
		}
	}
	e = NewEngine(lat, s)
	for _, c := range []struct {
		at   time.Duration
		want string
	}{
		{10 * time.Minute, "map[errs:firing slow:firing]"},   // last held
		{20 * time.Minute, "map[errs:firing slow:firing]"},   // no calls since 10 (errs) and 20 minutes (slow)
		{25 * time.Minute, "map[errs:resolved slow:firing]"}, // 15 min = 3 × 5m
		{39 * time.Minute, "map[errs:resolved slow:firing]"},
		{40 * time.Minute, "map[errs:resolved slow:resolved]"}, // 30 min = 3 × 10m
	} {
		e.Eval(context.Background(), t0.Add(c.at))
		out := map[string]State{}
		for _, a := range e.Alerts() {
			out[a.Rule] = a.State
		}
		if fmt.Sprint(out) != c.want {
			t.Errorf("minute %s: %v, want %s", c.at, out, c.want)
		}
	}
}

// TestLifecycleSLOLowTraffic: an SLO whose callers back off below
// min_requests keeps firing while the few calls still fail (they decide
// the burn), is unknown, not resolved, when they stop, and resolves 3
// long windows (3 h) after it last held, saying why; a group whose few
// calls succeed again resolves (the short window decides).
func TestLifecycleSLOLowTraffic(t *testing.T) {
	t.Parallel()
	s := NewScript()
	down := map[analytics.Dim]string{analytics.DimProvider: "down"}
	back := map[analytics.Dim]string{analytics.DimProvider: "back"}
	t0 := ts("2026-03-10T10:00:00Z")
	for at := t0; at.Before(t0.Add(2 * time.Hour)); at = at.Add(time.Minute) {
		pd, pb := Point{Requests: 100, Errors: 50}, Point{Requests: 100, Errors: 50}
		if !at.Before(t0.Add(time.Hour)) {
			// 11:00: callers back off to a call a minute: failing ones
			// for down, succeeding ones for back.
			pd, pb = Point{Requests: 1, Errors: 1}, Point{Requests: 1}
		}
		if err := s.Add(down, at, pd); err != nil {
			t.Fatal(err)
		}
		if err := s.Add(back, at, pb); err != nil {
			t.Fatal(err)
		}
	}
	// down stops calling at 12:00.
	cfg := mustConfig(t, `
rules:
  - name: avail
    kind: error_rate
    by: [provider]
    objective: "99.5%"
    burn_rates: [{factor: 14.4, long: 1h, short: 5m}]
`)
	e := NewEngine(cfg, s)
	var lastHeld time.Time
	for at := t0.Add(30 * time.Minute); !at.After(t0.Add(6 * time.Hour)); at = at.Add(5 * time.Minute) {
		evalOK(t, e, at)
		st := states(e, "avail")
		d, b := st["provider=down|"], st["provider=back|"]
		switch {
		case at.Before(t0.Add(65 * time.Minute)):
			if d != StateFiring || b != StateFiring {
				t.Fatalf("%s: down %s back %s, want both firing", at.Format("15:04"), d, b)
			}
		case !at.After(t0.Add(2 * time.Hour)):
			// 60 calls in the hour, all failing: more than 14.4 × 0.5% of
			// 100 whatever the 40 missing would be.
			if d != StateFiring {
				t.Fatalf("%s: down %s, want firing on its failing calls", at.Format("15:04"), d)
			}
			if b != StateResolved {
				t.Fatalf("%s: back %s, want resolved (its last 5 minutes succeed)", at.Format("15:04"), b)
			}
		case at.Before(t0.Add(5 * time.Hour)):
			if d != StateFiring {
				t.Fatalf("%s: down %s, want firing: no calls decide nothing for 3 h", at.Format("15:04"), d)
			}
		default:
			if d != StateResolved {
				t.Fatalf("%s: down %s, want resolved", at.Format("15:04"), d)
			}
		}
		for _, a := range e.Alerts() {
			if a.Rule == "avail" && a.Group["provider"] == "down" && a.State == StateFiring {
				lastHeld = a.LastActive
			}
		}
	}
	if !lastHeld.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("down last held at %s, want 12:00 (its last failing calls within 5 minutes)", lastHeld.Format("15:04"))
	}
	for _, a := range e.Alerts() {
		if a.Group["provider"] == "down" && (!a.ResolvedAt.Equal(t0.Add(5*time.Hour)) || !strings.Contains(a.Summary, "too little traffic")) {
			t.Errorf("down resolved at %s: %q, want 15:00 and why", a.ResolvedAt.Format("15:04"), a.Summary)
		}
	}
}
