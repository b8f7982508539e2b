package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/costpipe/costpipe/alerts/notify"
	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/whtest"
	"github.com/costpipe/costpipe/warehouse"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// openStore migrates a fresh database on the shared server.
func openStore(t *testing.T) (*warehouse.Warehouse, *Store) {
	t.Helper()
	srv := chtest.Shared(t)
	w := whtest.Migrated(t, srv.DSN(srv.NewDatabase(t)))
	return w, NewStore(w, time.Now)
}

// counter is an Enqueuer that delivers at once and reports the result.
type counter struct {
	mu   sync.Mutex
	got  map[string]int
	fail bool
	d    *Deliverer
}

func (c *counter) Enqueue(receiver string, n notify.Notification) bool {
	c.mu.Lock()
	c.got[n.ID+"/"+receiver]++
	c.mu.Unlock()
	var err error
	if c.fail {
		err = notify.ErrClosed
	}
	go c.d.Result(notify.Result{Receiver: receiver, ID: n.ID, Attempts: 1, Err: err, At: time.Now()})
	return true
}

// snapshot is a copy of what was delivered so far.
func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.got)
}

func newDeliverer(t *testing.T, s *Store, replica string, fail bool) (*Deliverer, *counter) {
	o := DefaultDeliverOptions()
	o.Replica, o.Settle, o.Lease = replica, time.Second, 4*time.Second
	d, err := NewDeliverer(s, o)
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{got: map[string]int{}, d: d, fail: fail}
	d.SetOutput(c)
	return d, c
}

