package alerts

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/internal/faultproxy"
)

// stallingSource is a Source whose usage questions about the tenants in
// stall do not answer until their ctx ends (at most 5 s: then they answer,
// late); the others answer from Source. calls records when each tenant's
// question came. Safe for concurrent use when Source is.
type stallingSource struct {
	Source
	stall map[string]bool
	mu    sync.Mutex
	calls map[string]time.Time
}

func (s *stallingSource) Usage(ctx context.Context, uq analytics.UsageQuery) ([]analytics.UsageRow, error) {
	tenant := strings.Join(uq.Where[analytics.DimTenant], ",")
	s.mu.Lock()
	if s.calls == nil {
		s.calls = map[string]time.Time{}
	}
	s.calls[tenant] = time.Now()
	stall := s.stall[tenant]
	s.mu.Unlock()
	if stall {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
	return s.Source.Usage(ctx, uq)
}

func (s *stallingSource) called(tenant string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[tenant]
}

// tenantUsage is a Source safe for concurrent use answering every usage
// question with one group per tenant of the scope, each with 10 unpriced
// calls.
type tenantUsage struct{ Source }

func (tenantUsage) Usage(_ context.Context, uq analytics.UsageQuery) ([]analytics.UsageRow, error) {
	var out []analytics.UsageRow
	for _, t := range uq.Where[analytics.DimTenant] {
		out = append(out, analytics.UsageRow{Group: map[analytics.Dim]string{analytics.DimTenant: t}, Requests: 10, UnpricedRequests: 10})
	}
	return out, nil
}

// TestEngineRuleTimeoutKeepsState (review R7): a rule whose query does not
// answer within the engine's RuleTimeout fails with ErrRuleTimeout after
// that long, its firing alert keeps firing (it is not read as no calls,
// which resolves), and the rule after it is evaluated: its alert resolves
// on no calls.
func TestEngineRuleTimeoutKeepsState(t *testing.T) {
	t.Parallel()
	s := NewScript()
	t0 := ts("2026-03-10T12:00:00Z")
	for _, tenant := range []string{"slow", "fast"} {
		fill(t, s, tenant, "m", t0.Add(-30*time.Minute), t0, time.Minute, func(time.Time) Point { return Point{Requests: 1, Unpriced: 1} })
	}
	cfg := mustConfig(t, `rules:
  - {name: slow, kind: unpriced, scope: {tenant: slow}, by: [tenant]}
  - {name: fast, kind: unpriced, scope: {tenant: fast}, by: [tenant]}
`)
	src := &stallingSource{Source: s}
	e := NewEngine(cfg, src)
	e.RuleTimeout = 200 * time.Millisecond
	evalOK(t, e, t0)
	if got := states(e, "slow")["tenant=slow|"]; got != StateFiring {
		t.Fatalf("slow before the stall: %s", got)
	}
	src.stall = map[string]bool{"slow": true}
	start := time.Now()
	_, failed := e.Eval(context.Background(), t0.Add(2*time.Hour)) // no calls in the window
	took := time.Since(start)
	if len(failed) != 1 || failed[0].Rule != "slow" || !errors.Is(failed[0].Err, ErrRuleTimeout) ||
		!strings.Contains(failed[0].Err.Error(), "rule evaluation timed out after 200ms") {
		t.Fatalf("failed %+v, want slow timed out after 200ms", failed)
	}
	if took > 2*time.Second {
		t.Errorf("Eval took %s with a rule timeout of 200ms", took)
	}
	if got := states(e, "slow")["tenant=slow|"]; got != StateFiring {
		t.Errorf("the timed-out rule's alert is %s, want it firing still", got)
	}
	if got := states(e, "fast")["tenant=fast|"]; got != StateResolved {
		t.Errorf("the rule after the timed-out one: %s, want resolved (evaluated: no calls)", got)
	}
}

// TestEngineParallelRulesPassASlowOne: with Parallel 2, the rules after
// one that stalls are evaluated while it waits for its timeout, not after
// it; the alerts still advance in file order.
func TestEngineParallelRulesPassASlowOne(t *testing.T) {
	// Not parallel: it bounds rule evaluations against real ClickHouse queries in wall time.
	cfg := mustConfig(t, `rules:
  - {name: slow, kind: unpriced, scope: {tenant: slow}, by: [tenant]}
  - {name: a, kind: unpriced, scope: {tenant: a}, by: [tenant]}
  - {name: b, kind: unpriced, scope: {tenant: b}, by: [tenant]}
  - {name: c, kind: unpriced, scope: {tenant: c}, by: [tenant]}
`)
	src := &stallingSource{Source: tenantUsage{}, stall: map[string]bool{"slow": true}}
	e := NewEngine(cfg, src)
	e.RuleTimeout, e.Parallel = 500*time.Millisecond, 2
	changed, failed := e.Eval(context.Background(), ts("2026-03-10T12:00:00Z"))
	if len(failed) != 1 || failed[0].Rule != "slow" || !errors.Is(failed[0].Err, ErrRuleTimeout) {
		t.Fatalf("failed %+v, want slow timed out", failed)
	}
	var rules []string
	for _, a := range changed {
		rules = append(rules, a.Rule)
	}
	if !slices.Equal(rules, []string{"a", "b", "c"}) {
		t.Errorf("changed %v, want a, b, c firing in file order", rules)
	}
	slow := src.called("slow")
	for _, r := range []string{"a", "b", "c"} {
		if at := src.called(r); at.Sub(slow) >= 400*time.Millisecond {
			t.Errorf("rule %s was asked %s after the slow one, want while it waited (timeout 500ms)", r, at.Sub(slow))
		}
	}
}

// TestRunnerRuleTimeoutInClickHouse: a rule whose ClickHouse query does
// not answer (the server's answer held back by a proxy) is cut at the
// rule timeout, by default the interval (1 s): the tick completes (the
// runner stays ready), the rule counts result="timeout" (not error, not
// ok) and is logged as failing, the next rule counts ok, and the rule
// recovers at the next tick. (Before, the tick waited for the query: here
// 5 s, in production up to ClickHouse's read timeout, 300 s, every rule
// behind it.)
func TestRunnerRuleTimeoutInClickHouse(t *testing.T) {
	// Not parallel: it bounds rule evaluations against real ClickHouse queries in wall time.
	var hs *holdingSource
	wrap := func(s Source) Source {
		hs = &holdingSource{Source: s}
		return hs
	}
	o := newOutageRunner(t, "interval: 1s\nrules:\n  - {name: slow, kind: unpriced, scope: {tenant: slow}}\n  - {name: fast, kind: budget, period: day, amount_usd: 100}\n", wrap)
	hs.proxy = o.proxy
	// One rule at a time: the proxy holds every connection's answers.
	o.r.engine.Parallel = 1
	start := time.Now()
	if err := o.tick(t); err != nil {
		t.Fatalf("tick: %v", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("the tick took %s with a rule timeout of 1s", took)
	}
	for _, c := range []struct {
		rule, result string
		want         float64
	}{{"slow", "timeout", 1}, {"slow", "error", 0}, {"slow", "ok", 0}, {"fast", "ok", 1}, {"fast", "timeout", 0}} {
		if got := o.evals(c.rule, c.result); got != c.want {
			t.Errorf("%s result=%s: %v, want %v", c.rule, c.result, got, c.want)
		}
	}
	if got := o.log.Lines(`msg="alert rule evaluation failed; its alerts keep their state"`); len(got) != 1 ||
		!strings.Contains(got[0], "rules=slow failures=1") || !strings.Contains(got[0], "rule evaluation timed out after 1s") {
		t.Errorf("failure lines %q, want one for slow saying it timed out:\n%s", got, o.log.String())
	}
	if err := o.r.Ready(); err != nil {
		t.Errorf("not ready after a tick with a rule timed out: %v", err)
	}
	hs.off = true
	o.advance(time.Second)
	if err := o.tick(t); err != nil {
		t.Fatalf("tick after the stall: %v", err)
	}
	if ok := o.evals("slow", "ok"); ok != 1 {
		t.Errorf("slow ok %v after the stall, want 1", ok)
	}
	if got := o.log.Lines(`msg="alert rule evaluation recovered"`); len(got) != 1 || !strings.Contains(got[0], "rules=slow") {
		t.Errorf("recovery lines %q:\n%s", got, o.log.String())
	}
}

// holdingSource holds back the server's answers (faultproxy Hold) while
// it asks about tenant slow, for at most 5 s, unless off.
type holdingSource struct {
	Source
	proxy *faultproxy.Proxy
	off   bool
}

func (h *holdingSource) Usage(ctx context.Context, uq analytics.UsageQuery) ([]analytics.UsageRow, error) {
	if h.off || !slices.Contains(uq.Where[analytics.DimTenant], "slow") {
		return h.Source.Usage(ctx, uq)
	}
	p := h.proxy
	p.Hold()
	release := time.AfterFunc(5*time.Second, p.Release)
	defer func() {
		release.Stop()
		p.Release()
	}()
	return h.Source.Usage(ctx, uq)
}
