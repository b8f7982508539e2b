package consumers_test

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/consumers"
	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/schemas"
)

// newPrivateEnv is newEnv with a ClickHouse server of the test's own, which
// it may stop and restart.
func newPrivateEnv(t *testing.T, partitions int) *env {
	t.Helper()
	return newEnvOn(t, partitions, chtest.Start(t))
}

// records is a slog.Handler keeping every record (for tests of log lines),
// and passing it on to next (nil: nowhere).
type records struct {
	mu    sync.Mutex
	recs  []slog.Record
	attrs []slog.Attr // of WithAttrs
	next  slog.Handler
	root  *records
}

func newRecords() *records {
	r := &records{}
	r.root = r
	if os.Getenv("COSTPIPE_TEST_LOG") == "info" {
		r.next = slog.NewTextHandler(os.Stderr, nil)
	}
	return r
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }

func (r *records) Handle(ctx context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(r.attrs...)
	r.root.mu.Lock()
	r.root.recs = append(r.root.recs, rec)
	r.root.mu.Unlock()
	if r.next != nil {
		return r.next.Handle(ctx, rec)
	}
	return nil
}

func (r *records) WithAttrs(as []slog.Attr) slog.Handler {
	return &records{attrs: append(slices.Clone(r.attrs), as...), next: r.next, root: r.root}
}

func (r *records) WithGroup(string) slog.Handler { return r }

// find returns the records with message msg.
func (r *records) find(msg string) []slog.Record {
	r.root.mu.Lock()
	defer r.root.mu.Unlock()
	var out []slog.Record
	for _, rec := range r.root.recs {
		if rec.Message == msg {
			out = append(out, rec)
		}
	}
	return out
}

// attrs returns a record's attributes by key.
func attrsOf(rec slog.Record) map[string]slog.Value {
	out := map[string]slog.Value{}
	rec.Attrs(func(a slog.Attr) bool { out[a.Key] = a.Value.Resolve(); return true })
	return out
}

// aggregator is a consumer and its pipeline logging to log and counting in
// reg, started in group; stop cancels Run and returns its error.
func (e *env) aggregator(group string, flush time.Duration, log *slog.Logger, reg *prometheus.Registry, opt func(*consumers.Options)) (stop func() error) {
	e.t.Helper()
	return e.start(group, flush, log, func(o *consumers.Options) {
		o.Registerer = reg
		if opt != nil {
			opt(o)
		}
	}, nil)
}

// committed returns the group's committed offsets of the events topic.
func (e *env) committed(group string) map[int32]int64 {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[int32]int64{}
	for p, o := range resp[schemas.DefaultTopic] {
		out[p] = o.At
	}
	return out
}

// endOffsets returns the events topic's log end offsets.
func (e *env) endOffsets() map[int32]int64 {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), schemas.DefaultTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// A SIGTERM while ClickHouse is down: the whole shutdown (landing attempts,
// leaving the group) fits in its budget (Options.ShutdownTimeout: by default
// 25 s, inside Kubernetes' grace period of 30 s; 6 s here), Run
// reports that the last windows could not land (the command exits 1), the
// offsets of what did not land are not committed, and the next start reads
// those events again and lands them exactly once. Before the fix the
// shutdown flush tried for 30 s and the revoke callback tried the same
// landing again for 20 s: about 50 s, past the grace period (SIGKILL).
func TestShutdownWithClickHouseDownFitsTheGracePeriod(t *testing.T) {
	// Not parallel: it bounds the shutdown in wall time.
	e := newPrivateEnv(t, 2)
	log := newRecords()
	reg := prometheus.NewRegistry()
	// A short budget keeps the test short; the default (25 s) works the
	// same way, by the same clock.
	const budget = 6 * time.Second
	stop := e.aggregator("sd", 200*time.Millisecond, slog.New(log), reg, func(o *consumers.Options) { o.ShutdownTimeout = budget })

	events, recs := e.jsonEvents(0, 200, 4, "gpt-4o")
	e.produce(recs...)
	e.waitTotals(truth(events))
	landedEnds := e.endOffsets()
	waitFor(t, "the landed events' offsets to be committed", 30*time.Second, func() bool {
		got := e.committed("sd")
		for p, end := range landedEnds {
			if got[p] != end {
				return false
			}
		}
		return true
	})

	e.srv.Stop(t)
	late, recs := e.jsonEvents(200, 300, 4, "gpt-4o-mini")
	events = append(events, late...)
	e.produce(recs...)
	waitFor(t, "the events produced while ClickHouse is down to be read", 30*time.Second, func() bool {
		return metric(t, reg, "costpipe_events_in_total") == 300
	})
	time.Sleep(time.Second) // a landing attempt or two fails

	began := time.Now()
	err := stop()
	took := time.Since(began)
	t.Logf("shutdown with ClickHouse down took %s: %v", took.Round(100*time.Millisecond), err)
	if err == nil {
		t.Error("Run returned nil although the last windows could not land (the command would exit 0)")
	}
	// The whole shutdown within its budget (with the default, 25 s inside
	// Kubernetes' 30 s grace period), with a margin for a slow test machine;
	// before, a second landing in the revoke callback doubled it.
	if took > budget+2*time.Second {
		t.Errorf("shutdown took %s with ClickHouse down, want at most the budget %s (+2 s margin)", took.Round(100*time.Millisecond), budget)
	}
	// One landing, then nothing more: the revoke callback of the leave does
	// not try the same landing again.
	fail := log.find("shutdown: cannot land before stopping: ClickHouse unreachable; the events not landed will be read again from Kafka at the next start (offsets not committed)")
	if len(fail) != 1 || fail[0].Level != slog.LevelError {
		t.Errorf("shutdown failure lines: %v, want one at ERROR", fail)
	} else if a := attrsOf(fail[0]); a["events"].Int64() != 100 || a["partitions"].String() != "[0 1]" || a["after"].Duration() > budget {
		t.Errorf("shutdown failure line: events=%v partitions=%v after=%v, want 100, [0 1], at most %s", a["events"], a["partitions"], a["after"], budget)
	}
	if n := len(log.find("partitions revoked before their state landed; dropping it for the next owner to replay")); n != 0 {
		t.Errorf("the revoke callback tried to land again at the shutdown (%d failure lines)", n)
	}
	if n := len(log.find("partitions revoked without landing: the shutdown could not land them; their events are read again from Kafka at the next start")); n != 1 {
		t.Errorf("%d lines for the partitions revoked without landing, want 1", n)
	}
	got := e.committed("sd")
	for p, end := range landedEnds {
		if got[p] != end {
			t.Errorf("partition %d: committed offset %d after the failed shutdown, want %d (the end of what landed)", p, got[p], end)
		}
	}

	// ClickHouse back: the next start reads the unlanded events again and
	// lands them once.
	e.srv.Restart(t)
	stop = e.aggregator("sd", 200*time.Millisecond, slog.New(newRecords()), prometheus.NewRegistry(), nil)
	e.waitTotals(truth(events))
	time.Sleep(500 * time.Millisecond) // a double count would land within a flush or two
	e.waitTotals(truth(events))
	if err := stop(); err != nil {
		t.Fatalf("shutdown with ClickHouse up: %v", err)
	}
}

