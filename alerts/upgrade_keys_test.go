package alerts

import (
	"context"
	"testing"
	"time"

	"github.com/costpipe/costpipe/alerts/notify"
)

// An upgrade from the keys of the period start alone does not send a
// firing budget or forecast again: the notification delivered under its
// old key is final for its new one (a receiver's log in ClickHouse),
// while a forecast episode that began after that delivery is new; and a
// budget resolved after the upgrade reaches the receivers told under the
// old key.
func TestUpgradeKeepsNotificationsSentUnderOldKeys(t *testing.T) {
	t.Parallel()
	_, s := openStore(t)
	period := ts("2026-03-01T00:00:00Z")
	g := map[string]string{"tenant": "acme"}
	budget := &Alert{Rule: "b", Kind: KindBudget, Group: g, Threshold: "80%", ThresholdValue: 800, PeriodStart: period,
		ActiveAt: ts("2026-03-20T10:00:00Z"), FiredAt: ts("2026-03-20T10:00:00Z"), State: StateFiring}
	rb := &Rule{Name: "b", Kind: KindBudget, Notify: []string{"x"}, spec: &BudgetSpec{}}
	e := &Engine{cfg: &Config{}}

	// Before the upgrade: delivered under the old key.
	old, c := newDeliverer(t, s, "A", false)
	legacy := NotificationID("b", g, period, "80%", "firing")
	if legacy == budget.notificationID("firing") {
		t.Fatal("the old and new keys of a budget are the same: nothing to test")
	}
	old.Send(context.Background(), []Outgoing{{Receivers: []string{"x"}, Notification: notify.Notification{ID: legacy, Rule: "b", Type: notify.TypeFiring}}})
	waitIdle(t, old)
	if c.got[legacy+"/x"] != 1 {
		t.Fatalf("legacy delivery: %v", c.got)
	}

	// After it: the same crossing is not sent again, to x; a receiver
	// added since (y) gets it.
	o := e.outgoing(budget, rb, budget.FiredAt.Add(time.Hour))
	o.Receivers = []string{"x", "y"}
	d, c2 := newDeliverer(t, s, "B", false)
	if _, err := d.Send(context.Background(), []Outgoing{o}); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, d)
	if c2.got[o.Notification.ID+"/x"] != 0 || c2.got[o.Notification.ID+"/y"] != 1 {
		t.Errorf("after the upgrade: %v; want nothing to x, the firing one to y", c2.got)
	}
	// Resolved: x was told under the old key, so it hears the resolve.
	budget.State, budget.ResolvedAt = StateResolved, ts("2026-04-01T00:00:00Z")
	r := e.outgoing(budget, rb, budget.ResolvedAt)
	r.Receivers = []string{"x"}
	d.Send(context.Background(), []Outgoing{r})
	waitIdle(t, d)
	if c2.got[r.Notification.ID+"/x"] != 1 {
		t.Errorf("resolved after the upgrade: %v; want it sent to x", c2.got)
	}

	// A forecast: its old key is the period's, whatever the episode. An
	// episode that began after the old delivery is a new one, sent.
	fc := &Alert{Rule: "f", Kind: KindForecast, Group: g, PeriodStart: period, ActiveAt: ts("2026-03-03T00:00:00Z"),
		FiredAt: ts("2026-03-03T00:00:00Z"), State: StateFiring}
	rf := &Rule{Name: "f", Kind: KindForecast, Notify: []string{"x"}, spec: &ForecastSpec{}}
	fo := NotificationID("f", g, period, "", "firing")
	old.Send(context.Background(), []Outgoing{{Receivers: []string{"x"}, Notification: notify.Notification{ID: fo, Rule: "f", Type: notify.TypeFiring}}})
	waitIdle(t, old)
	first := e.outgoing(fc, rf, fc.FiredAt)
	first.Receivers = []string{"x"}
	d.Send(context.Background(), []Outgoing{first})
	waitIdle(t, d)
	if c2.got[first.Notification.ID+"/x"] != 0 {
		t.Errorf("the forecast episode sent under its old key was sent again: %v", c2.got)
	}
	fc.ActiveAt, fc.FiredAt = time.Now().Add(time.Hour), time.Now().Add(time.Hour) // began after the old delivery
	again := e.outgoing(fc, rf, fc.FiredAt)
	again.Receivers = []string{"x"}
	d.Send(context.Background(), []Outgoing{again})
	waitIdle(t, d)
	if c2.got[again.Notification.ID+"/x"] != 1 {
		t.Errorf("a forecast episode after the old delivery was not sent: %v", c2.got)
	}
}
