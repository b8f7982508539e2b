package consumers_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/costpipe/costpipe/consumers"
	"github.com/costpipe/costpipe/internal/logtest"
	"github.com/costpipe/costpipe/schemas"
)

// refuseDLQProduces has the broker answer every produce to the DLQ topic
// with TOPIC_AUTHORIZATION_FAILED (a DLQ topic this instance may not write).
func (e *env) refuseDLQProduces() {
	e.t.Helper()
	var always atomic.Bool
	always.Store(true)
	e.refuseDLQWhile(&always)
}

// breakDir replaces the directory dir with a regular file: nothing can be
// created in it any more, whoever the test runs as (root ignores modes).
func breakDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func repairDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
}

// TestUnspoolableDLQRecordsAreHeld: Kafka refuses the DLQ records and the
// spool directory cannot take them either. The landed windows stay landed
// (no abandoned flush, no rewind: the records are read once and sent to
// the DLQ once), the failed copies are held without being duplicated,
// offsets are committed up to the first held record and not past it, one
// rate-limited ERROR names the spool directory, and the shutdown says that
// DLQ records were not confirmed. Once the directory works again, the
// spool takes them (one log line for the batch) and the commit moves on.
// Before, every flush rewound, re-read and re-sent the records: the DLQ
// counts and failures grew without bound.
func TestUnspoolableDLQRecordsAreHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	e.refuseDLQProduces()
	spool := filepath.Join(t.TempDir(), "spool")
	var logs logtest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := prometheus.NewRegistry()
	opts := func(reg *prometheus.Registry) func(*consumers.Options) {
		return func(o *consumers.Options) { o.Registerer, o.DLQSpoolDir, o.DLQMaxAttempts = reg, spool, 2 }
	}
	stop := e.start("held", 100*time.Millisecond, log, opts(reg), nil)
	breakDir(t, spool) // after the start: the consumer checked it then

	// Events 0-9 at offsets 0-9, the first invalid record at offset 10.
	events, recs, _ := e.withInvalid(50, 10, 9)
	e.produce(recs...)
	e.waitTotals(truth(events))
	waitFor(t, "the commit up to the first held DLQ record", 20*time.Second, func() bool { return e.committed("held")[0] == 10 })
	time.Sleep(3 * time.Second) // 30 flush intervals

	for name, want := range map[string]float64{
		"costpipe_flushes_abandoned_total": 0,
		"costpipe_events_in_total":         50, // read once: no rewind
		"costpipe_dlq_records_total":       5,  // sent once each
		"costpipe_dlq_spooled_total":       0,
	} {
		if got := metric(t, reg, name); got != want {
			t.Errorf("%s = %v with the spool broken, want %v", name, got, want)
		}
	}
	if got := metric(t, reg, "costpipe_dlq_produce_errors_total"); got > 10 {
		t.Errorf("costpipe_dlq_produce_errors_total = %v, want at most 5 records × 2 attempts", got)
	}
	if got := e.committed("held")[0]; got != 10 {
		t.Errorf("committed offset %d with the DLQ record at offset 10 neither in Kafka nor in the spool, want 10", got)
	}
	held := logs.Lines("cannot write DLQ records to the spool directory")
	if len(held) != 1 || !strings.Contains(held[0], "level=ERROR") || !strings.Contains(held[0], "dir="+spool) ||
		!strings.Contains(held[0], "records=") || !strings.Contains(held[0], "not a directory") {
		t.Errorf("want one ERROR line naming the spool directory, the records and the error; got %q", held)
	}
	if got := logs.Lines("rebalance waits"); len(got) > 0 {
		t.Errorf("the spool's failure logged as a rebalance: %q", got)
	}

	// A stop meanwhile says what is wrong, not that windows did not land.
	err := stop()
	if err == nil || !strings.Contains(err.Error(), "DLQ records not confirmed") || strings.Contains(err.Error(), "cannot land the last windows") {
		t.Errorf("Run = %v, want an error saying DLQ records are not confirmed", err)
	}
	if got := logs.Lines("msg=\"shutdown: "); len(got) != 1 || !strings.Contains(got[0], "DLQ records not confirmed") {
		t.Errorf("shutdown log %q, want one line saying DLQ records are not confirmed", got)
	}

	// Restarted with the directory repaired: the held records are read again
	// from the commit, spooled in one batch (one line), and the commit moves
	// to the end of the log.
	repairDir(t, spool)
	logs2 := &logtest.Buffer{}
	reg2 := prometheus.NewRegistry()
	stop = e.start("held", 100*time.Millisecond, slog.New(slog.NewTextHandler(logs2, nil)), opts(reg2), nil)
	waitFor(t, "5 spooled DLQ records", 20*time.Second, func() bool { return metric(t, reg2, "costpipe_dlq_spooled_total") == 5 })
	waitFor(t, "the commit to the end of the log", 20*time.Second, func() bool { return e.committed("held")[0] == 55 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	e.waitTotals(truth(events)) // the replay from offset 10 counted nothing twice
}

// TestHeldDLQRecordsGoToTheSpoolOnceItWorks: the spool directory breaks
// while the consumer runs and is repaired later: the held records are
// retried with backoff, without a restart, and the commit then moves past
// them.
func TestHeldDLQRecordsGoToTheSpoolOnceItWorks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	e.refuseDLQProduces()
	spool := filepath.Join(t.TempDir(), "spool")
	var logs logtest.Buffer
	reg := prometheus.NewRegistry()
	stop := e.start("retry", 100*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)), func(o *consumers.Options) {
		o.Registerer, o.DLQSpoolDir, o.DLQMaxAttempts = reg, spool, 2
	}, nil)
	breakDir(t, spool)
	events, recs, _ := e.withInvalid(20, 10, 4)
	e.produce(recs...)
	e.waitTotals(truth(events))
	waitFor(t, "the commit up to the first held DLQ record", 20*time.Second, func() bool { return e.committed("retry")[0] == 5 })
	repairDir(t, spool)
	waitFor(t, "2 spooled DLQ records", 30*time.Second, func() bool { return metric(t, reg, "costpipe_dlq_spooled_total") == 2 })
	waitFor(t, "the commit to the end of the log", 20*time.Second, func() bool { return e.committed("retry")[0] == 22 })
	if got := metric(t, reg, "costpipe_dlq_records_total"); got != 2 {
		t.Errorf("costpipe_dlq_records_total = %v, want 2 (each sent once)", got)
	}
	if got := metric(t, reg, "costpipe_dlq_spool_bytes"); got <= 0 {
		t.Errorf("costpipe_dlq_spool_bytes = %v after spooling, want the spool file's size", got)
	}
	lines := logs.Lines("DLQ records refused by Kafka written to the spool")
	if len(lines) != 1 || !strings.Contains(lines[0], "records=2") || !strings.Contains(lines[0], "first_offset=5") ||
		!strings.Contains(lines[0], "grant produce on "+schemas.DefaultDLQTopic) {
		t.Errorf("want one line for the spooled batch; got %q", lines)
	}
	if got := logs.Lines("DLQ spool directory writable again"); len(got) != 1 {
		t.Errorf("want one line saying the spool works again; got %q", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestNewChecksTheSpoolDir: New creates the spool directory and writes to
// it; one that cannot be written fails New with the directory named,
// instead of failing at the first record Kafka refuses.
func TestNewChecksTheSpoolDir(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dir := filepath.Join(base, "a", "spool")
	if err := consumers.CheckSpoolDir(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Fatalf("spool directory %v, %v: want one created with mode 0750", fi, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the check left %v in the spool directory", left)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(file, "spool")
	o := consumers.DefaultOptions()
	o.Brokers, o.DLQSpoolDir = []string{"127.0.0.1:1"}, bad
	c, err := consumers.New(o, nil)
	if err == nil {
		t.Fatalf("New with the spool directory %q under a file: no error", bad)
	}
	_ = c
	if !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) || !strings.Contains(err.Error(), "--dlq-spool") || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("New = %v, want the directory, the flag and the cause named", err)
	}
}

// TestValidateNamesTheFlags: the options the CLI sets from a flag are
// refused with the flag named; a session timeout above Kafka's default
// group.max.session.timeout.ms (30m) is refused instead of failing every
// join with INVALID_SESSION_TIMEOUT.
func TestValidateNamesTheFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		set  func(*consumers.Options)
		want string
	}{
		{func(o *consumers.Options) { o.SessionTimeout = 2 * time.Hour; o.HeartbeatInterval = time.Second },
			"--session-timeout 2h0m0s is above 30m"},
		{func(o *consumers.Options) { o.SessionTimeout = 30 * time.Minute }, ""},
		{func(o *consumers.Options) { o.SessionTimeout = 5 * time.Second }, "--session-timeout 5s is below 6s"},
		{func(o *consumers.Options) { o.FlushInterval = 5 * time.Millisecond }, "--flush-interval 5ms is below 10ms"},
		{func(o *consumers.Options) { o.MaxEventAge = 0 }, "--max-event-age 0s must be > 0"},
		{func(o *consumers.Options) { o.MaxFuture = -time.Second }, "--max-future -1s must be ≥ 0"},
		{func(o *consumers.Options) { o.DedupeWindow = time.Second }, "--dedupe-window 1s is below 1m"},
		{func(o *consumers.Options) { o.DedupeMaxIDs = 10 }, "--dedupe-max-ids 10 is below 1000"},
		{func(o *consumers.Options) { o.RebalanceTimeout = 500 * time.Millisecond }, "--rebalance-timeout 500ms is below 1s"},
		{func(o *consumers.Options) { o.FlushTimeoutOnRebalance = 70 * time.Second },
			"--flush-timeout-on-rebalance 1m10s must be > 0 and below --rebalance-timeout 1m0s"},
		{func(o *consumers.Options) { o.ShutdownTimeout = time.Second }, "--shutdown-timeout 1s is below 5s"},
		{func(o *consumers.Options) { o.DLQSpoolDir = "" }, "empty DLQ spool directory (--dlq-spool)"},
		{func(o *consumers.Options) { o.Group = "" }, "empty consumer group (--group)"},
		{func(o *consumers.Options) { o.Brokers = nil }, "no Kafka brokers (--brokers)"},
		{func(o *consumers.Options) { o.Topic = "" }, "empty topic (--topic)"},
	} {
		o := consumers.DefaultOptions()
		tc.set(&o)
		err := o.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Validate = %v, want nil", err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Validate = %v, want %q", err, tc.want)
		}
	}
}
