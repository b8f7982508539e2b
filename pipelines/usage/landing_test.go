package usage

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/faultproxy"
	"github.com/costpipe/costpipe/internal/whtest"
	"github.com/costpipe/costpipe/warehouse"
)

// faultyPipeline is a pipeline whose ClickHouse connections pass through a
// fault proxy, and a direct connection to the same database for checking.
func faultyPipeline(t *testing.T) (p *Pipeline, proxy *faultproxy.Proxy, direct *warehouse.Warehouse, db string) {
	t.Helper()
	srv := chtest.Shared(t)
	db = srv.NewDatabase(t)
	open := func(addr string) *warehouse.Warehouse {
		o := warehouse.DefaultOptions()
		o.DSN = "clickhouse://" + addr + "/" + db
		w, err := warehouse.Open(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}
	direct = open(srv.TCPAddr)
	if _, err := direct.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	proxy = faultproxy.Start(t, srv.TCPAddr)
	opts := DefaultOptions()
	opts.RetryMin, opts.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	opts.InsertTimeout = 5 * time.Second
	opts.Now = func() time.Time { return time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC) }
	opts.Logger = slog.New(slog.NewTextHandler(testLogOut(), nil))
	p, err := New(open(proxy.Addr), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Assign(context.Background(), []int32{0}); err != nil {
		t.Fatal(err)
	}
	return p, proxy, direct, db
}

// waitMinuteRows waits until the server holds want requests in usage_1m:
// the insert reached ClickHouse and was committed.
func waitMinuteRows(t *testing.T, w *warehouse.Warehouse, db string, month int, want uint64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if r, _ := count(t, w, db, "usage_1m", month); r == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage_1m never held %d requests", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func assertExact(t *testing.T, w *warehouse.Warehouse, db string, month int, requests, input uint64) {
	t.Helper()
	for _, tbl := range []string{"usage_1m", "usage_1h", "usage_1d"} {
		if r, in := count(t, w, db, tbl, month); r != requests || in != input {
			t.Errorf("%s: %d requests, %d input tokens; want %d, %d (a repeated insert double counts)", tbl, r, in, requests, input)
		}
	}
}

// A shutdown that cancels the flush while ClickHouse is committing an insert
// (SIGTERM mid-insert) must not make the next flush insert it again. The
// proxy holds the server's answer: the server has committed, the client does
// not know yet. Before the fix the cancelled insert returned an error at once
// and the shutdown flush inserted the same rows a second time.
func TestCancelledInsertIsNotRepeated(t *testing.T) {
	p, proxy, direct, db := faultyPipeline(t)
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for i := int64(0); i < 50; i++ {
		p.Add(0, i, ev("e", t0.Add(time.Duration(i)*time.Second), "acme", 100))
	}
	// Every answer of the server takes 1.5 s to reach the client: the insert
	// is committed about 1.5 s (one round trip) before the client hears so.
	proxy.Delay(1500 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Flush(ctx) }()
	t.Cleanup(func() { cancel(); <-done }) // the pipeline's warehouse outlives Flush
	waitMinuteRows(t, direct, db, 202611, 50)
	cancel() // SIGTERM while the insert's answer is on its way
	err := <-done
	done <- nil
	proxy.Delay(0)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted flush: %v", err)
	}
	// The shutdown flush, with a fresh context, lands the rest.
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	if err := p.Flush(sctx); err != nil {
		t.Fatalf("shutdown flush: %v", err)
	}
	assertExact(t, direct, db, 202611, 50, 5000)
}

// An insert whose connection breaks after the server committed, followed by
// landed-checks that fail (here: one rollup table is unreadable, renamed
// away, while inserts into the minute table still work): the pipeline keeps
// checking, and inserts again only once ClickHouse says the rows are not
// there. Before the fix a failed check fell through to a blind re-insert,
// which succeeded and double counted.
func TestFailedLandedCheckIsRetriedNotInserted(t *testing.T) {
	p, proxy, direct, db := faultyPipeline(t)
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for i := int64(0); i < 30; i++ {
		p.Add(0, i, ev("e", t0.Add(time.Duration(i)*time.Second), "acme", 10))
	}
	day, hidden := db+"."+warehouse.Day.Name(), db+".hidden_for_test"
	proxy.Delay(time.Second)
	done := make(chan error, 1)
	go func() { done <- p.Flush(context.Background()) }()
	t.Cleanup(func() { <-done })
	waitMinuteRows(t, direct, db, 202611, 30)
	if err := direct.Conn().Exec(context.Background(), "RENAME TABLE "+day+" TO "+hidden); err != nil {
		t.Fatal(err)
	}
	proxy.Cut() // the insert's connection breaks before its answer
	proxy.Delay(0)
	time.Sleep(time.Second) // several failed checks (backoff 20ms..100ms)
	if err := direct.Conn().Exec(context.Background(), "RENAME TABLE "+hidden+" TO "+day); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("flush: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("flush did not finish after the landing marks were readable again")
	}
	assertExact(t, direct, db, 202611, 30, 300)
	if got := counterValue(t, p.m.landedAfterError); got < 1 {
		t.Errorf("costpipe_inserts_landed_after_error_total = %v, want ≥ 1", got)
	}
}

