package notify

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var quietLogger = slog.New(slog.DiscardHandler)

// newTestDispatcher starts a dispatcher with a fake clock, a registry and
// a results collector, closed at the end of the test.
func newTestDispatcher(t *testing.T, receivers []Receiver, opts ...Opt) (*Dispatcher, *fakeClock, *prometheus.Registry, *results) {
	t.Helper()
	clock := newFakeClock()
	reg := prometheus.NewRegistry()
	res := newResults()
	all := append([]Opt{WithClock(clock), WithRegisterer(reg), WithResults(res.add), WithLogger(quietLogger)}, opts...)
	d, err := NewDispatcher(receivers, all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // whatever is left is reported dead at once
		_ = d.Close(ctx)
	})
	return d, clock, reg, res
}

// A receiver that fails its first 3 attempts gets the notification exactly
// once: one 2xx, Result.Attempts == 4, every attempt signed with the same
// webhook-id.
func TestRetriesThenDeliversOnce(t *testing.T) {
	var ok2xx atomic.Int32
	rec := newRecorder(t, func(n int, w http.ResponseWriter) int {
		if n < 3 {
			return http.StatusServiceUnavailable
		}
		ok2xx.Add(1)
		return http.StatusOK
	})
	var clock *fakeClock
	hook := newTestWebhook(t, rec.srv.URL, func() time.Time { return clock.Now() }, testSecret1)
	d, clock, reg, res := newTestDispatcher(t, []Receiver{hook}, withJitter(func() float64 { return 1 }))
	if !d.Enqueue("hook", testNotification("once-1")) {
		t.Fatal("Enqueue refused")
	}
	r := res.next(t)
	if r.Err != nil || r.Attempts != 4 || r.Receiver != "hook" || r.ID != "once-1" {
		t.Fatalf("Result = %+v, want delivered after 4 attempts", r)
	}
	if n := ok2xx.Load(); n != 1 {
		t.Errorf("%d 2xx answers, want exactly 1", n)
	}
	reqs := rec.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4", len(reqs))
	}
	for i, q := range reqs {
		if q.header.Get("webhook-id") != "once-1" {
			t.Errorf("attempt %d: webhook-id %q", i+1, q.header.Get("webhook-id"))
		}
		ts, _ := strconv.ParseInt(q.header.Get("webhook-timestamp"), 10, 64)
		if err := verifyStandardWebhook(testSecret1, q.header, q.body, time.Unix(ts, 0)); err != nil {
			t.Errorf("attempt %d: %v", i+1, err)
		}
	}
	// Backoff 1 s doubling (jitter at its top): 1 s, 2 s, 4 s of fake time.
	if got, want := clock.Sleeps(), []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("sleeps = %v, want %v", got, want)
	}
	if got := r.At.Sub(newFakeClock().Now()); got != 7*time.Second {
		t.Errorf("Result.At is %s after the start, want 7s", got)
	}
	for result, want := range map[string]float64{"delivered": 1, "retried": 3, "dead": 0, "dropped": 0} {
		if got := metricValue(t, reg, "costpipe_alerts_notifications_total", map[string]string{"receiver": "hook", "result": result}); got != want {
			t.Errorf("notifications_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	if got := metricValue(t, reg, "costpipe_alerts_delivery_seconds", map[string]string{"receiver": "hook"}); got != 4 {
		t.Errorf("delivery_seconds count = %v, want 4 attempts", got)
	}
}

// blockingServer never answers until released (or the request is cut).
func blockingServer(t *testing.T) (srv *httptest.Server, arrived chan string, release func()) {
	t.Helper()
	arrived = make(chan string, 100)
	gate := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- r.Header.Get("webhook-id")
		select {
		case <-gate:
		case <-r.Context().Done():
		}
	}))
	var released atomic.Bool
	release = func() {
		if released.CompareAndSwap(false, true) {
			close(gate)
		}
	}
	t.Cleanup(srv.Close)
	t.Cleanup(release) // runs before srv.Close
	return srv, arrived, release
}

func waitArrived(t *testing.T, arrived chan string) string {
	t.Helper()
	select {
	case id := <-arrived:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("no request within 10 s")
		return ""
	}
}

