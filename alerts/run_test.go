package alerts

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/faultproxy"
	"github.com/costpipe/costpipe/internal/logtest"
	"github.com/costpipe/costpipe/internal/whtest"
	"github.com/costpipe/costpipe/warehouse"
)

// syncBuffer is the shared concurrent log buffer.
type syncBuffer = logtest.Buffer

// outageRunner is a Runner of cfg over a migrated database of the shared
// server reached through a fault proxy, with the clock the test moves
// (start 2026-03-10T12:00:00Z), the Source wrap(querier) and its log.
type outageRunner struct {
	r     *Runner
	proxy *faultproxy.Proxy
	clock *atomic.Int64
	log   *syncBuffer
}

func (o *outageRunner) now() time.Time          { return time.Unix(0, o.clock.Load()).UTC() }
func (o *outageRunner) advance(d time.Duration) { o.clock.Add(int64(d)) }
func (o *outageRunner) tick(t *testing.T) error {
	t.Helper()
	return o.r.Tick(context.Background(), o.now())
}

func (o *outageRunner) evals(rule, result string) float64 {
	var m dto.Metric
	if err := o.r.m.evals.WithLabelValues(rule, result).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func newOutageRunner(t *testing.T, rules string, wrap func(Source) Source) *outageRunner {
	t.Helper()
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	whtest.Migrated(t, srv.DSN(db))
	proxy := faultproxy.Start(t, srv.TCPAddr)
	wo := warehouse.DefaultOptions()
	wo.DSN, wo.DialTimeout = "clickhouse://"+proxy.Addr+"/"+db, time.Second
	w, err := warehouse.Open(context.Background(), wo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	o := &outageRunner{proxy: proxy, clock: new(atomic.Int64), log: &syncBuffer{}}
	o.clock.Store(ts("2026-03-10T12:00:00Z").UnixNano())
	store := NewStore(w, o.now)
	del, _ := newDeliverer(t, store, "A", false)
	var src Source = analytics.New(w, analytics.Options{Now: o.now})
	if wrap != nil {
		src = wrap(src)
	}
	o.r, err = NewRunner(mustConfig(t, rules), src, store, del, RunOptions{Now: o.now,
		Logger: slog.New(slog.NewTextHandler(o.log, nil)), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestRunnerOutageCountedAndLogged: while ClickHouse is unreachable every
// tick counts an error for every rule (the state cannot be loaded, so no
// rule is evaluated: nothing was counted), logs the first failure at once
// and then one line a minute with the failures since, and the first tick
// that completes again logs one line saying how long evaluation failed.
func TestRunnerOutageCountedAndLogged(t *testing.T) {
	t.Parallel()
	o := newOutageRunner(t, "interval: 30s\nrules:\n  - {name: spend, kind: budget, period: day, amount_usd: 100}\n  - {name: unpriced, kind: unpriced}\n", nil)
	if err := o.tick(t); err != nil {
		t.Fatal(err)
	}
	for _, rule := range []string{"spend", "unpriced"} {
		if ok, bad := o.evals(rule, "ok"), o.evals(rule, "error"); ok != 1 || bad != 0 {
			t.Fatalf("%s after a good tick: ok %v error %v, want 1 and 0", rule, ok, bad)
		}
	}

	o.proxy.Refuse(true)
	o.proxy.Cut()
	const failed = `level=WARN msg="alert rule evaluation failed; its alerts keep their state"`
	for i, step := range []struct {
		advance time.Duration
		lines   int    // failure lines logged so far
		last    string // in the last one
	}{
		{0, 1, `rules=spend,unpriced failures=1 failing_for=0s err=`},
		{30 * time.Second, 1, ""},
		{31 * time.Second, 2, `rules=spend,unpriced failures=2 failing_for=1m1s err=`},
		{30 * time.Second, 2, ""},
	} {
		o.advance(step.advance)
		if err := o.tick(t); err == nil {
			t.Fatalf("tick %d with ClickHouse unreachable: no error", i)
		}
		for _, rule := range []string{"spend", "unpriced"} {
			if bad := o.evals(rule, "error"); bad != float64(i+1) {
				t.Errorf("tick %d with ClickHouse unreachable: %s counts %v errors, want %d", i, rule, bad, i+1)
			}
			if ok := o.evals(rule, "ok"); ok != 1 {
				t.Errorf("tick %d with ClickHouse unreachable: %s counts %v ok, want 1", i, rule, ok)
			}
		}
		got := o.log.Lines(failed)
		if len(got) != step.lines || step.last != "" && !strings.Contains(got[len(got)-1], step.last) {
			t.Fatalf("after tick %d with ClickHouse unreachable, %d failure lines, want %d, the last with %q:\n%s",
				i, len(got), step.lines, step.last, o.log.String())
		}
	}
	if err := o.r.Ready(); err == nil {
		t.Error("ready after 91 s without a complete evaluation")
	}

	o.proxy.Refuse(false)
	o.advance(30 * time.Second)
	if err := o.tick(t); err != nil {
		t.Fatalf("tick with ClickHouse back: %v", err)
	}
	if got := o.log.Lines(`msg="alert rule evaluation recovered"`); len(got) != 1 ||
		!strings.Contains(got[0], "level=INFO") || !strings.Contains(got[0], "rules=spend,unpriced failed_for=2m1s") {
		t.Errorf("recovery lines %q, want one naming both rules and failed_for=2m1s:\n%s", got, o.log.String())
	}
	if err := o.r.Ready(); err != nil {
		t.Errorf("not ready after a complete evaluation: %v", err)
	}
	o.advance(30 * time.Second)
	if err := o.tick(t); err != nil {
		t.Fatal(err)
	}
	if n := len(o.log.Lines(`msg="alert rule evaluation`)); n != 3 {
		t.Errorf("%d failure and recovery lines, want 3 (nothing more once recovered):\n%s", n, o.log.String())
	}
	for _, rule := range []string{"spend", "unpriced"} {
		if ok, bad := o.evals(rule, "ok"), o.evals(rule, "error"); ok != 3 || bad != 4 {
			t.Errorf("%s at the end: ok %v error %v, want 3 and 4", rule, ok, bad)
		}
	}
}

// failingGrowth is a Source whose growth questions fail while fail is set.
type failingGrowth struct {
	Source
	fail *atomic.Bool
}

func (f failingGrowth) Growth(ctx context.Context, gq analytics.GrowthQuery) ([]analytics.GrowthRow, error) {
	if f.fail.Load() {
		return nil, errors.New("growth is broken")
	}
	return f.Source.Growth(ctx, gq)
}

// TestRunnerRuleFailureCountedAndLogged: a rule whose own query fails
// counts its errors alone and is logged alone, at once and then once a
// minute; the other rules count ok; the tick completes (ready).
func TestRunnerRuleFailureCountedAndLogged(t *testing.T) {
	t.Parallel()
	fail := new(atomic.Bool)
	fail.Store(true)
	o := newOutageRunner(t, "interval: 30s\nrules:\n  - {name: fast, kind: growth, doubling_days: 7}\n  - {name: unpriced, kind: unpriced}\n",
		func(s Source) Source { return failingGrowth{s, fail} })
	for i := range 3 {
		if err := o.tick(t); err != nil {
			t.Fatalf("tick %d: %v", i, err)
		}
		o.advance(30 * time.Second)
	}
	if ok, bad, other := o.evals("fast", "ok"), o.evals("fast", "error"), o.evals("unpriced", "ok"); ok != 0 || bad != 3 || other != 3 {
		t.Errorf("fast ok %v error %v, unpriced ok %v; want 0, 3, 3", ok, bad, other)
	}
	got := o.log.Lines(`msg="alert rule evaluation failed`)
	if len(got) != 2 || !strings.Contains(got[0], `rules=fast failures=1 failing_for=0s err="cannot evaluate rule \"fast\": growth is broken"`) ||
		!strings.Contains(got[1], "rules=fast failures=2 failing_for=1m0s") {
		t.Errorf("failure lines %q, want two for fast alone:\n%s", got, o.log.String())
	}
	if err := o.r.Ready(); err != nil {
		t.Errorf("a rule failing alone makes the runner not ready: %v", err)
	}
	fail.Store(false)
	if err := o.tick(t); err != nil {
		t.Fatal(err)
	}
	if got := o.log.Lines(`msg="alert rule evaluation recovered"`); len(got) != 1 || !strings.Contains(got[0], "rules=fast failed_for=1m30s") {
		t.Errorf("recovery lines %q:\n%s", got, o.log.String())
	}
}
