package consumers

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/logtest"
	"github.com/costpipe/costpipe/internal/nolisten"
)

// lockedBuffer is the shared concurrent log buffer.
type lockedBuffer = logtest.Buffer

func textLogger(w *lockedBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
}

// TestConnLogBrokerUnreachable: an aggregator given a port nobody listens
// on says so within seconds (it logged nothing until the group's health
// check, a rebalance timeout later).
func TestConnLogBrokerUnreachable(t *testing.T) {
	t.Parallel()
	addr := nolisten.Addr(t)
	var buf lockedBuffer
	o := DefaultOptions()
	o.Brokers, o.Group, o.Logger, o.DLQSpoolDir = []string{addr}, "connlog", textLogger(&buf), t.TempDir()
	c, err := New(o, &recSink{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	want := `level=WARN msg="cannot connect to a Kafka broker; retrying" broker=` + addr + ` failures=1 down_for=0s err=`
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	if !strings.Contains(buf.String(), want) || !strings.Contains(buf.String(), "connection refused") {
		t.Errorf("log:\n%s\nwant a line with %q and the dial error", buf.String(), want)
	}
}

// TestConnLog: later failures of a broker are one line a minute with how
// many came since, and connecting again is logged once.
func TestConnLog(t *testing.T) {
	t.Parallel()
	var buf lockedBuffer
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	l := &connLog{log: textLogger(&buf), now: func() time.Time { return now }}
	b := kgo.BrokerMetadata{NodeID: -1, Host: "kafka-1", Port: 9092}
	refused := errors.New("connection refused")
	for i := 0; i < 31; i++ {
		l.OnBrokerConnect(b, 0, nil, refused)
		now = now.Add(2 * time.Second)
	}
	l.OnBrokerConnect(kgo.BrokerMetadata{Host: "kafka-2", Port: 9092}, 0, nil, nil) // never down: nothing
	l.OnBrokerConnect(b, 0, nil, nil)
	l.OnBrokerConnect(b, 0, nil, nil)
	want := strings.Join([]string{
		`level=WARN msg="cannot connect to a Kafka broker; retrying" broker=kafka-1:9092 failures=1 down_for=0s err="connection refused"`,
		`level=WARN msg="cannot connect to a Kafka broker; retrying" broker=kafka-1:9092 failures=30 down_for=1m0s err="connection refused"`,
		`level=INFO msg="connected to the Kafka broker again" broker=kafka-1:9092 down_for=1m2s`,
	}, "\n")
	if got := strings.TrimSpace(buf.String()); got != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
}