// A receiver that never answers does not delay another receiver: the fast
// one's notifications are all delivered while the first request to the
// dead one is still open.
func TestDeadReceiverDoesNotDelayOthers(t *testing.T) {
	dead, arrived, _ := blockingServer(t)
	fast := newRecorder(t, nil)
	deadHook := newTestWebhook(t, dead.URL, time.Now, testSecret1)
	deadHook.name = "dead"
	fastHook := newTestWebhook(t, fast.srv.URL, time.Now, testSecret1)
	fastHook.name = "fast"
	d, _, _, res := newTestDispatcher(t, []Receiver{deadHook, fastHook}, WithAttemptTimeout(time.Hour))
	// The dead receiver gets its notification first and holds it.
	d.Enqueue("dead", testNotification("d-1"))
	if id := waitArrived(t, arrived); id != "d-1" {
		t.Fatalf("dead receiver got %q", id)
	}
	for i := range 5 {
		d.Enqueue("dead", testNotification("d-"+strconv.Itoa(i+2)))
		if !d.Enqueue("fast", testNotification("f-"+strconv.Itoa(i))) {
			t.Fatal("fast receiver's queue refused")
		}
	}
	for i := range 5 {
		r := res.next(t)
		if r.Receiver != "fast" || r.Err != nil || r.ID != "f-"+strconv.Itoa(i) {
			t.Fatalf("result %d = %+v, want f-%d delivered", i, r, i)
		}
	}
	if n := len(fast.requests()); n != 5 {
		t.Errorf("fast receiver got %d requests, want 5", n)
	}
	// The dead receiver is still on its first request.
	select {
	case r := <-res.ch:
		t.Errorf("unexpected result while the dead receiver blocks: %+v", r)
	case id := <-arrived:
		t.Errorf("dead receiver got a second request %q while the first is open", id)
	default:
	}
}

// A full queue drops, says so, and counts it.
func TestQueueFullDropIsCounted(t *testing.T) {
	srv, arrived, release := blockingServer(t)
	hook := newTestWebhook(t, srv.URL, time.Now, testSecret1)
	d, _, reg, res := newTestDispatcher(t, []Receiver{hook}, WithQueueSize(2), WithAttemptTimeout(time.Hour))
	d.Enqueue("hook", testNotification("q-1"))
	waitArrived(t, arrived) // q-1 is in flight, the queue is empty
	for _, id := range []string{"q-2", "q-3"} {
		if !d.Enqueue("hook", testNotification(id)) {
			t.Fatalf("%s refused with room in the queue", id)
		}
	}
	if got := metricValue(t, reg, "costpipe_alerts_queue_depth", map[string]string{"receiver": "hook"}); got != 2 {
		t.Errorf("queue_depth = %v, want 2", got)
	}
	if d.Enqueue("hook", testNotification("q-4")) {
		t.Fatal("Enqueue accepted beyond the queue size")
	}
	if got := metricValue(t, reg, "costpipe_alerts_queue_drops_total", map[string]string{"receiver": "hook"}); got != 1 {
		t.Errorf("queue_drops_total = %v, want 1", got)
	}
	if got := metricValue(t, reg, "costpipe_alerts_notifications_total", map[string]string{"receiver": "hook", "result": "dropped"}); got != 1 {
		t.Errorf("notifications_total{dropped} = %v, want 1", got)
	}
	if d.Enqueue("nobody", testNotification("q-5")) {
		t.Error("Enqueue accepted an unknown receiver")
	}
	release()
	var ids []string
	for range 3 {
		r := res.next(t)
		if r.Err != nil {
			t.Errorf("%s: %v", r.ID, r.Err)
		}
		ids = append(ids, r.ID)
	}
	if want := []string{"q-1", "q-2", "q-3"}; !slices.Equal(ids, want) {
		t.Errorf("delivered %q, want %q in order", ids, want)
	}
	if got := metricValue(t, reg, "costpipe_alerts_queue_depth", map[string]string{"receiver": "hook"}); got != 0 {
		t.Errorf("queue_depth after delivery = %v, want 0", got)
	}
}

// Close delivers everything queued before it returns, and accepts nothing
// after.
func TestCloseDrains(t *testing.T) {
	srv, arrived, release := blockingServer(t)
	hook := newTestWebhook(t, srv.URL, time.Now, testSecret1)
	res := newResults()
	d, err := NewDispatcher([]Receiver{hook}, WithResults(res.add), WithLogger(quietLogger), WithClock(newFakeClock()), WithAttemptTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		d.Enqueue("hook", testNotification("c-"+strconv.Itoa(i)))
	}
	waitArrived(t, arrived)
	closed := make(chan error, 1)
	go func() { closed <- d.Close(context.Background()) }()
	// Close waits for the blocked delivery; release the server only once
	// Close is refusing new notifications.
	for !d.isClosed() {
		time.Sleep(time.Millisecond)
	}
	if d.Enqueue("hook", testNotification("late")) {
		t.Fatal("Enqueue accepted during Close")
	}
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	got := res.snapshot()
	if len(got) != 5 {
		t.Fatalf("%d results when Close returned, want 5", len(got))
	}
	for _, r := range got {
		if r.Err != nil {
			t.Errorf("%s: %v", r.ID, r.Err)
		}
	}
	if err := d.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if d.Enqueue("hook", testNotification("after")) {
		t.Error("Enqueue accepted after Close")
	}
}