// ClickHouse down for a few seconds, then back: the failed landing attempts
// are logged at once and then at most once a minute (not once per retry),
// the first landing that succeeds says so ("landing again": for how long
// and how many attempts it had failed, what it landed), and so does the
// group when it is no longer stalled. Before the fix every retry logged a
// warning and the recovery was silent.
func TestLandingAgainAndStallClearedAreLogged(t *testing.T) {
	t.Parallel()
	e := newPrivateEnv(t, 1)
	log := newRecords()
	reg := prometheus.NewRegistry()
	stop := e.aggregator("rec", 200*time.Millisecond, slog.New(log), reg, func(o *consumers.Options) {
		o.GroupLagInterval = 100 * time.Millisecond
		o.StallTimeout = time.Second
	})
	events, recs := e.jsonEvents(0, 100, 4, "gpt-4o")
	e.produce(recs...)
	e.waitTotals(truth(events))

	e.srv.Stop(t)
	down := time.Now()
	late, recs := e.jsonEvents(100, 160, 4, "gpt-4o-mini")
	events = append(events, late...)
	e.produce(recs...)
	waitFor(t, "the events produced while ClickHouse is down to be read", 30*time.Second, func() bool {
		return metric(t, reg, "costpipe_events_in_total") == 160
	})
	waitFor(t, "the group to be reported stalled", 30*time.Second, func() bool {
		return len(log.find("consumer group stalled")) > 0
	})
	time.Sleep(3 * time.Second) // retries every 50..500 ms: a dozen failed attempts or more
	failures := 0
	for _, msg := range []string{
		"cannot land rollups in clickhouse; checking whether the insert landed before retrying (Kafka keeps the data meanwhile)",
		"cannot check whether an insert landed; checking again",
		"cannot read landing marks after an insert of unknown outcome; retrying before inserting anything",
	} {
		failures += len(log.find(msg))
	}
	if failures != 1 {
		t.Errorf("%d warnings about failed landing attempts in %s, want 1 (the first; the next within a minute are counted, not logged)",
			failures, time.Since(down).Round(time.Second))
	}

	e.srv.Restart(t)
	e.waitTotals(truth(events))
	waitFor(t, `"landing again"`, 30*time.Second, func() bool { return len(log.find("landing again")) > 0 })
	again := log.find("landing again")
	if len(again) != 1 || again[0].Level != slog.LevelInfo {
		t.Fatalf("landing again: %d records (%v), want one at INFO", len(again), again)
	}
	a := attrsOf(again[0])
	if d := a["failing_for"].Duration(); d < 2*time.Second || d > time.Since(down) {
		t.Errorf("landing again: failing_for=%v, want between 2s and %s", a["failing_for"], time.Since(down).Round(time.Second))
	}
	if n := a["failed_attempts"].Int64(); n < 5 {
		t.Errorf("landing again: failed_attempts=%v, want at least 5", a["failed_attempts"])
	}
	if n := a["events"].Int64(); n != 60 {
		t.Errorf("landing again: events=%v, want 60 (those read while ClickHouse was down)", a["events"])
	}
	if n := a["rows"].Int64(); n < 3 {
		t.Errorf("landing again: rows=%v, want at least 3 (a minute, an hour and a day row)", a["rows"])
	}

	waitFor(t, `"consumer group no longer stalled"`, 30*time.Second, func() bool {
		return len(log.find("consumer group no longer stalled")) > 0
	})
	cleared := log.find("consumer group no longer stalled")
	if len(cleared) != 1 || cleared[0].Level != slog.LevelInfo {
		t.Fatalf("no longer stalled: %d records, want one at INFO", len(cleared))
	}
	c := attrsOf(cleared[0])
	if c["group"].String() != "rec" || c["state"].String() != "stalled" || c["partitions"].String() != "[0]" {
		t.Errorf("no longer stalled: group=%v state=%v partitions=%v, want rec, stalled, [0]", c["group"], c["state"], c["partitions"])
	}
	if d := c["after"].Duration(); d < time.Second || d > time.Since(down)+time.Second {
		t.Errorf("no longer stalled: after=%v, want between the stall timeout (1s) and the outage (%s)", c["after"], time.Since(down).Round(time.Second))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