// An insert that fails before reaching the server is inserted again once the
// check says it is not there, and lands exactly once.
func TestRefusedInsertLandsOnce(t *testing.T) {
	p, proxy, direct, db := faultyPipeline(t)
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for i := int64(0); i < 20; i++ {
		p.Add(0, i, ev("e", t0.Add(time.Duration(i)*time.Second), "acme", 7))
	}
	proxy.Refuse(true)
	proxy.Cut() // the pool's idle connections are gone: every query fails
	done := make(chan error, 1)
	go func() { done <- p.Flush(context.Background()) }()
	time.Sleep(500 * time.Millisecond)
	proxy.Refuse(false)
	if err := <-done; err != nil {
		t.Fatalf("flush: %v", err)
	}
	assertExact(t, direct, db, 202611, 20, 140)
	// A later flush after an uncertain one reads the marks first and adds
	// the new rows only.
	p.Add(0, 20, ev("e", t0.Add(time.Minute), "acme", 7))
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertExact(t, direct, db, 202611, 21, 147)
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func testLogOut() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}

// The private ClickHouse server stopped in the middle of a flush: the flush
// retries (checking before each insert) until the server is back, a flush
// cancelled while it is down keeps its windows, and the next flush lands
// them exactly once.
func TestClickHouseStoppedMidFlush(t *testing.T) {
	srv := chtest.Start(t)
	db := srv.NewDatabase(t)
	w := whtest.Migrated(t, srv.DSN(db))
	opts := DefaultOptions()
	opts.RetryMin, opts.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	opts.InsertTimeout = 5 * time.Second
	opts.Now = func() time.Time { return time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC) }
	log := &logRecords{next: slog.NewTextHandler(testLogOut(), nil)}
	opts.Logger = slog.New(log)
	p, err := New(w, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Assign(context.Background(), []int32{0, 1}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for i := int64(0); i < 40; i++ {
		p.Add(int32(i%2), i, ev("e", t0.Add(time.Duration(i)*time.Minute), "acme", 3))
	}
	srv.Stop(t)
	// A flush cancelled while the server is down returns an error and keeps
	// its windows.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err = p.Flush(ctx)
	cancel()
	if err == nil {
		t.Fatal("flush succeeded with ClickHouse stopped")
	}
	if p.Windows() == 0 {
		t.Fatal("a failed flush dropped its windows")
	}
	// The next flush waits for the server.
	done := make(chan error, 1)
	go func() { done <- p.Flush(context.Background()) }()
	time.Sleep(time.Second)
	srv.Restart(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("flush after restart: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("flush did not land after ClickHouse came back")
	}
	assertExact(t, w, db, 202611, 40, 120)
	if p.Windows() != 0 {
		t.Errorf("%d windows left after landing", p.Windows())
	}
	// The failed attempts (every 20..200 ms) were logged once: the first,
	// the next within a minute only counted. The landing that worked says
	// so, with the outage's figures: 40 minute rows, an hour and a day row
	// per partition.
	warnings := 0
	for _, r := range log.all() {
		if r.Level == slog.LevelWarn {
			warnings++
		}
	}
	if warnings != 1 {
		t.Errorf("%d warnings about failed landing attempts, want 1 (then one a minute at most)", warnings)
	}
	again := log.find("landing again")
	if len(again) != 1 || again[0].Level != slog.LevelInfo {
		t.Fatalf("landing again: %v, want one line at INFO", again)
	}
	a := map[string]slog.Value{}
	again[0].Attrs(func(at slog.Attr) bool { a[at.Key] = at.Value; return true })
	if a["rows"].Int64() != 44 || a["events"].Int64() != 40 || a["failed_attempts"].Int64() < 2 || a["failing_for"].Duration() < time.Second {
		t.Errorf("landing again: rows=%v events=%v failed_attempts=%v failing_for=%v, want 44, 40, ≥ 2, ≥ 1s",
			a["rows"], a["events"], a["failed_attempts"], a["failing_for"])
	}
	// The next flush that lands is no recovery.
	p.Add(0, 40, ev("e", t0.Add(time.Hour), "acme", 3))
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(log.find("landing again")); n != 1 {
		t.Errorf("%d landing again lines after a flush that landed at once, want still 1", n)
	}
}

// An insert in flight when ctx ends with the cause context.DeadlineExceeded
// (the consumer's shutdown budget: it starts with the shutdown, after the
// flush began, so ctx could not carry it as a deadline) ends then, not at
// InsertTimeout; nothing is counted twice once the server answers again.
// Before, the insert ran on to InsertTimeout (30 s by default) and held the
// shutdown up past its budget.
func TestShutdownDeadlineEndsTheInsertInFlight(t *testing.T) {
	p, proxy, direct, db := faultyPipeline(t)
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for i := int64(0); i < 30; i++ {
		p.Add(0, i, ev("e", t0.Add(time.Duration(i)*time.Second), "acme", 5))
	}
	proxy.Hold() // the server works, its answers do not reach the client
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- p.Flush(ctx) }()
	time.Sleep(300 * time.Millisecond)
	cancel(context.DeadlineExceeded)
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("flush still running 10 s after its deadline")
	}
	took := time.Since(began)
	proxy.Release()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("flush ended by the deadline: %v, want an error naming context.DeadlineExceeded", err)
	}
	if took > 2*time.Second {
		t.Errorf("flush took %s after a deadline at 300 ms: the insert in flight ran on to InsertTimeout (5 s)", took.Round(100*time.Millisecond))
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertExact(t, direct, db, 202611, 30, 150)
}

