package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrClosed is the Result error of a notification still queued or being
// retried when Close gave up draining.
var ErrClosed = errors.New("dispatcher closed before delivery")

// ErrDeferred wraps the last attempt's error of a notification whose
// attempts were used up on retryable errors before its RetryUntil: the
// sender offers it again later. It is not dead.
var ErrDeferred = errors.New("attempts used up, to be retried later")

// ErrExpired is the Result error of a notification whose Deadline left no
// room for another attempt (it waited in the queue, or its retries ran
// long): the sender's hold on it ended, so it is left to the sender (alerts
// run: another replica or a later evaluation). Not dead.
var ErrExpired = errors.New("the notification's deadline left no room for an attempt")

// Result is the outcome of one enqueued notification at one receiver.
type Result struct {
	// Receiver is the receiver's name.
	Receiver string
	// ID is the Notification.ID.
	ID string
	// Attempts is how many times Deliver was called (0 when Close gave up
	// before the first attempt).
	Attempts int
	// Err is nil when the notification was delivered. An error wrapping
	// ErrClosed (Close gave up), ErrExpired (its Deadline came) or
	// ErrDeferred (attempts used up before its RetryUntil) leaves it to
	// the sender, with the last attempt's error if any. Any other error
	// is the last attempt's (retries exhausted or ErrPermanent): dead.
	Err error
	// At is when the outcome was decided, by the dispatcher's clock.
	At time.Time
}

// Clock is the dispatcher's time source: Now stamps results and times
// attempts, Sleep waits between attempts. Tests inject one so that backoff
// does not sleep for real.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or until ctx is done and then returns ctx.Err().
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock returns the Clock of the real time.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ClockFunc returns a Clock whose Now is now (time.Now when nil) and whose
// Sleep waits real time: for a process that injects only a time source.
func ClockFunc(now func() time.Time) Clock { return funcClock{now: nowOr(now)} }

type funcClock struct{ now func() time.Time }

func (c funcClock) Now() time.Time { return c.now() }

func (funcClock) Sleep(ctx context.Context, d time.Duration) error {
	return systemClock{}.Sleep(ctx, d)
}

// Dispatcher defaults.
const (
	DefaultQueueSize      = 256
	DefaultMaxAttempts    = 8
	DefaultMinBackoff     = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultAttemptTimeout = 10 * time.Second
)

// Opt configures a Dispatcher.
type Opt func(*options)

type options struct {
	queueSize      int
	maxAttempts    int
	minBackoff     time.Duration
	maxBackoff     time.Duration
	attemptTimeout time.Duration
	clock          Clock
	results        func(Result)
	reg            prometheus.Registerer
	logger         *slog.Logger
	jitter         func() float64 // in [0, 1); tests replace it
}

// WithQueueSize sets how many notifications wait per receiver before
// Enqueue drops. Default DefaultQueueSize (256); at least 1.
func WithQueueSize(n int) Opt { return func(o *options) { o.queueSize = n } }

// WithMaxAttempts sets how many times a notification is tried at one
// receiver before it is dead. Default DefaultMaxAttempts (8); at least 1.
func WithMaxAttempts(n int) Opt { return func(o *options) { o.maxAttempts = n } }

// WithBackoff sets the wait before a retry: after attempt k a random
// duration in [0, min(max, min·2^(k-1))] (exponential with full jitter),
// and at least a Retry-After the receiver reported, up to max. Default 1 s
// to 5 min; 0 < min ≤ max.
func WithBackoff(min, max time.Duration) Opt {
	return func(o *options) { o.minBackoff, o.maxBackoff = min, max }
}

// WithClock sets the time source and the sleeper of the backoff. Default
// SystemClock().
func WithClock(c Clock) Opt { return func(o *options) { o.clock = c } }

// WithResults sets the function called once per enqueued notification and
// receiver with its outcome, from that receiver's worker goroutine (so
// concurrently for different receivers, in order for one). It must not
// block for long: it delays the receiver's next delivery. Default none.
func WithResults(f func(Result)) Opt { return func(o *options) { o.results = f } }

// WithRegisterer registers the dispatcher's metrics (costpipe_alerts_*).
// Default none.
func WithRegisterer(r prometheus.Registerer) Opt { return func(o *options) { o.reg = r } }

// WithAttemptTimeout bounds one Deliver call. Default
// DefaultAttemptTimeout (10 s); positive.
func WithAttemptTimeout(d time.Duration) Opt { return func(o *options) { o.attemptTimeout = d } }

// WithLogger sets where retries and dead notifications are logged. Default
// slog.Default().
func WithLogger(l *slog.Logger) Opt { return func(o *options) { o.logger = l } }