// When Close's context ends first, attempts in flight are cut and every
// notification left is reported with ErrClosed before Close returns; they
// are counted released, not dead (the next run delivers them: counting
// them dead, with an ERROR each, fired dead-letter alerts on every restart).
func TestCloseDeadlineReportsTheRestClosed(t *testing.T) {
	srv, arrived, _ := blockingServer(t)
	hook := newTestWebhook(t, srv.URL, time.Now, testSecret1)
	res := newResults()
	reg := prometheus.NewRegistry()
	d, err := NewDispatcher([]Receiver{hook}, WithResults(res.add), WithLogger(quietLogger), WithClock(newFakeClock()), WithAttemptTimeout(time.Hour),
		WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		d.Enqueue("hook", testNotification("x-"+strconv.Itoa(i)))
	}
	waitArrived(t, arrived)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want context.Canceled", err)
	}
	got := res.snapshot()
	if len(got) != 3 {
		t.Fatalf("%d results when Close returned, want 3", len(got))
	}
	for i, r := range got {
		wantAttempts := 0
		if i == 0 {
			wantAttempts = 1
		}
		if !errors.Is(r.Err, ErrClosed) || r.Attempts != wantAttempts {
			t.Errorf("result %d = %+v, want ErrClosed after %d attempts", i, r, wantAttempts)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "costpipe_alerts_notifications_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					counts[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	if counts["released"] != 3 || counts["dead"] != 0 {
		t.Errorf("notifications by result %v, want 3 released and none dead", counts)
	}
}

