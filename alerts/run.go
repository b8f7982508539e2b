package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/costpipe/costpipe/internal/loglimit"
)

// RunOptions configure a Runner.
type RunOptions struct {
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the costpipe_alerts_* evaluation metrics; nil
	// registers nothing.
	Registerer prometheus.Registerer
	// RuleTimeout bounds each rule's evaluation (Engine.RuleTimeout): a
	// rule that takes longer is counted as result="timeout" and logged, its
	// alerts keep their state, and the other rules go on. Default (0) the
	// evaluation interval.
	RuleTimeout time.Duration
	// RuleConcurrency is how many rules are evaluated at once
	// (Engine.Parallel). Default (0) DefaultRuleConcurrency.
	RuleConcurrency int
}

// DefaultRuleConcurrency is how many rules `alerts run` evaluates at once
// by default: a rule slow to answer then holds up one of two lanes, not
// every rule after it, and two rules' queries (a usage query may hold two
// connections) fit the warehouse's default pool of four.
const DefaultRuleConcurrency = 2

// Runner is `alerts run`: every interval it loads the shared state,
// evaluates every rule, saves what changed, and sends what is due through
// the Deliverer. One goroutine drives it (Run).
type Runner struct {
	cfg     *Config
	engine  *Engine
	store   *Store
	deliver *Deliverer
	opts    RunOptions
	m       runMetrics
	// last is the unix nanoseconds of the last complete evaluation.
	last atomic.Int64
	// failing holds the rules whose evaluations fail, by name.
	failing map[string]*loglimit.Failures
}

// failureLogEvery is how often at most a rule's failing evaluations are
// logged.
const failureLogEvery = time.Minute

type runMetrics struct {
	evals    *prometheus.CounterVec
	firing   *prometheus.GaugeVec
	pending  *prometheus.GaugeVec
	duration prometheus.Histogram
	handed   *prometheus.CounterVec
	last     prometheus.Gauge
	dropped  prometheus.Counter
}

// NewRunner returns a runner of cfg's rules over src, keeping state in
// store and sending through del.
func NewRunner(cfg *Config, src Source, store *Store, del *Deliverer, opts RunOptions) (*Runner, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := runMetrics{
		evals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "costpipe_alerts_evaluations_total",
			Help: "Rule evaluations, by rule and result (ok, error, timeout: not answered within the rule timeout)."}, []string{"rule", "result"}),
		firing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "costpipe_alerts_firing",
			Help: "Alerts firing, by rule."}, []string{"rule"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "costpipe_alerts_pending",
			Help: "Alerts pending (condition holding for less than for:), by rule."}, []string{"rule"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "costpipe_alerts_evaluation_seconds",
			Help: "Time to evaluate every rule once and send what is due.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
		handed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "costpipe_alerts_claims_won_total",
			Help: "Notifications this replica claimed and handed to its receivers, by rule."}, []string{"rule"}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "costpipe_alerts_last_evaluation_timestamp_seconds",
			Help: "When the last complete evaluation ran (unix seconds)."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_alerts_groups_dropped_total",
			Help: "Groups not tracked because a rule reached its limit of alerts."}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{m.evals, m.firing, m.pending, m.duration, m.handed, m.last, m.dropped} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("cannot register alert metrics: %w", err)
			}
		}
	}
	for _, r := range cfg.Rules {
		m.evals.WithLabelValues(r.Name, "ok")
		m.evals.WithLabelValues(r.Name, "error")
		m.evals.WithLabelValues(r.Name, "timeout")
		m.firing.WithLabelValues(r.Name)
	}
	if opts.RuleTimeout < 0 || opts.RuleConcurrency < 0 {
		return nil, fmt.Errorf("invalid rule timeout %s or concurrency %d: want more than 0 (0: the default)", opts.RuleTimeout, opts.RuleConcurrency)
	}
	if opts.RuleTimeout == 0 {
		opts.RuleTimeout = cfg.Interval
	}
	if opts.RuleConcurrency == 0 {
		opts.RuleConcurrency = DefaultRuleConcurrency
	}
	e := NewEngine(cfg, src)
	e.RuleTimeout, e.Parallel = opts.RuleTimeout, opts.RuleConcurrency
	return &Runner{cfg: cfg, engine: e, store: store, deliver: del, opts: opts, m: m, failing: map[string]*loglimit.Failures{}}, nil
}

// Engine returns the runner's engine.
func (r *Runner) Engine() *Engine { return r.engine }

