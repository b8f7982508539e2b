package consumers

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/logtest"
)

// failingAssignSink is a recSink whose Assign fails fails times first.
type failingAssignSink struct {
	recSink
	fails int
}

func (s *failingAssignSink) Assign(context.Context, []int32) error {
	if s.fails > 0 {
		s.fails--
		return errors.New("dial tcp 127.0.0.1:9000: connect: connection refused")
	}
	return nil
}

// Loading the landing state of new partitions while ClickHouse is down: the
// first failure is logged at once, the next within a minute only counted
// (each retry logged a warning before), and the load that works says so,
// with how long and how many attempts it had failed.
func TestAssignFailuresAreRateLimitedAndTheirEndLogged(t *testing.T) {
	// Not parallel: it reads timer lengths from a log line.
	buf := &logtest.Buffer{}
	opts := DefaultOptions()
	opts.Brokers = []string{"127.0.0.1:1"}
	opts.Logger = slog.New(slog.NewTextHandler(buf, nil))
	opts.DLQSpoolDir = t.TempDir()
	sink := &failingAssignSink{fails: 3}
	c, err := New(opts, sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cl.Close)
	c.onAssigned(context.Background(), nil, topicMap(0))
	if err := c.prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.Lines(buf.String()) {
		if strings.Contains(l, "landing state") {
			lines = append(lines, l)
		}
	}
	// Retries after 200, 400 and 800 ms: the load works 1.4 s after the
	// first failure.
	if len(lines) != 2 ||
		!strings.Contains(lines[0], `level=WARN msg="cannot load landing state of assigned partitions; retrying" partitions=[0] retry_in=200ms failures=1 failing_for=0s err=`) ||
		!regexp.MustCompile(`level=INFO msg="landing state of assigned partitions loaded again" partitions=\[0\] failing_for=1\.[4-9]\d*s failed_attempts=3`).MatchString(lines[1]) {
		t.Errorf("log of three failed loads and one that worked:\n%s", strings.Join(lines, ""))
	}
	if !c.parts[0].assigned {
		t.Error("partition not prepared")
	}
}

// At the shutdown, once a landing has failed (ClickHouse unreachable), the
// revoke callback of the leave does not land the same windows again: it
// drops them (their offsets are not committed) at once.
func TestOnRevokedAtShutdownAfterAFailedLandingDoesNotLand(t *testing.T) {
	t.Parallel()
	now := newFakeClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	c, sink := callbackConsumer(t, now)
	c.onAssigned(context.Background(), nil, topicMap(0, 1))
	c.parts[0].assigned, c.parts[0].consumed, c.parts[0].committed = true, 9, 5
	sink.windows = 3
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // SIGTERM
	sd := newStopClock(ctx, DefaultShutdownTimeout)
	defer sd.release()
	c.stop.Store(sd)
	sd.fail(errors.New("cannot land 3 rows: connection refused"))
	c.onRevoked(context.Background(), nil, topicMap(0, 1))
	if sink.flushes != 0 {
		t.Errorf("the revoke callback landed %d times after the shutdown's landing failed", sink.flushes)
	}
	if len(c.parts) != 0 || len(sink.dropped) != 2 || len(c.retained) != 0 {
		t.Errorf("state not dropped: parts %v, dropped %v, retained %v", c.parts, sink.dropped, c.retained)
	}
}
