package producers

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/logtest"
	"github.com/costpipe/costpipe/schemas"
)

// TestDefaultsNeverBlockEmit checks that with the default options a full
// buffer (Kafka down) makes Emit return ErrBufferFull at once, even with a
// ctx that never ends.
func TestDefaultsNeverBlockEmit(t *testing.T) {
	// Not parallel: it bounds Emit in wall time.
	p := newTestProducer(t, deadAddr(t), func(o *Options) { o.BufferEvents, o.BatchEvents = 10, 5 })
	emitN(t, p, 0, 10)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		e := testEvent(10)
		done <- p.Emit(context.Background(), &e)
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrBufferFull) {
			t.Errorf("Emit on a full buffer = %v, want ErrBufferFull", err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("Emit took %v on a full buffer", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("Emit on a full buffer with the defaults still blocked after 2s; stats %+v", p.Stats())
	}
	if s := p.Stats(); s != (Stats{Buffered: 10, Dropped: 1}) {
		t.Errorf("stats %+v, want 10 buffered and 1 dropped", s)
	}
}

// TestCloseWithoutDeadlineIsBounded checks that Close(context.Background())
// with Kafka unreachable gives up after CloseTimeout, fails what is left
// and says so.
func TestCloseWithoutDeadlineIsBounded(t *testing.T) {
	t.Parallel()
	if d := DefaultOptions().CloseTimeout; d != 30*time.Second {
		t.Errorf("default CloseTimeout %v, want 30s", d)
	}
	var l losses
	p := newTestProducer(t, deadAddr(t), func(o *Options) {
		o.CloseTimeout = 300 * time.Millisecond
		o.OnError = l.onError
	})
	emitN(t, p, 0, 20)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.Close(context.Background()) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("Close(context.Background()) still running after 5s; stats %+v", p.Stats())
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("Close gave up after %v, before CloseTimeout", d)
	}
	var le *LossError
	if !errors.As(err, &le) || le.Events != 20 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want a *LossError for 20 events wrapping a deadline error", err)
	}
	if s := p.Stats(); s != (Stats{Failed: 20}) {
		t.Errorf("stats %+v, want 20 failed", s)
	}
	if f := l.count("fail"); f != 20 {
		t.Errorf("OnError reported %d failed events, want 20", f)
	}
}

// TestFlushReportsFailures checks that Flush does not return nil when the
// events it waited for failed, even without OnError.
func TestFlushReportsFailures(t *testing.T) {
	t.Parallel()
	p := newTestProducer(t, deadAddr(t), func(o *Options) { o.DeliveryTimeout = time.Second })
	emitN(t, p, 0, 30)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := p.Flush(ctx)
	var le *LossError
	if !errors.As(err, &le) || le.Events != 30 {
		t.Fatalf("Flush = %v, want a *LossError for 30 events", err)
	}
	if le.Err == nil || errors.Is(err, ErrBufferFull) {
		t.Errorf("LossError.Err = %v, want the delivery error", le.Err)
	}
	if s := p.Stats(); s != (Stats{Failed: 30}) {
		t.Errorf("stats %+v, want 30 failed", s)
	}
	// Nothing new failed: the next Flush is clean.
	if err := p.Flush(ctx); err != nil {
		t.Errorf("second Flush = %v, want nil", err)
	}
}

// TestSecondCloseWaitsForFirst checks that a Close called while another is
// still sending waits for it and returns its result.
func TestSecondCloseWaitsForFirst(t *testing.T) {
	t.Parallel()
	p := newTestProducer(t, deadAddr(t), nil)
	emitN(t, p, 0, 10)
	first := make(chan error, 1)
	gaveUp := make(chan time.Time, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		defer cancel()
		dl, _ := ctx.Deadline()
		gaveUp <- dl
		first <- p.Close(ctx)
	}()
	deadline := <-gaveUp
	// The second Close starts once the first has begun closing (a sleep
	// here could, on a loaded machine, let the second come first and wait
	// its whole CloseTimeout).
	for !p.isClosed.Load() {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatal("the first Close has not begun closing 10 s past its deadline")
		}
		time.Sleep(time.Millisecond)
	}
	second := p.Close(context.Background())
	// Against the first's deadline, not a duration: the second may start
	// late on a loaded machine and must still wait for the first.
	if early := time.Until(deadline); early > 0 {
		t.Errorf("second Close returned %v before the first gave up", early)
	}
	ferr := <-first
	var le *LossError
	if !errors.As(ferr, &le) || le.Events != 10 {
		t.Fatalf("first Close = %v, want a *LossError for 10 events", ferr)
	}
	if second != ferr {
		t.Errorf("second Close = %v, want the first's result %v", second, ferr)
	}
	if s := p.Stats(); s != (Stats{Failed: 10}) {
		t.Errorf("stats %+v, want 10 failed", s)
	}
}