// Dispatcher delivers notifications to receivers: one bounded queue and
// one worker goroutine per receiver, so a slow or dead receiver delays only
// its own queue. A worker tries a notification until it is delivered, fails
// permanently or has used MaxAttempts, then reports the Result and takes the
// next. Enqueue and Close are safe for concurrent use; the workers stop when
// Close returns.
type Dispatcher struct {
	opts    options
	workers map[string]*worker
	order   []*worker
	m       *metrics

	// ctx is cancelled when Close gives up draining: it cuts attempts and
	// backoff sleeps short.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.RWMutex // guards closed against sends on the queues
	closed bool
	done   chan struct{} // closed when every worker has returned
}

type worker struct {
	r     Receiver
	name  string
	queue chan Notification
	m     workerMetrics
}

// NewDispatcher starts one worker per receiver. Receiver names must be
// non-empty and unique.
func NewDispatcher(receivers []Receiver, opts ...Opt) (*Dispatcher, error) {
	o := options{
		queueSize: DefaultQueueSize, maxAttempts: DefaultMaxAttempts,
		minBackoff: DefaultMinBackoff, maxBackoff: DefaultMaxBackoff,
		attemptTimeout: DefaultAttemptTimeout, clock: SystemClock(), jitter: rand.Float64,
	}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.queueSize < 1:
		return nil, fmt.Errorf("cannot create dispatcher: queue size %d: want at least 1", o.queueSize)
	case o.maxAttempts < 1:
		return nil, fmt.Errorf("cannot create dispatcher: max attempts %d: want at least 1", o.maxAttempts)
	case o.minBackoff <= 0 || o.maxBackoff < o.minBackoff:
		return nil, fmt.Errorf("cannot create dispatcher: backoff %s..%s: want 0 < min <= max", o.minBackoff, o.maxBackoff)
	case o.attemptTimeout <= 0:
		return nil, fmt.Errorf("cannot create dispatcher: attempt timeout %s: want > 0", o.attemptTimeout)
	case o.clock == nil:
		return nil, errors.New("cannot create dispatcher: nil clock")
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	m, err := newMetrics(o.reg)
	if err != nil {
		return nil, fmt.Errorf("cannot create dispatcher: %w", err)
	}
	d := &Dispatcher{opts: o, workers: make(map[string]*worker, len(receivers)), m: m, done: make(chan struct{})}
	for i, r := range receivers {
		if r == nil {
			return nil, fmt.Errorf("cannot create dispatcher: receiver %d is nil", i)
		}
		name := r.Name()
		if name == "" {
			return nil, fmt.Errorf("cannot create dispatcher: receiver %d has no name", i)
		}
		if d.workers[name] != nil {
			return nil, fmt.Errorf("cannot create dispatcher: receiver %q twice", name)
		}
		w := &worker{r: r, name: name, queue: make(chan Notification, o.queueSize), m: m.forReceiver(name)}
		d.workers[name] = w
		d.order = append(d.order, w)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range d.order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.run(w)
		}()
	}
	go func() {
		wg.Wait()
		close(d.done)
	}()
	return d, nil
}

// Enqueue queues n for the named receiver without blocking. It returns
// false when the receiver is unknown, its queue is full or the dispatcher
// is closed; a full queue and a closed dispatcher count in
// costpipe_alerts_queue_drops_total and as result "dropped". A dropped
// notification has no Result.
func (d *Dispatcher) Enqueue(receiver string, n Notification) bool {
	w := d.workers[receiver]
	if w == nil {
		d.opts.logger.Warn("alert notification for an unknown receiver dropped", "receiver", receiver, "id", n.ID)
		return false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if !d.closed {
		w.m.depth.Inc() // before the send, so the worker's Dec never comes first
		select {
		case w.queue <- n:
			return true
		default:
			w.m.depth.Dec()
		}
	}
	w.m.drops.Inc()
	w.m.dropped.Inc()
	d.opts.logger.Warn("alert notification dropped", "receiver", receiver, "id", n.ID, "closed", d.closed)
	return false
}

// Close stops accepting notifications and lets every worker deliver what
// is queued (with retries) until ctx is done. Then it cancels attempts and
// backoff in progress, reports every notification not delivered with an
// error wrapping ErrClosed (released, for the next run to deliver: not
// dead), and returns once every worker stopped:
// every Result has been reported when Close returns. The error is nil when
// everything drained, else ctx's error. Close is safe to call twice.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	first := !d.closed
	if first {
		d.closed = true
		for _, w := range d.order {
			close(w.queue)
		}
	}
	d.mu.Unlock()
	select {
	case <-d.done:
		d.cancel()
		return nil
	case <-ctx.Done():
	}
	d.cancel()
	<-d.done
	return fmt.Errorf("cannot drain alert notifications: %w", ctx.Err())
}

// isClosed reports whether Close was called.
func (d *Dispatcher) isClosed() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.closed
}

