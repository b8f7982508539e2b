package alerts

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/costpipe/costpipe/alerts/notify"
	"github.com/costpipe/costpipe/analytics"
)

// fixedUsage answers Usage with the rows it is set to (one provider's
// calls and errors), whatever the range; the other questions with nothing.
type fixedUsage struct {
	Source
	mu   sync.Mutex
	rows []analytics.UsageRow
}

func (f *fixedUsage) set(requests, errors uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows = []analytics.UsageRow{{Group: map[analytics.Dim]string{analytics.DimProvider: "openai"}, Requests: requests, Errors: errors}}
}

func (f *fixedUsage) Usage(context.Context, analytics.UsageQuery) ([]analytics.UsageRow, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rows), nil
}

// onlyAlert returns the engine's one alert's state, or "none".
func onlyAlert(t *testing.T, as []*Alert) State {
	t.Helper()
	switch len(as) {
	case 0:
		return "none"
	case 1:
		return as[0].State
	}
	t.Fatalf("%d alerts, want at most 1", len(as))
	return ""
}

// TestForCountsFromTheCurrentRun: an alert that was pending and stopped
// holding is stored as inactive, so that when its condition holds again
// hours later its `for` delay counts from then, through the real state
// table: the stored pending row used to come back at every tick with its
// old start, and the alert fired at the first evaluation of the new run.
func TestForCountsFromTheCurrentRun(t *testing.T) {
	t.Parallel()
	src := &fixedUsage{}
	o := newOutageRunner(t, `
rules:
  - {name: errs, kind: error_rate, by: [provider], threshold_pct: 5, min_requests: 10, for: 1h}
`, func(s Source) Source { src.Source = s; return src })
	src.set(100, 50) // 50% errors: holds
	if err := o.tick(t); err != nil {
		t.Fatal(err)
	}
	if s := onlyAlert(t, o.r.engine.Alerts()); s != StatePending {
		t.Fatalf("holding: %s, want pending", s)
	}
	src.set(100, 0)
	for range 36 { // three hours healthy
		o.advance(5 * time.Minute)
		if err := o.tick(t); err != nil {
			t.Fatal(err)
		}
	}
	src.set(100, 50)
	o.advance(5 * time.Minute)
	if err := o.tick(t); err != nil {
		t.Fatal(err)
	}
	as := o.r.engine.Alerts()
	if s := onlyAlert(t, as); s != StatePending || !as[0].ActiveAt.Equal(o.now()) {
		t.Errorf("holding again 3 h later: %s since %v, want pending since %v (for: 1h)", s, as[0].ActiveAt, o.now())
	}
}

// TestTooLittleDataKeepsTheState: a firing error-rate alert neither
// resolves nor changes on fewer calls than min_requests that do not
// decide the rate (a provider's callers backing off during its outage),
// and resolves on enough healthy calls; a group first seen with too few
// calls to decide does not start pending. (Fewer calls with more errors
// than threshold × min_requests do decide: see
// TestLifecycleFewCallsDecide.)
func TestTooLittleDataKeepsTheState(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, `
rules:
  - {name: errs, kind: error_rate, by: [provider], threshold_pct: 5, min_requests: 100}
`)
	src := &fixedUsage{}
	e := NewEngine(cfg, src)
	now := ts("2026-03-10T09:00:00Z")
	step := func(requests, errors uint64, want State) {
		t.Helper()
		src.set(requests, errors)
		now = now.Add(30 * time.Second)
		if _, failed := e.Eval(context.Background(), now); len(failed) > 0 {
			t.Fatal(failed)
		}
		if s := onlyAlert(t, e.Alerts()); s != want {
			t.Errorf("%d calls, %d errors: %s, want %s", requests, errors, s, want)
		}
	}
	step(20, 2, "none") // 2 errors: 82 of 100 calls could fail, or 2: unknown, nothing starts
	step(500, 400, StateFiring)
	step(20, 5, StateFiring) // 5 errors of 20 calls (25%): 5 to 85 of 100 calls, unknown, still firing
	step(20, 0, StateFiring) // 0% of 20 calls: unknown too
	step(500, 0, StateResolved)
}

// TestResolvedFollowsARepeat: an alert that fires under a silence longer
// than repeat_interval is first delivered as a repeat (firing-r1); when it
// resolves, the receiver that got that repeat gets the resolved
// notification too (it required the first firing notification, which no
// receiver ever got, so the incident stayed open at the receiver).
func TestResolvedFollowsARepeat(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, `
group_wait: 0s
receivers: [{name: l, type: log}]
rules:
  - {name: errs, kind: error_rate, by: [provider], threshold_pct: 5, min_requests: 10, notify: [l]}
`)
	src := &fixedUsage{}
	e := NewEngine(cfg, src)
	t0 := ts("2026-03-10T09:00:00Z")
	silenceEnd := t0.Add(5 * time.Hour) // longer than the default repeat_interval, 4 h
	silenced := func(now time.Time) func(*Alert, *Rule) bool {
		return func(*Alert, *Rule) bool { return now.Before(silenceEnd) }
	}
	delivered := map[string]bool{}
	var resolved bool
	for now := t0; now.Before(t0.Add(8 * time.Hour)); now = now.Add(10 * time.Minute) {
		if now.Before(t0.Add(6 * time.Hour)) {
			src.set(100, 50)
		} else {
			src.set(100, 0)
		}
		e.Eval(context.Background(), now)
		for _, o := range e.Due(now, silenced(now)) {
			// What Deliverer.Send requires of a resolved notification.
			if len(o.Requires) > 0 && !slices.ContainsFunc(o.Requires, func(id string) bool { return delivered[id] }) {
				continue
			}
			delivered[o.Notification.ID] = true
			resolved = resolved || o.Notification.Type == notify.TypeResolved
			e.Flushed("errs", now)
		}
	}
	if len(delivered) == 0 || !resolved {
		t.Errorf("delivered %v: want a repeat after the silence, then the resolved notification", delivered)
	}
}