// TestEmitRefusesWhatTheAggregatorWouldDLQ checks MaxEventAge and MaxFuture.
func TestEmitRefusesWhatTheAggregatorWouldDLQ(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	if o.MaxEventAge != 7*24*time.Hour || o.MaxFuture != 5*time.Minute {
		t.Errorf("defaults MaxEventAge %v, MaxFuture %v; want 168h and 5m (the aggregator's)", o.MaxEventAge, o.MaxFuture)
	}
	now := time.Now()
	for _, tc := range []struct {
		name    string
		edit    func(*Options)
		ts      time.Time
		refused bool
	}{
		{"recent", nil, now.Add(-time.Hour), false},
		{"six days", nil, now.Add(-6 * 24 * time.Hour), false},
		{"eight days", nil, now.Add(-8 * 24 * time.Hour), true},
		{"four minutes ahead", nil, now.Add(4 * time.Minute), false},
		{"ten minutes ahead", nil, now.Add(10 * time.Minute), true},
		{"age off", func(o *Options) { o.MaxEventAge = 0 }, now.Add(-30 * 24 * time.Hour), false},
		{"future off", func(o *Options) { o.MaxFuture = 0 }, now.Add(24 * time.Hour), false},
		{"custom age", func(o *Options) { o.MaxEventAge = time.Hour }, now.Add(-2 * time.Hour), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProducer(t, deadAddr(t), tc.edit)
			e := testEvent(1)
			e.Timestamp = tc.ts
			err := p.Emit(context.Background(), &e)
			var fe *schemas.FieldError
			if tc.refused {
				if !errors.As(err, &fe) || fe.Field != "timestamp" {
					t.Fatalf("Emit = %v, want a *schemas.FieldError for timestamp", err)
				}
				if s := p.Stats(); s != (Stats{}) {
					t.Errorf("stats %+v, want nothing counted", s)
				}
			} else if err != nil {
				t.Fatalf("Emit = %v, want nil", err)
			}
		})
	}
}

// TestLossesAreLoggedWithoutOnError: a Producer without OnError logs its
// losses, one line a minute at most with the events lost since the line
// before, and the rest at Close; before, they showed only in Stats.
func TestLossesAreLoggedWithoutOnError(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	p := newTestProducer(t, deadAddr(t), func(o *Options) {
		o.BufferEvents, o.BatchEvents = 10, 5
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	emitN(t, p, 0, 10)
	for i := 10; i < 15; i++ {
		e := testEvent(i)
		if err := p.Emit(context.Background(), &e); !errors.Is(err, ErrBufferFull) {
			t.Fatalf("Emit on a full buffer = %v, want ErrBufferFull", err)
		}
	}
	// The first loss is logged at once (about a second after it) and later
	// ones are summed until the next line, at most one a minute or at
	// Close: on a loaded machine the reporter may run between the 5 drops,
	// so the first line names 1 to 5 of them and the lines add up to 15.
	lost := func(lines []string) (n int) {
		for _, l := range lines {
			m := regexp.MustCompile(`events=(\d+)`).FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("loss line without events=: %q", l)
			}
			v, _ := strconv.Atoi(m[1])
			n += v
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(logs.Lines("costpipe producer lost events")) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	lines := logs.Lines("costpipe producer lost events")
	if len(lines) != 1 || lost(lines) < 1 || lost(lines) > 5 || !strings.Contains(lines[0], "producer buffer full") {
		t.Fatalf("loss lines after 5 drops: %q; want one naming 1 to 5 events and the full buffer", lines)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); err == nil {
		t.Fatal("Close with Kafka down returned nil")
	}
	all := logs.Lines("costpipe producer lost events")
	if len(all) != 2 || lost(all) != 15 {
		t.Errorf("loss lines after Close: %q; want one more, the two naming the 5 drops and the 10 buffered events it failed", all)
	}
}