// Close cuts a backoff wait short.
func TestCloseCutsBackoff(t *testing.T) {
	rec := newRecorder(t, func(int, http.ResponseWriter) int { return http.StatusInternalServerError })
	hook := newTestWebhook(t, rec.srv.URL, time.Now, testSecret1)
	clock := newFakeClock()
	clock.block = true
	res := newResults()
	d, err := NewDispatcher([]Receiver{hook}, WithResults(res.add), WithLogger(quietLogger), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	d.Enqueue("hook", testNotification("b-1"))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the worker is in its backoff.
		for len(clock.Sleeps()) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if err := d.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v", err)
	}
	r := res.snapshot()
	if len(r) != 1 || r[0].Attempts != 1 || !errors.Is(r[0].Err, ErrClosed) ||
		!strings.Contains(r[0].Err.Error(), "500") {
		t.Fatalf("results = %+v", r)
	}
	if n := len(rec.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// A permanent 4xx is not retried.
func TestPermanentIsNotRetried(t *testing.T) {
	rec := newRecorder(t, func(int, http.ResponseWriter) int { return http.StatusUnprocessableEntity })
	hook := newTestWebhook(t, rec.srv.URL, time.Now, testSecret1)
	d, clock, reg, res := newTestDispatcher(t, []Receiver{hook})
	d.Enqueue("hook", testNotification("p-1"))
	r := res.next(t)
	if !errors.Is(r.Err, ErrPermanent) || r.Attempts != 1 {
		t.Fatalf("Result = %+v, want permanent after 1 attempt", r)
	}
	if n := len(rec.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if s := clock.Sleeps(); len(s) != 0 {
		t.Errorf("backoff %v before a permanent error", s)
	}
	if got := metricValue(t, reg, "costpipe_alerts_notifications_total", map[string]string{"receiver": "hook", "result": "dead"}); got != 1 {
		t.Errorf("dead = %v, want 1", got)
	}
	if got := metricValue(t, reg, "costpipe_alerts_notifications_total", map[string]string{"receiver": "hook", "result": "retried"}); got != 0 {
		t.Errorf("retried = %v, want 0", got)
	}
}

func TestMaxAttemptsThenDead(t *testing.T) {
	rec := newRecorder(t, func(int, http.ResponseWriter) int { return http.StatusBadGateway })
	hook := newTestWebhook(t, rec.srv.URL, time.Now, testSecret1)
	d, clock, _, res := newTestDispatcher(t, []Receiver{hook}, WithMaxAttempts(3))
	d.Enqueue("hook", testNotification("m-1"))
	r := res.next(t)
	if r.Err == nil || errors.Is(r.Err, ErrPermanent) || errors.Is(r.Err, ErrClosed) || r.Attempts != 3 {
		t.Fatalf("Result = %+v, want dead after 3 retryable failures", r)
	}
	if n := len(rec.requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	if s := clock.Sleeps(); len(s) != 2 {
		t.Errorf("sleeps %v, want 2", s)
	}
}

// Attempts used up on retryable errors before the notification's
// RetryUntil defer it (its sender offers it again later), not kill it;
// after RetryUntil, or on a permanent error, it is dead.
func TestDeferredUntilRetryUntil(t *testing.T) {
	status := http.StatusBadGateway
	var mu sync.Mutex
	rec := newRecorder(t, func(int, http.ResponseWriter) int { mu.Lock(); defer mu.Unlock(); return status })
	hook := newTestWebhook(t, rec.srv.URL, time.Now, testSecret1)
	d, clock, reg, res := newTestDispatcher(t, []Receiver{hook}, WithMaxAttempts(3))
	result := func(id string, retryUntil time.Time) Result {
		t.Helper()
		n := testNotification(id)
		n.RetryUntil = retryUntil
		d.Enqueue("hook", n)
		return res.next(t)
	}
	r := result("d-1", clock.Now().Add(time.Hour))
	if !errors.Is(r.Err, ErrDeferred) || r.Attempts != 3 || !strings.Contains(r.Err.Error(), "502") {
		t.Fatalf("Result = %+v, want deferred after 3 failures, with the last error", r)
	}
	if r := result("d-2", clock.Now().Add(-time.Second)); r.Err == nil || errors.Is(r.Err, ErrDeferred) || r.Attempts != 3 {
		t.Errorf("past RetryUntil: Result = %+v, want dead", r)
	}
	mu.Lock()
	status = http.StatusUnprocessableEntity
	mu.Unlock()
	if r := result("d-3", clock.Now().Add(time.Hour)); !errors.Is(r.Err, ErrPermanent) || errors.Is(r.Err, ErrDeferred) || r.Attempts != 1 {
		t.Errorf("permanent: Result = %+v, want dead at once", r)
	}
	for result, want := range map[string]float64{"deferred": 1, "dead": 2, "retried": 4} {
		if got := metricValue(t, reg, "costpipe_alerts_notifications_total", map[string]string{"receiver": "hook", "result": result}); got != want {
			t.Errorf("%s = %v, want %v", result, got, want)
		}
	}
}

// A notification is not attempted when its Deadline (its sender's hold on
// it) leaves no room for an attempt's timeout, before the first attempt
// (it waited in the queue) or before a retry: ErrExpired, counted
// released, no sleep that cannot lead to an attempt.
func TestDeadlineLeavesItToTheSender(t *testing.T) {
	rec := newRecorder(t, func(int, http.ResponseWriter) int { return http.StatusServiceUnavailable })
	hook := newTestWebhook(t, rec.srv.URL, time.Now, testSecret1)
	d, clock, reg, res := newTestDispatcher(t, []Receiver{hook}, WithAttemptTimeout(10*time.Second),
		WithBackoff(time.Second, time.Minute), withJitter(func() float64 { return 0.999 }))
	n := testNotification("e-1")
	n.Deadline = clock.Now().Add(9 * time.Second)
	d.Enqueue("hook", n)
	if r := res.next(t); !errors.Is(r.Err, ErrExpired) || r.Attempts != 0 {
		t.Fatalf("Result = %+v, want expired before any attempt", r)
	}
	if got := len(rec.requests()); got != 0 {
		t.Errorf("%d requests after the deadline, want 0", got)
	}
	n = testNotification("e-2")
	n.Deadline = clock.Now().Add(10*time.Second + 500*time.Millisecond) // one attempt fits, not a retry after a 1 s wait
	d.Enqueue("hook", n)
	r := res.next(t)
	if !errors.Is(r.Err, ErrExpired) || r.Attempts != 1 || !strings.Contains(r.Err.Error(), "503") {
		t.Fatalf("Result = %+v, want expired after 1 attempt, with its error", r)
	}
	if s := clock.Sleeps(); len(s) != 0 {
		t.Errorf("slept %v before a retry that could not fit", s)
	}
	if got := metricValue(t, reg, "costpipe_alerts_notifications_total", map[string]string{"receiver": "hook", "result": "released"}); got != 2 {
		t.Errorf("released = %v, want 2", got)
	}
	if got := metricValue(t, reg, "costpipe_alerts_notifications_total", map[string]string{"receiver": "hook", "result": "dead"}); got != 0 {
		t.Errorf("dead = %v, want 0", got)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	rec := newRecorder(t, func(n int, w http.ResponseWriter) int {
		switch n {
		case 0:
			w.Header().Set("Retry-After", "30")
			return http.StatusTooManyRequests
		case 1:
			w.Header().Set("Retry-After", "3600") // beyond the maximum backoff
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	hook := newTestWebhook(t, rec.srv.URL, time.Now, testSecret1)
	d, clock, _, res := newTestDispatcher(t, []Receiver{hook}, WithBackoff(time.Second, 10*time.Minute),
		withJitter(func() float64 { return 0.5 }))
	d.Enqueue("hook", testNotification("ra-1"))
	if r := res.next(t); r.Err != nil || r.Attempts != 3 {
		t.Fatalf("Result = %+v", r)
	}
	if got, want := clock.Sleeps(), []time.Duration{30 * time.Second, 10 * time.Minute}; !slices.Equal(got, want) {
		t.Errorf("sleeps = %v, want %v", got, want)
	}
}

func TestBackoffSchedule(t *testing.T) {
	d := &Dispatcher{opts: options{minBackoff: time.Second, maxBackoff: 5 * time.Minute, jitter: func() float64 { return 1 }}}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300}
	for i, w := range want {
		if got := d.backoff(i+1, errors.New("x")); got != w*time.Second {
			t.Errorf("attempt %d: %s, want %s", i+1, got, w*time.Second)
		}
	}
	if got := d.backoff(1000, errors.New("x")); got != 5*time.Minute {
		t.Errorf("attempt 1000: %s", got)
	}
	d.opts.jitter = func() float64 { return 0 }
	if got := d.backoff(5, errors.New("x")); got != 0 {
		t.Errorf("full jitter at 0: %s", got)
	}
	if got := d.backoff(5, RetryAfter(errors.New("x"), 7*time.Second)); got != 7*time.Second {
		t.Errorf("Retry-After 7s over jitter 0: %s", got)
	}
	// Huge bounds do not overflow.
	d.opts.minBackoff, d.opts.maxBackoff = time.Duration(1)<<61, time.Duration(1)<<62
	d.opts.jitter = func() float64 { return 1 }
	if got := d.backoff(40, errors.New("x")); got != time.Duration(1)<<62 {
		t.Errorf("overflow: %s", got)
	}
}

func TestNewDispatcherValidation(t *testing.T) {
	a, b := NewLog("a", nil), NewLog("a", nil)
	for name, tc := range map[string]struct {
		rs   []Receiver
		opts []Opt
	}{
		"duplicate":    {[]Receiver{a, b}, nil},
		"nameless":     {[]Receiver{NewLog("", nil)}, nil},
		"nil receiver": {[]Receiver{nil}, nil},
		"queue 0":      {[]Receiver{a}, []Opt{WithQueueSize(0)}},
		"attempts 0":   {[]Receiver{a}, []Opt{WithMaxAttempts(0)}},
		"backoff":      {[]Receiver{a}, []Opt{WithBackoff(time.Minute, time.Second)}},
		"timeout":      {[]Receiver{a}, []Opt{WithAttemptTimeout(0)}},
		"nil clock":    {[]Receiver{a}, []Opt{WithClock(nil)}},
	} {
		if d, err := NewDispatcher(tc.rs, tc.opts...); err == nil {
			_ = d.Close(context.Background())
			t.Errorf("%s: accepted", name)
		}
	}
	reg := prometheus.NewRegistry()
	d, err := NewDispatcher([]Receiver{a}, WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	if _, err := NewDispatcher([]Receiver{a}, WithRegisterer(reg)); err == nil {
		t.Error("a second dispatcher registered the same metrics")
	}
}

func TestSystemAndFuncClockSleep(t *testing.T) {
	fixed := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := ClockFunc(func() time.Time { return fixed })
	if !c.Now().Equal(fixed) {
		t.Errorf("Now = %v", c.Now())
	}
	if err := c.Sleep(context.Background(), 0); err != nil {
		t.Errorf("Sleep(0) = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, clk := range []Clock{c, SystemClock()} {
		if err := clk.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
			t.Errorf("Sleep on a cancelled ctx = %v", err)
		}
	}
	if err := SystemClock().Sleep(context.Background(), time.Microsecond); err != nil {
		t.Errorf("Sleep(1µs) = %v", err)
	}
}