func waitIdle(t *testing.T, ds ...*Deliverer) {
	deadline := time.Now().Add(10 * time.Second)
	for _, d := range ds {
		for d.Inflight() > 0 {
			if time.Now().After(deadline) {
				t.Fatal("outcomes not recorded")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Two replicas sending the same due notifications at the same time
// deliver each (notification, receiver) once; a restarted replica sends
// nothing already delivered; a resolved notification goes only to the
// receivers that got the firing one; a release (shutdown before an
// answer) lets it be claimed again at once.
func TestDeliverOnceAcrossReplicas(t *testing.T) {
	// Not parallel: its lease window is measured in wall time.
	_, s := openStore(t)
	due := func(round, n int) []Outgoing {
		var out []Outgoing
		for i := range n {
			g := map[string]string{"tenant": fmt.Sprintf("t%d-%d", round, i)}
			out = append(out, Outgoing{Receivers: []string{"x", "y"}, Notification: notify.Notification{
				ID: NotificationID("r", g, ts("2026-03-01T00:00:00Z"), "80%", "firing"), Type: notify.TypeFiring, Rule: "r", Group: g}})
		}
		return out
	}
	for round := range 5 {
		a, ca := newDeliverer(t, s, "A", false)
		b, cb := newDeliverer(t, s, "B", false)
		items := due(round, 1+round)
		var wg sync.WaitGroup
		for _, d := range []*Deliverer{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := d.Send(context.Background(), items); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		waitIdle(t, a, b)
		total := map[string]int{}
		for _, c := range []*counter{ca, cb} {
			for k, v := range c.got {
				total[k] += v
			}
		}
		if len(total) != 2*len(items) {
			t.Fatalf("round %d: %d pairs delivered, want %d: %v", round, len(total), 2*len(items), total)
		}
		for k, v := range total {
			if v != 1 {
				t.Errorf("round %d: %s delivered %d times", round, k, v)
			}
		}
		// A restarted replica (new id) sends nothing again.
		c2, cc := newDeliverer(t, s, "C", false)
		if sent, err := c2.Send(context.Background(), items); err != nil || len(sent) != 0 || len(cc.got) != 0 {
			t.Errorf("after restart: sent %v err %v", sent, err)
		}
	}
	// Resolved: only to receivers that got the firing one.
	g := map[string]string{"tenant": "z"}
	firing := NotificationID("r", g, ts("2026-03-01T00:00:00Z"), "", "firing")
	d, c := newDeliverer(t, s, "D", false)
	d.Send(context.Background(), []Outgoing{{Receivers: []string{"x"}, Notification: notify.Notification{ID: firing, Rule: "r", Type: notify.TypeFiring}}})
	waitIdle(t, d)
	resolved := NotificationID("r", g, ts("2026-03-01T00:00:00Z"), "", "resolved")
	d.Send(context.Background(), []Outgoing{{Receivers: []string{"x", "y"}, Requires: []string{firing}, Notification: notify.Notification{ID: resolved, Rule: "r", Type: notify.TypeResolved}}})
	waitIdle(t, d)
	if c.got[resolved+"/x"] != 1 || c.got[resolved+"/y"] != 0 {
		t.Errorf("resolved: %v", c.got)
	}
	// Released by a closing dispatcher: claimed again right away.
	e, ce := newDeliverer(t, s, "E", true)
	item := []Outgoing{{Receivers: []string{"x"}, Notification: notify.Notification{ID: "cpa_release", Rule: "r"}}}
	e.Send(context.Background(), item)
	waitIdle(t, e)
	f, cf := newDeliverer(t, s, "F", false)
	f.Send(context.Background(), item)
	waitIdle(t, f)
	if ce.got["cpa_release/x"] != 1 || cf.got["cpa_release/x"] != 1 {
		t.Errorf("release: %v %v", ce.got, cf.got)
	}
	// A claim whose claimant died without an outcome blocks until the
	// lease expires, then is sent again (same ID).
	g2, _ := newDeliverer(t, s, "G", false)
	g2.SetOutput(enqueueNothing{})
	crash := []Outgoing{{Receivers: []string{"x"}, Notification: notify.Notification{ID: "cpa_crash", Rule: "r"}}}
	g2.Send(context.Background(), crash)
	h, ch := newDeliverer(t, s, "H", false)
	h.Send(context.Background(), crash)
	if len(ch.got) != 0 {
		t.Errorf("sent during another claim's lease: %v", ch.got)
	}
	time.Sleep(4 * time.Second)
	h.Send(context.Background(), crash)
	waitIdle(t, h)
	if ch.got["cpa_crash/x"] != 1 {
		t.Errorf("after the lease: %v", ch.got)
	}
}

// enqueueNothing accepts and never answers: a claimant that died.
type enqueueNothing struct{}

func (enqueueNothing) Enqueue(string, notify.Notification) bool { return true }

func TestStoreStateAndSilences(t *testing.T) {
	t.Parallel()
	_, s := openStore(t)
	ctx := context.Background()
	a := &Alert{Rule: "r", Kind: KindBudget, Group: map[string]string{"tenant": "acme"}, Threshold: "80%", State: StateFiring,
		ActiveAt: ts("2026-03-05T10:00:00Z"), FiredAt: ts("2026-03-05T10:00:00Z"), LastActive: ts("2026-03-05T11:00:00Z"),
		PeriodStart: ts("2026-03-01T00:00:00Z"), PeriodEnd: ts("2026-04-01T00:00:00Z"), Value: 812.5, ThresholdValue: 800, Summary: "s"}
	if err := s.SaveAlerts(ctx, "A", []*Alert{a}); err != nil {
		t.Fatal(err)
	}
	b := *a
	b.State, b.ResolvedAt = StateResolved, ts("2026-04-01T00:00:30Z")
	time.Sleep(time.Millisecond)
	if err := s.SaveAlerts(ctx, "B", []*Alert{&b}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadAlerts(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	if g := got[0]; g.State != StateResolved || !g.ResolvedAt.Equal(b.ResolvedAt) || g.Group["tenant"] != "acme" || g.Value != 812.5 || !g.ActiveAt.Equal(a.ActiveAt) {
		t.Errorf("loaded %+v", g)
	}
	sil := Silence{ID: "s1", Matchers: map[string]string{"tenant": "acme"}, StartsAt: time.Now().Add(-time.Minute).Truncate(time.Second),
		EndsAt: time.Now().Add(time.Hour).Truncate(time.Second), CreatedBy: "me", Comment: "load test"}
	if err := s.AddSilence(ctx, sil); err != nil {
		t.Fatal(err)
	}
	ss, err := s.Silences(ctx, false)
	if err != nil || len(ss) != 1 || ss[0].Matchers["tenant"] != "acme" || !ss[0].EndsAt.Equal(sil.EndsAt) {
		t.Fatalf("silences %+v %v", ss, err)
	}
	time.Sleep(time.Millisecond)
	if err := s.ExpireSilence(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if ss, _ := s.Silences(ctx, false); len(ss) != 0 {
		t.Errorf("after expire: %+v", ss)
	}
	if ss, _ := s.Silences(ctx, true); len(ss) != 1 {
		t.Errorf("all: %+v", ss)
	}
	if err := s.ExpireSilence(ctx, "nope"); err == nil {
		t.Error("expired a silence that does not exist")
	}
}

// A silence whose start or end a DateTime column cannot hold (it would be
// stored wrapped: an end in 2141 as 2004) is refused, naming the field;
// the alert state's times are clamped to what is stored correctly.
func TestStoreRefusesTimesOutsideDateTime(t *testing.T) {
	t.Parallel()
	_, s := openStore(t)
	ctx := context.Background()
	start := ts("2026-03-01T00:00:00Z")
	for _, tc := range []struct {
		name       string
		start, end time.Time
		want       string
	}{
		{"end after 2106", start, start.Add(999999 * time.Hour), "ends_at 2140-03-29T15:00:00Z is after 2106-02-06T00:00:00Z"},
		{"end on the last day", start, ts("2106-02-06T00:00:01Z"), "ends_at 2106-02-06T00:00:01Z is after 2106-02-06T00:00:00Z"},
		{"start before 1970", ts("1900-01-01T00:00:00Z"), start, "starts_at 1900-01-01T00:00:00Z is before 1970-01-01T00:00:00Z"},
		{"end before start", start, start.Add(-time.Hour), "ends_at 2026-02-28T23:00:00Z is not after starts_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.AddSilence(ctx, Silence{ID: "s-" + tc.name, Matchers: map[string]string{"rule": "x"}, StartsAt: tc.start, EndsAt: tc.end})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("AddSilence = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if err := s.AddSilence(ctx, Silence{ID: "s-max", Matchers: map[string]string{"rule": "x"}, StartsAt: MinTime, EndsAt: MaxTime}); err != nil {
		t.Fatal(err)
	}
	ss, err := s.Silences(ctx, true)
	if err != nil || len(ss) != 1 || !ss[0].EndsAt.Equal(MaxTime) || !ss[0].StartsAt.Equal(MinTime) {
		t.Fatalf("silences %+v %v", ss, err)
	}

	a := &Alert{Rule: "r", Kind: KindBudget, Group: map[string]string{}, State: StateFiring, ActiveAt: start, FiredAt: start,
		LastActive: start, PeriodStart: start, PeriodEnd: ts("2200-01-01T00:00:00Z")}
	if err := s.SaveAlerts(ctx, "A", []*Alert{a}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadAlerts(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	if !got[0].PeriodEnd.Equal(MaxTime) {
		t.Errorf("period end 2200 stored as %s, want %s", got[0].PeriodEnd, MaxTime)
	}
}

// flaky is a receiver that fails while down is set, and counts calls.
type flaky struct {
	mu    sync.Mutex
	down  bool
	calls map[string]int
	last  notify.Notification
}

func (*flaky) Name() string { return "x" }

func (f *flaky) Deliver(_ context.Context, n notify.Notification) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[n.ID]++
	f.last = n
	if f.down {
		return fmt.Errorf("503 from the receiver")
	}
	return nil
}

func (f *flaky) set(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *flaky) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

// A receiver outage longer than one round of attempts does not lose the
// notification: the round is deferred and claimed again at a later
// evaluation (not before RetryPause), until GiveUp from the first claim;
// only then is it dead. Through the real dispatcher and notification log.
func TestFailedRoundIsRetriedUntilGiveUp(t *testing.T) {
	t.Parallel()
	_, s := openStore(t)
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	o := DefaultDeliverOptions()
	o.Replica, o.Settle, o.Lease, o.Now = "A", 300*time.Millisecond, 5*time.Minute, now
	o.GiveUp, o.RetryPause, o.Logger = time.Hour, time.Minute, slog.New(slog.DiscardHandler)
	d, err := NewDeliverer(s, o)
	if err != nil {
		t.Fatal(err)
	}
	rcv := &flaky{down: true, calls: map[string]int{}}
	disp, err := notify.NewDispatcher([]notify.Receiver{rcv}, notify.WithMaxAttempts(2), notify.WithBackoff(time.Millisecond, time.Millisecond),
		notify.WithClock(notify.ClockFunc(now)), notify.WithResults(d.Result), notify.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disp.Close(context.Background()) })
	d.SetOutput(disp)
	item := func(id string) []Outgoing {
		return []Outgoing{{Receivers: []string{"x"}, Notification: notify.Notification{ID: id, Rule: "r", Type: notify.TypeFiring}}}
	}
	send := func(id string) int {
		t.Helper()
		sent, err := d.Send(context.Background(), item(id))
		if err != nil {
			t.Fatal(err)
		}
		waitIdle(t, d)
		return sent["r"]
	}
	status := func(id string) []string {
		t.Helper()
		rows, err := s.logRows(context.Background(), []string{id})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			if r.Status != logSending {
				out = append(out, fmt.Sprintf("%d:%s", r.Round, r.Status))
			}
		}
		slices.Sort(out)
		return out
	}

	// An outage of one round, then the receiver is back.
	first := now()
	if n := send("cpa_outage"); n != 1 || rcv.count("cpa_outage") != 2 {
		t.Fatalf("first round: sent %d, %d calls, want 1 and 2", n, rcv.count("cpa_outage"))
	}
	// Attempts stop a settle time before another replica may take the
	// claim over; rounds are retried for GiveUp from the first claim.
	if got := rcv.last; !got.Deadline.Equal(first.Add(o.Lease-o.Settle)) || !got.RetryUntil.Equal(first.Add(o.GiveUp)) {
		t.Errorf("deadline %s, retry until %s; want %s and %s", got.Deadline, got.RetryUntil, first.Add(o.Lease-o.Settle), first.Add(o.GiveUp))
	}
	if got := status("cpa_outage"); !slices.Equal(got, []string{"0:deferred"}) {
		t.Fatalf("after a failed round the log says %v, want [0:deferred] (not dead)", got)
	}
	advance(30 * time.Second)
	if n := send("cpa_outage"); n != 0 {
		t.Errorf("claimed again %d time(s) within the retry pause", n)
	}
	rcv.set(false)
	advance(time.Minute)
	if n := send("cpa_outage"); n != 1 || rcv.count("cpa_outage") != 3 {
		t.Fatalf("after the pause: sent %d, %d calls, want 1 and 3", n, rcv.count("cpa_outage"))
	}
	if got := status("cpa_outage"); !slices.Equal(got, []string{"0:deferred", "1:delivered"}) {
		t.Errorf("log %v, want [0:deferred 1:delivered]", got)
	}
	if n := send("cpa_outage"); n != 0 {
		t.Errorf("delivered notification claimed again %d time(s)", n)
	}

	// A receiver down for longer than GiveUp: dead after the first round
	// that ends past it, and never claimed again.
	rcv.set(true)
	send("cpa_gone")
	for range 3 {
		advance(25 * time.Minute)
		send("cpa_gone")
	}
	if got := status("cpa_gone"); !slices.Equal(got, []string{"0:deferred", "1:deferred", "2:deferred", "3:dead"}) {
		t.Errorf("log %v, want three deferred rounds, then dead past the hour", got)
	}
	advance(25 * time.Minute)
	if n := send("cpa_gone"); n != 0 || rcv.count("cpa_gone") != 8 {
		t.Errorf("dead notification: sent %d, %d calls in all, want 0 and 8", n, rcv.count("cpa_gone"))
	}
}

// A burst of notifications due at once (an outage that fires an alert for
// every tenant) is claimed group by group: on a server slow enough that
// checking and claiming the whole burst overran half the settle time, it
// was given up whole at every tick and nothing was sent.
func TestClaimBurstOnASlowServer(t *testing.T) {
	t.Parallel()
	_, s := openStore(t)
	s.slowLogReads = 60 * time.Millisecond // 4 log reads of 500 ids: 240 ms
	o := DefaultDeliverOptions()
	o.Replica, o.Settle, o.Lease = "A", 400*time.Millisecond, 4*time.Second
	d, err := NewDeliverer(s, o)
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{got: map[string]int{}, d: d}
	d.SetOutput(c)
	due := burst("t", 8*claimGroup)
	// Each evaluation offers the burst again; a loaded machine may give up
	// a late group now and then, never all of them.
	for tick := 0; tick < 10 && len(c.snapshot()) < len(due); tick++ {
		sent, err := d.Send(context.Background(), due)
		if err != nil {
			t.Logf("tick %d: sent %v, %v", tick, sent, err)
		}
		waitIdle(t, d)
	}
	got := c.snapshot()
	if len(got) != len(due) {
		t.Fatalf("%d of %d notifications of a burst delivered after 10 evaluations", len(got), len(due))
	}
	for k, n := range got {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}
}

// The dispatcher's results are written to the log in batches: a receiver
// worker reporting a burst of outcomes is not held up by an insert per
// outcome (each here 50 ms: 1,000 outcomes took 50 s and made 1,000 parts),
// and Close waits until they are written.
func TestOutcomesRecordedInBatches(t *testing.T) {
	// Not parallel: its hand-over is bounded in wall time.
	_, s := openStore(t)
	d, _ := newDeliverer(t, s, "A", false)
	due := burst("t", 1000)
	q := &queue{}
	d.SetOutput(q)
	if sent, err := d.Send(context.Background(), due); err != nil || sent["r"] != len(due) {
		t.Fatalf("sent %v, %v", sent, err)
	}
	s.slowLogWrites = 50 * time.Millisecond
	start := time.Now()
	for _, id := range q.ids {
		d.Result(notify.Result{Receiver: "x", ID: id, Attempts: 1, At: time.Now()})
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("1,000 results took %s to hand over (an insert each?)", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := d.Inflight(); n != 0 {
		t.Errorf("%d notifications still in flight after Close", n)
	}
	if delivered := deliveredIn(t, s); delivered != len(due) {
		t.Errorf("%d outcomes recorded as delivered after Close, want %d", delivered, len(due))
	}
}

// queue is an Enqueuer that keeps the notifications it is given.
type queue struct {
	mu  sync.Mutex
	ids []string
}

func (q *queue) Enqueue(receiver string, n notify.Notification) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids = append(q.ids, n.ID)
	return true
}

// An outcome batch whose insert fails is written again (its notifications
// still in flight, so no round of theirs is claimed again meanwhile):
// giving up at once sent the whole batch again after the lease for one
// failed insert.
func TestOutcomeWriteRetried(t *testing.T) {
	t.Parallel()
	_, s := openStore(t)
	d, _ := newDeliverer(t, s, "A", false)
	q := &queue{}
	d.SetOutput(q)
	due := burst("retried", 20)
	if sent, err := d.Send(context.Background(), due); err != nil || sent["r"] != len(due) {
		t.Fatalf("sent %v, %v", sent, err)
	}
	var fails atomic.Int32
	fails.Store(2)
	s.beforeLogWrite = func() error {
		if fails.Add(-1) >= 0 {
			return errors.New("injected failure")
		}
		return nil
	}
	for _, id := range q.ids {
		d.Result(notify.Result{Receiver: "x", ID: id, Attempts: 1, At: time.Now()})
	}
	if n := d.Inflight(); n != len(due) {
		t.Errorf("%d in flight while their outcomes wait to be written, want %d", n, len(due))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := deliveredIn(t, s); n != len(due) {
		t.Errorf("%d outcomes recorded as delivered after two failed inserts, want %d", n, len(due))
	}
}

// A group given up (its claim insert failed) is reported with the rules it
// held, while the groups before it are sent: the runner does not start
// those rules' group_interval, so the rest goes out at the next evaluation.
func TestSendReportsGivenUpRules(t *testing.T) {
	t.Parallel()
	_, s := openStore(t)
	d, c := newDeliverer(t, s, "A", false)
	due := append(burst("a", claimGroup+10), burst("b", 5)...)
	for i := range due {
		due[i].Notification.Rule = map[bool]string{true: "a", false: "b"}[i < claimGroup+10]
	}
	// Set once, before any write (the outcome writer reads it too).
	var writes atomic.Int32
	s.beforeLogWrite = func() error {
		if writes.Add(1) == 2 { // the second group's claim
			return errors.New("injected failure")
		}
		return nil
	}
	sent, err := d.Send(context.Background(), due)
	var gu *GivenUpError
	if !errors.As(err, &gu) || !gu.Rules["a"] || !gu.Rules["b"] || len(gu.Rules) != 2 {
		t.Fatalf("err %v, want a GivenUpError naming rules a and b", err)
	}
	if sent["a"] != claimGroup || sent["b"] != 0 {
		t.Errorf("sent %v, want the first group's %d of rule a", sent, claimGroup)
	}
	waitIdle(t, d)
	// The next evaluation sends the rest, once.
	if sent, err := d.Send(context.Background(), due); err != nil || sent["a"] != 10 || sent["b"] != 5 {
		t.Fatalf("second Send: sent %v, %v; want the 15 given up", sent, err)
	}
	waitIdle(t, d)
	for k, n := range c.snapshot() {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}
}

// burst is n due notifications of rule r to receiver x, one per tenant.
func burst(prefix string, n int) []Outgoing {
	var due []Outgoing
	for i := range n {
		g := map[string]string{"tenant": fmt.Sprintf("%s-%d", prefix, i)}
		due = append(due, Outgoing{Receivers: []string{"x"}, Notification: notify.Notification{
			ID: NotificationID("r", g, ts("2026-03-01T00:00:00Z"), "80%", "firing"), Type: notify.TypeFiring, Rule: "r", Group: g}})
	}
	return due
}

// deliveredIn counts the log's delivered rows.
func deliveredIn(t *testing.T, s *Store) int {
	t.Helper()
	log, err := s.Log(context.Background(), time.Time{}, 100000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range log {
		if e.Status == logDelivered {
			n++
		}
	}
	return n
}
