package alerts

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/costpipe/costpipe/alerts/notify"
)

// deliveryLog does in memory what Deliverer.Send does with what is due:
// an ID once delivered is never sent again (the notification log), and a
// resolved notification goes out only after one of the firing IDs it
// requires.
type deliveryLog struct {
	delivered map[string]bool
	sent      []notify.Notification
}

func newDeliveryLog() *deliveryLog { return &deliveryLog{delivered: map[string]bool{}} }

// send delivers what e has due at now and returns it; the rules that sent
// something are flushed, as Runner.Tick does.
func (l *deliveryLog) send(e *Engine, now time.Time) []notify.Notification {
	var out []notify.Notification
	rules := map[string]bool{}
	for _, o := range e.Due(now, nil) {
		n := o.Notification
		if l.delivered[n.ID] {
			continue
		}
		if len(o.Requires) > 0 && !slices.ContainsFunc(o.Requires, func(id string) bool { return l.delivered[id] }) {
			continue
		}
		l.delivered[n.ID] = true
		rules[n.Rule] = true
		out = append(out, n)
	}
	for r := range rules {
		e.Flushed(r, now)
	}
	l.sent = append(l.sent, out...)
	return out
}

// types are the notification types of ns, in order.
func types(ns []notify.Notification) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Type
	}
	return out
}

// evalOK evaluates e at now and fails the test on a rule error.
func evalOK(t *testing.T, e *Engine, now time.Time) {
	t.Helper()
	if _, failed := e.Eval(context.Background(), now); len(failed) > 0 {
		t.Fatalf("at %s: %v", now.Format(time.RFC3339), failed[0].Err)
	}
}

// restarted is a new engine over cfg and src holding copies of e's
// alerts with their times cut to seconds, as the state table stores them
// (a restart, or a second replica reading the shared state).
func restarted(e *Engine, cfg *Config, src Source) *Engine {
	var as []*Alert
	for _, a := range e.Alerts() {
		c := *a
		c.Group = maps.Clone(a.Group)
		for _, tm := range []*time.Time{&c.ActiveAt, &c.FiredAt, &c.LastActive, &c.ResolvedAt, &c.PeriodStart, &c.PeriodEnd} {
			*tm = tm.Truncate(time.Second)
		}
		as = append(as, &c)
	}
	n := NewEngine(cfg, src)
	n.Restore(as)
	return n
}