// logRecords keeps the records logged through it (for tests of log lines)
// and passes them on to next.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
	next slog.Handler
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecords) WithGroup(string) slog.Handler            { return l }

func (l *logRecords) Handle(ctx context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Clone())
	l.mu.Unlock()
	return l.next.Handle(ctx, r)
}

func (l *logRecords) all() []slog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]slog.Record(nil), l.recs...)
}

func (l *logRecords) find(msg string) []slog.Record {
	var out []slog.Record
	for _, r := range l.all() {
		if r.Message == msg {
			out = append(out, r)
		}
	}
	return out
}

// A ClickHouse that stops answering (the connection open, nothing coming
// back) after an insert: each "did it land?" check has a deadline, so the
// checks keep failing, counted and logged, instead of the first one
// waiting forever with the error count frozen at 1 (the outage then showed
// in no metric until the stall alert). Once the server answers again the
// flush lands, once.
func TestHungClickHouseChecksKeepFailing(t *testing.T) {
	p, proxy, direct, db := faultyPipeline(t)
	p.opts.InsertTimeout = 300 * time.Millisecond
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for i := int64(0); i < 20; i++ {
		p.Add(0, i, ev("e", t0.Add(time.Duration(i)*time.Second), "acme", 10))
	}
	proxy.Hold()
	done := make(chan error, 1)
	go func() { done <- p.Flush(context.Background()) }()
	// The insert fails at its deadline, or, when it needed a new
	// connection, once the handshake's dial timeout (5 s) passed: the
	// driver bounds a handshake by that alone. The checks after it are
	// bounded by the insert timeout.
	first := time.Now().Add(10 * time.Second)
	for counterValue(t, p.m.chErrors) == 0 {
		if time.Now().After(first) {
			proxy.Release()
			t.Fatal("the insert into a hung server did not fail within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := counterValue(t, p.m.chErrors)
	time.Sleep(3 * time.Second)
	if got := counterValue(t, p.m.chErrors) - before; got < 4 {
		t.Errorf("costpipe_clickhouse_errors_total grew by %v in 3 s of a hung server with a 300 ms insert timeout; want the checks to keep failing (≥ 4)", got)
	}
	proxy.Release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("flush: %v", err)
		}
	case <-time.After(30 * time.Second):
		proxy.Release()
		t.Fatal("flush did not finish once the server answered again")
	}
	assertExact(t, direct, db, 202611, 20, 200)
}