// run is a worker: it delivers its queue in order until Close closes it.
func (d *Dispatcher) run(w *worker) {
	for n := range w.queue {
		w.m.depth.Dec()
		res := d.deliver(w, n)
		switch {
		case res.Err == nil:
			w.m.delivered.Inc()
		case errors.Is(res.Err, ErrClosed):
			// Stopped before delivery: not dead, the next run (or another
			// replica) delivers it. An ERROR here fired on every restart.
			w.m.released.Inc()
			d.opts.logger.Info("alert notification left for the next run", "receiver", w.name, "id", n.ID,
				"attempts", res.Attempts, "err", res.Err)
		case errors.Is(res.Err, ErrExpired):
			w.m.released.Inc()
			d.opts.logger.Warn("alert notification's deadline came before delivery; left to its sender", "receiver", w.name, "id", n.ID,
				"attempts", res.Attempts, "deadline", n.Deadline, "err", res.Err)
		case errors.Is(res.Err, ErrDeferred):
			w.m.deferred.Inc()
			d.opts.logger.Warn("alert notification not delivered yet; retried later", "receiver", w.name, "id", n.ID,
				"attempts", res.Attempts, "retry_until", n.RetryUntil, "err", res.Err)
		default:
			w.m.dead.Inc()
			d.opts.logger.Error("alert notification dead", "receiver", w.name, "id", n.ID,
				"attempts", res.Attempts, "err", res.Err)
		}
		if d.opts.results != nil {
			d.opts.results(res)
		}
	}
}

// deliver tries n at w's receiver until it is delivered, dead, deferred
// or expired.
func (d *Dispatcher) deliver(w *worker, n Notification) Result {
	res := Result{Receiver: w.name, ID: n.ID}
	var last error
	for {
		if d.ctx.Err() != nil {
			res.Err = closedError(last)
			res.At = d.opts.clock.Now()
			return res
		}
		if now := d.opts.clock.Now(); !n.Deadline.IsZero() && now.Add(d.opts.attemptTimeout).After(n.Deadline) {
			res.Err, res.At = wrapLast(ErrExpired, last), now
			return res
		}
		res.Attempts++
		err := d.attempt(w, n)
		if err == nil {
			res.At = d.opts.clock.Now()
			return res
		}
		last = err
		if errors.Is(err, ErrPermanent) {
			res.Err, res.At = err, d.opts.clock.Now()
			return res
		}
		if res.Attempts >= d.opts.maxAttempts {
			res.Err, res.At = err, d.opts.clock.Now()
			if res.At.Before(n.RetryUntil) {
				res.Err = wrapLast(ErrDeferred, err)
			}
			return res
		}
		if d.ctx.Err() != nil {
			continue // reported as closed at the top
		}
		wait := d.backoff(res.Attempts, err)
		if now := d.opts.clock.Now(); !n.Deadline.IsZero() && now.Add(wait+d.opts.attemptTimeout).After(n.Deadline) {
			// No attempt fits after this wait: hand it back now.
			res.Err, res.At = wrapLast(ErrExpired, err), now
			return res
		}
		w.m.retried.Inc()
		d.opts.logger.Warn("alert notification failed, retrying", "receiver", w.name, "id", n.ID,
			"attempt", res.Attempts, "retry_in", wait, "err", err)
		_ = d.opts.clock.Sleep(d.ctx, wait) // cut short by Close: reported at the top
	}
}

// attempt calls Deliver once under the attempt timeout and times it.
func (d *Dispatcher) attempt(w *worker, n Notification) error {
	ctx, cancel := context.WithTimeout(d.ctx, d.opts.attemptTimeout)
	defer cancel()
	start := d.opts.clock.Now()
	err := w.r.Deliver(ctx, n)
	w.m.seconds.Observe(d.opts.clock.Now().Sub(start).Seconds())
	if err != nil && ctx.Err() == context.DeadlineExceeded && d.ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (attempt timeout %s)", err, d.opts.attemptTimeout)
	}
	return err
}

// backoff is the wait after the given failed attempt (1-based): full
// jitter over min·2^(attempt-1) capped at max, raised to a Retry-After.
func (d *Dispatcher) backoff(attempt int, err error) time.Duration {
	ceil := d.opts.minBackoff
	for i := 1; i < attempt && ceil < d.opts.maxBackoff; i++ {
		if ceil > d.opts.maxBackoff/2 {
			ceil = d.opts.maxBackoff
			break
		}
		ceil *= 2
	}
	ceil = min(ceil, d.opts.maxBackoff)
	wait := time.Duration(d.opts.jitter() * float64(ceil))
	if ra, ok := retryAfterOf(err); ok && ra > wait {
		wait = min(ra, d.opts.maxBackoff)
	}
	return wait
}

func closedError(last error) error { return wrapLast(ErrClosed, last) }

// wrapLast is sentinel, with the last attempt's error when there was one.
func wrapLast(sentinel, last error) error {
	if last == nil {
		return sentinel
	}
	return fmt.Errorf("%w; last attempt: %w", sentinel, last)
}