// Tick runs one evaluation at now: load, evaluate, save, send. A rule's
// evaluation is counted ok when its query answered and the tick completed
// (its state saved, what was due claimed), timeout when it did not answer
// within RuleTimeout, else error: when the store fails (ClickHouse
// unreachable), every rule's. Failures are logged (failures) and the
// error is the store's; the next tick retries. A tick cut short by ctx is
// neither counted nor logged.
func (r *Runner) Tick(ctx context.Context, now time.Time) (err error) {
	start := time.Now()
	failed := map[string]error{}
	defer func() {
		r.m.duration.Observe(time.Since(start).Seconds())
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			for _, rule := range r.cfg.Rules {
				if failed[rule.Name] == nil {
					failed[rule.Name] = err
				}
			}
		}
		r.count(failed)
	}()
	loaded, err := r.store.LoadAlerts(ctx)
	if err != nil {
		return err
	}
	r.engine.Restore(loaded)
	droppedBefore := r.engine.Dropped
	changed, fails := r.engine.Eval(ctx, now)
	r.m.dropped.Add(float64(r.engine.Dropped - droppedBefore))
	for _, f := range fails {
		failed[f.Rule] = f.Err
	}
	firing, pending := map[string]int{}, map[string]int{}
	var save []*Alert
	for _, a := range r.engine.Alerts() {
		switch a.State {
		case StateFiring:
			firing[a.Rule]++
		case StatePending:
			pending[a.Rule]++
		}
		if failed[a.Rule] == nil {
			save = append(save, a)
		}
	}
	// Alerts that stopped pending are forgotten by Eval: their stored row
	// must say so, or the next tick restores them pending, with their old
	// start, and a `for` delay would count from it.
	for _, a := range changed {
		if a.State == StateInactive && failed[a.Rule] == nil {
			save = append(save, a)
		}
	}
	for _, rule := range r.cfg.Rules {
		r.m.firing.WithLabelValues(rule.Name).Set(float64(firing[rule.Name]))
		r.m.pending.WithLabelValues(rule.Name).Set(float64(pending[rule.Name]))
	}
	if err := r.store.SaveAlerts(ctx, r.deliver.Replica(), save); err != nil {
		return err
	}
	silences, err := r.store.Silences(ctx, false)
	if err != nil {
		return err
	}
	due := r.engine.Due(now, silencedBy(silences, now))
	sent, err := r.deliver.Send(ctx, due)
	var givenUp *GivenUpError
	errors.As(err, &givenUp)
	for rule, n := range sent {
		// A rule with notifications given up is offered whole again at the
		// next evaluation, not after its group_interval.
		if givenUp == nil || !givenUp.Rules[rule] {
			r.engine.Flushed(rule, now)
		}
		r.m.handed.WithLabelValues(rule).Add(float64(n))
	}
	if err != nil {
		return err
	}
	r.m.last.Set(float64(r.opts.Now().Unix()))
	r.last.Store(r.opts.Now().UnixNano())
	return nil
}

// count counts each rule's evaluation of a tick, failed holding the
// errors of those that failed, and logs the failures: a rule's first at
// once, then one line a failureLogEvery at most, with the failures since
// the line before, and one line when it evaluates again, with how long it
// failed. Rules that began to fail at the same tick (every rule, when the
// store fails) share their lines.
func (r *Runner) count(failed map[string]error) {
	now := r.opts.Now()
	type lines struct {
		since time.Time
		rules []string
		n     int
		err   error
	}
	var down, up []*lines
	add := func(ls []*lines, since time.Time, rule string) ([]*lines, *lines) {
		for _, l := range ls {
			if l.since.Equal(since) {
				l.rules = append(l.rules, rule)
				return ls, l
			}
		}
		l := &lines{since: since, rules: []string{rule}}
		return append(ls, l), l
	}
	for _, rule := range r.cfg.Rules {
		f, err := r.failing[rule.Name], failed[rule.Name]
		if err == nil {
			r.m.evals.WithLabelValues(rule.Name, "ok").Inc()
			if f != nil {
				delete(r.failing, rule.Name)
				since, _, _ := f.Succeed()
				up, _ = add(up, since, rule.Name)
			}
			continue
		}
		result := "error"
		if errors.Is(err, ErrRuleTimeout) {
			result = "timeout"
		}
		r.m.evals.WithLabelValues(rule.Name, result).Inc()
		if f == nil {
			f = &loglimit.Failures{}
			r.failing[rule.Name] = f
		}
		n, since, due := f.Fail(now, failureLogEvery)
		if !due {
			continue
		}
		var l *lines
		down, l = add(down, since, rule.Name)
		if l.err == nil {
			l.n, l.err = n, err
		}
	}
	for _, l := range down {
		r.opts.Logger.Warn("alert rule evaluation failed; its alerts keep their state", "rules", strings.Join(l.rules, ","),
			"failures", l.n, "failing_for", now.Sub(l.since).Round(time.Second), "err", l.err)
	}
	for _, l := range up {
		r.opts.Logger.Info("alert rule evaluation recovered", "rules", strings.Join(l.rules, ","),
			"failed_for", now.Sub(l.since).Round(time.Second))
	}
}

// Ready reports whether an evaluation completed (state loaded and saved,
// due notifications claimed) within the last three intervals, and at
// least the last minute; the error says since when not. Safe to call from
// any goroutine (/readyz).
func (r *Runner) Ready() error {
	limit := max(3*r.cfg.Interval, time.Minute)
	last := r.last.Load()
	if last == 0 {
		return fmt.Errorf("no evaluation has completed yet")
	}
	if age := r.opts.Now().Sub(time.Unix(0, last)); age > limit {
		return fmt.Errorf("the last complete evaluation was %s ago (limit %s): see the log", age.Round(time.Second), limit)
	}
	return nil
}

// Run evaluates at every multiple of the interval (aligned to the Unix
// epoch, so replicas evaluate at the same instants and agree on when an
// episode began) until ctx is done; it returns nil then. It evaluates
// once right away first.
func (r *Runner) Run(ctx context.Context) error {
	iv := r.cfg.Interval
	r.Tick(ctx, r.opts.Now().Truncate(iv)) // a failed tick is logged and counted; the next retries
	for {
		now := r.opts.Now()
		next := now.Truncate(iv).Add(iv)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(next.Sub(now)):
		}
		r.Tick(ctx, next)
	}
}
