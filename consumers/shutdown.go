package consumers

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultShutdownTimeout is Options.ShutdownTimeout's default: the
// shutdown's single budget, from the end of Run's context (SIGTERM) to
// Run's return. Every landing attempt after that moment shares it: the
// flush under way, the shutdown flush, a revoke callback's flush; so do
// leaving the group and closing the Kafka client. 25 s fits in
// Kubernetes' default terminationGracePeriodSeconds (30 s) with room for
// the process to exit. (Before, the shutdown flush had 30 s of its own and
// the revoke callback of the leave tried the same doomed landing for 20 s
// more: about 50 s with ClickHouse down, and a SIGKILL.)
const DefaultShutdownTimeout = 25 * time.Second

// minShutdownTimeout is the smallest Options.ShutdownTimeout: a few
// seconds of landing beside the leave's reserve.
const minShutdownTimeout = 5 * time.Second

// shutdownLeaveReserve is the end of the budget kept for leaving the group
// and closing the client: landing stops Options.ShutdownTimeout −
// shutdownLeaveReserve after the shutdown began.
const shutdownLeaveReserve = 3 * time.Second

// stopClock is a Run's shutdown budget. It starts when Run's context ends
// (begin), and is safe for concurrent use (the poll loop, the group
// callbacks, the context's AfterFunc).
type stopClock struct {
	ctx    context.Context // Run's
	budget time.Duration   // Options.ShutdownTimeout
	// land bounds landing during the shutdown: it ends, with the cause
	// context.DeadlineExceeded, budget − shutdownLeaveReserve
	// after begin; before, it does not end. A Sink's insert in flight ends
	// with it too (see Sink.Flush).
	land      context.Context
	cancel    context.CancelCauseFunc
	stopAfter func() bool

	once     sync.Once
	began    time.Time // when the shutdown began (wall clock); set by begin
	timer    *time.Timer
	stopping atomic.Bool

	mu  sync.Mutex
	err error // the first landing that failed after began
}

func newStopClock(ctx context.Context, budget time.Duration) *stopClock {
	s := &stopClock{ctx: ctx, budget: budget}
	s.land, s.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	s.stopAfter = context.AfterFunc(ctx, s.begin)
	return s
}

// begin starts the budget (once).
func (s *stopClock) begin() {
	s.once.Do(func() {
		s.began = time.Now()
		s.timer = time.AfterFunc(s.budget-shutdownLeaveReserve, func() { s.cancel(context.DeadlineExceeded) })
		s.stopping.Store(true)
	})
}

// isStopping reports whether Run's context has ended (and starts the budget
// if its AfterFunc has not yet).
func (s *stopClock) isStopping() bool {
	if s.stopping.Load() {
		return true
	}
	if s.ctx.Err() != nil {
		s.begin()
		return true
	}
	return false
}

// fail records a landing that failed during the shutdown: no other landing
// of the same windows is started.
func (s *stopClock) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// failure is the landing that failed during the shutdown, nil if none.
func (s *stopClock) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// deadline is when Run must have returned; zero before begin.
func (s *stopClock) deadline() time.Time {
	s.begin()
	return s.began.Add(s.budget)
}

// release frees the timers and ends land (Run has returned).
func (s *stopClock) release() {
	s.stopAfter()
	s.begin()
	s.timer.Stop()
	s.cancel(context.Canceled)
}

// closeClient closes the Kafka client (which waits for the group leave and
// its revoke callback), waiting at most until the shutdown's deadline: past
// it Run returns and the close goes on without it (the process exits; the
// group moves the partitions at the latest after the session timeout).
func (c *Consumer) closeClient(sd *stopClock) {
	done := make(chan struct{})
	go func() { defer close(done); c.cl.Close() }()
	t := time.NewTimer(max(time.Until(sd.deadline()), 0))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.log.Warn("shutdown: leaving the consumer group did not finish within the shutdown's budget; stopping without waiting (the group moves the partitions after --session-timeout)",
			"budget", sd.budget)
	}
}

// sinkError is an error of Sink.Flush: the windows did not land.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// unlanded returns the events handed to the Sink since its last landed
// flush, and their partitions (sorted).
func (c *Consumer) unlanded() (events int64, parts []int32) {
	for p, st := range c.parts {
		if st.added > 0 {
			events += st.added
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	return events, parts
}
