package alerts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/costpipe/costpipe/alerts/notify"
	"github.com/costpipe/costpipe/analytics"
)

// State is where an alert is in its life:
// inactive → pending → firing → resolved (→ pending again when the
// condition holds anew).
type State string

// The states of an alert.
const (
	StateInactive State = "inactive"
	StatePending  State = "pending"
	StateFiring   State = "firing"
	StateResolved State = "resolved"
)

// MaxAlertsPerRule bounds the alerts one rule keeps (groups × thresholds);
// samples of further groups are dropped and counted.
const MaxAlertsPerRule = 10000

// resolvedRetention is how long a resolved alert is kept (so its resolved
// notification can still be delivered) before it is forgotten.
const resolvedRetention = 24 * time.Hour

// Alert is the state of one rule's group (and threshold).
type Alert struct {
	Rule      string
	Kind      Kind
	Group     map[string]string
	Threshold string
	State     State
	// ActiveAt is when the condition began to hold (this episode);
	// FiredAt when the alert fired; LastActive the last evaluation at
	// which the condition held; ResolvedAt when it resolved.
	ActiveAt, FiredAt, LastActive, ResolvedAt time.Time
	// Value, ThresholdValue, PeriodStart, PeriodEnd, Summary and
	// Contributors are those of the last sample that held.
	Value, ThresholdValue  float64
	PeriodStart, PeriodEnd time.Time
	Summary                string
	Contributors           []notify.Contributor
}

// Key identifies the alert: rule, group and threshold.
func (a *Alert) Key() string { return alertKey(a.Rule, a.Group, a.Threshold) }

func alertKey(rule string, g map[string]string, threshold string) string {
	return rule + "\x00" + groupKey(g) + "\x00" + threshold
}

// Episode is the start of the alert's current episode: the period start
// for budgets (a threshold fires once per period and amount), else when
// the condition began to hold (ActiveAt). A forecast, which can resolve
// and hold again within its period, starts a new episode each time.
func (a *Alert) Episode() time.Time {
	if a.Kind == KindBudget && !a.PeriodStart.IsZero() {
		return a.PeriodStart
	}
	return a.ActiveAt
}

// notificationID is the idempotency key of the alert's notification in
// state: NotificationID of its episode, and for a budget also of the limit
// in USD (ThresholdValue, stored with the state), so a threshold of a
// changed amount_usd crossed within the period is a new notification
// while the same crossing stays one per period on every replica and
// after restarts.
func (a *Alert) notificationID(state string) string {
	episode := strconv.FormatInt(a.Episode().Unix(), 10)
	if a.Kind == KindBudget {
		episode += " limit " + strconv.FormatFloat(a.ThresholdValue, 'g', -1, 64)
	}
	return hashID(a.Rule, groupKey(a.Group), episode, a.Threshold, state)
}

// NotificationID is the idempotency key of a notification of an alert:
// a hash of (rule, group, episode start, threshold, state), where state is
// "firing", "firing-rN" for the N-th repeat, or "resolved". The same state
// change gives the same ID on every replica and after a restart; it is the
// webhook-id. The engine's keys of budget notifications also hash the
// threshold's limit in USD (Alert.notificationID).
func NotificationID(rule string, g map[string]string, episode time.Time, threshold, state string) string {
	return hashID(rule, groupKey(g), strconv.FormatInt(episode.Unix(), 10), threshold, state)
}

func hashID(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "cpa_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Engine evaluates the rules of a Config and keeps every alert's state.
// It is not safe for concurrent use: one goroutine drives it.
type Engine struct {
	cfg    *Config
	src    Source
	alerts map[string]*Alert
	// lastFlush is, per rule, when its notifications were last sent.
	lastFlush map[string]time.Time
	// Dropped counts samples dropped by MaxAlertsPerRule.
	Dropped int
	// RuleTimeout bounds each rule's evaluation (its queries) in Eval; 0:
	// no bound but Eval's ctx. A rule that does not answer within it fails
	// with an error wrapping ErrRuleTimeout, and its alerts keep their
	// state, as on any failed evaluation.
	RuleTimeout time.Duration
	// Parallel is how many rules Eval evaluates at once; 0 or 1: one after
	// another. Only the evaluations (the queries) run concurrently, so the
	// Source must be safe for concurrent use (the query layer is; a Script
	// is not); the alerts advance in file order whatever it is.
	Parallel int
}

// ErrRuleTimeout is wrapped by the error of a rule whose evaluation did
// not end within the engine's RuleTimeout.
var ErrRuleTimeout = errors.New("rule evaluation timed out")

// NewEngine returns an engine over cfg's rules reading src.
func NewEngine(cfg *Config, src Source) *Engine {
	return &Engine{cfg: cfg, src: src, alerts: map[string]*Alert{}, lastFlush: map[string]time.Time{}}
}

// Config returns the engine's rules.
func (e *Engine) Config() *Config { return e.cfg }

// Restore replaces the engine's alerts of cfg's rules with as (loaded from
// the store), keeping the newer of each.
func (e *Engine) Restore(as []*Alert) {
	for _, a := range as {
		if e.cfg.Rule(a.Rule) == nil {
			continue
		}
		cur := e.alerts[a.Key()]
		if cur == nil || newer(a, cur) {
			e.alerts[a.Key()] = a
		}
	}
}

// newer reports whether a is further in its life than b (another
// replica's evaluation may be ahead).
func newer(a, b *Alert) bool {
	ta := latest(a.ActiveAt, a.FiredAt, a.LastActive, a.ResolvedAt)
	tb := latest(b.ActiveAt, b.FiredAt, b.LastActive, b.ResolvedAt)
	return ta.After(tb)
}

func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}

// Alerts returns every alert the engine keeps, ordered by rule, group and
// threshold.
func (e *Engine) Alerts() []*Alert {
	keys := slices.Sorted(maps.Keys(e.alerts))
	out := make([]*Alert, len(keys))
	for i, k := range keys {
		out[i] = e.alerts[k]
	}
	return out
}

// RuleError is a rule whose evaluation failed. Err wraps ErrRuleTimeout
// when it did not end within the engine's RuleTimeout.
type RuleError struct {
	Rule string
	Err  error
}

// Eval evaluates every rule at now and advances the alerts. A rule whose
// evaluation fails, or does not end within RuleTimeout, keeps its alerts
// as they were; the failures are returned, and the other rules go on.
// changed are the alerts whose state changed.
func (e *Engine) Eval(ctx context.Context, now time.Time) (changed []*Alert, failed []RuleError) {
	type result struct {
		samples []Sample
		err     error
	}
	res := make([]result, len(e.cfg.Rules))
	eval := func(i int) {
		res[i].samples, res[i].err = e.evaluate(ctx, e.cfg.Rules[i], now)
	}
	if e.Parallel <= 1 {
		for i := range e.cfg.Rules {
			eval(i)
		}
	} else {
		var wg sync.WaitGroup
		slots := make(chan struct{}, e.Parallel)
		for i := range e.cfg.Rules {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-slots; wg.Done() }()
				eval(i)
			}()
		}
		wg.Wait()
	}
	for i, r := range e.cfg.Rules {
		if err := res[i].err; err != nil {
			failed = append(failed, RuleError{r.Name, err})
			continue
		}
		changed = append(changed, e.advanceRule(r, res[i].samples, now)...)
	}
	// Forget what is over.
	for k, a := range e.alerts {
		if a.State == StateInactive || a.State == StateResolved && now.Sub(a.ResolvedAt) > resolvedRetention {
			delete(e.alerts, k)
		}
	}
	return changed, failed
}

// evaluate evaluates r at now within RuleTimeout: an evaluation that
// fails once that deadline has passed (and ctx is not done) fails with
// ErrRuleTimeout. The deadline is checked on the clock, not only through
// the context's Err: the ClickHouse driver sets it on the connection, whose
// read can fail with an i/o timeout before the context's timer has fired.
func (e *Engine) evaluate(ctx context.Context, r *Rule, now time.Time) ([]Sample, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if e.RuleTimeout <= 0 {
		return Evaluate(ctx, e.src, e.cfg, r, now)
	}
	deadline := time.Now().Add(e.RuleTimeout)
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	samples, err := Evaluate(rctx, e.src, e.cfg, r, now)
	if err != nil && ctx.Err() == nil && (rctx.Err() != nil || !time.Now().Before(deadline)) {
		return nil, fmt.Errorf("%w after %s: %w", ErrRuleTimeout, e.RuleTimeout, err)
	}
	return samples, err
}

// advanceRule applies one evaluation's samples of r at now.
func (e *Engine) advanceRule(r *Rule, samples []Sample, now time.Time) []*Alert {
	samples = e.pickPeriods(r, samples, now)
	seen := map[string]bool{}
	count := 0
	for _, a := range e.alerts {
		if a.Rule == r.Name {
			count++
		}
	}
	var changed []*Alert
	for i := range samples {
		s := &samples[i]
		k := alertKey(r.Name, s.Group, s.Threshold)
		seen[k] = true
		a := e.alerts[k]
		if a == nil {
			if !s.Active {
				continue
			}
			if count >= MaxAlertsPerRule {
				e.Dropped++
				continue
			}
			count++
			a = &Alert{Rule: r.Name, Kind: r.Kind, Group: s.Group, Threshold: s.Threshold, State: StateInactive}
			e.alerts[k] = a
		}
		if advance(a, r, s, now) {
			changed = append(changed, a)
		}
	}
	u, _ := r.spec.(undecidable)
	for k, a := range e.alerts {
		if a.Rule != r.Name || seen[k] {
			continue
		}
		var s *Sample
		if u != nil {
			s = u.unseen(r, a.Group)
		}
		if advance(a, r, s, now) {
			changed = append(changed, a)
		}
	}
	return changed
}

// pickPeriods leaves one sample per alert of a budget evaluated within
// its late_data_grace, when it has a sample of the period that ended
// (PeriodEnd not after now) and maybe one of the current period
// (BudgetSpec.evaluate): the one pickPeriod picks; none, when it picks
// none (the alert is then not seen, as before the grace). Samples of other
// kinds and times pass as they are.
func (e *Engine) pickPeriods(r *Rule, samples []Sample, now time.Time) []Sample {
	if r.Kind != KindBudget || !slices.ContainsFunc(samples, func(s Sample) bool { return ended(&s, now) }) {
		return samples
	}
	type pair struct{ prev, cur *Sample }
	pairs := map[string]*pair{}
	var order []string
	for i := range samples {
		s := &samples[i]
		k := alertKey(r.Name, s.Group, s.Threshold)
		p := pairs[k]
		if p == nil {
			p = &pair{}
			pairs[k] = p
			order = append(order, k)
		}
		if ended(s, now) {
			p.prev = s
		} else {
			p.cur = s
		}
	}
	out := make([]Sample, 0, len(order))
	for _, k := range order {
		p := pairs[k]
		if s := pickPeriod(e.alerts[k], p.prev, p.cur); s != nil {
			out = append(out, *s)
		}
	}
	return out
}

// ended reports whether s is of a calendar period that ended by now.
func ended(s *Sample, now time.Time) bool {
	return !s.PeriodEnd.IsZero() && !s.PeriodEnd.After(now)
}

// pickPeriod is the sample a budget alert a (nil: none yet) takes within
// the grace after a period ended, from prev, its threshold's sample of the
// whole period that ended, and cur, that of the current period (either
// may be nil). An alert is one per threshold, and one period at a time:
//
//   - An alert of the ended period that is pending (for:), or that fired
//     after the period ended (FiredAt at or after its end: a crossing
//     found late, or a for: that passed in the grace), stays with it
//     (prev) until the grace ends: a crossing of the current period waits
//     until then.
//   - A crossing in prev that the alert has not fired on in that period
//     (no alert, or one of an older period, or one that never fired) and
//     that no alert of the current period is pending or firing over is
//     taken (prev): it fires late, once, with the ended period's key
//     (Alert.notificationID: period start and limit), so a restart or a
//     replica that sees the same crossing computes the same notification.
//   - Else cur: an alert that fired before its period ended resolves at
//     the first evaluation of the next one (the period is over), as
//     without a grace, and a crossing notified in a period is not
//     notified again in its grace (nor after a restart: the resolved
//     alert is stored, and remembered for a day).
func pickPeriod(a *Alert, prev, cur *Sample) *Sample {
	if prev == nil {
		return cur
	}
	ofPrev := a != nil && a.PeriodStart.Equal(prev.PeriodStart)
	live := a != nil && (a.State == StatePending || a.State == StateFiring)
	switch {
	case ofPrev && (a.State == StatePending || a.State == StateFiring && !a.FiredAt.Before(prev.PeriodEnd)):
		return prev
	case prev.Active && !live && !(ofPrev && !a.FiredAt.IsZero()):
		return prev
	}
	return cur
}

// undecidable is a rule kind whose samples can be Unknown (too little
// data to decide): error_rate and latency (fewer calls than min_requests),
// forecast (no forecast) and anomaly (fewer than 2 usable baseline weeks).
type undecidable interface {
	// unknownLimit is how long a pending or firing alert may go without a
	// sample that holds before it resolves (pending: becomes inactive) on
	// Unknown samples.
	unknownLimit() time.Duration
	// unseen is the sample of a group the evaluation did not return: nil
	// when such a group does not hold, an Unknown sample when not seen
	// means no calls, too few to decide.
	unseen(r *Rule, g map[string]string) *Sample
}

// unknownLimit is r's unknownLimit, 0 (none) for a kind without Unknown
// samples.
func unknownLimit(r *Rule) time.Duration {
	if u, ok := r.spec.(undecidable); ok {
		return u.unknownLimit()
	}
	return 0
}

// advance moves a by one evaluation at t: s is the group's sample, nil
// when the evaluation did not see the group. It reports a state change.
func advance(a *Alert, r *Rule, s *Sample, t time.Time) bool {
	samePeriod := s == nil || a.PeriodStart.IsZero() || s.PeriodStart.Equal(a.PeriodStart)
	if s != nil && s.Unknown && samePeriod {
		return advanceUnknown(a, r, s, t)
	}
	holds := s != nil && s.Active && !s.Unknown
	take := func() {
		a.Value, a.ThresholdValue, a.Summary, a.Contributors = s.Value, s.ThresholdValue, s.Summary, s.Contributors
		a.PeriodStart, a.PeriodEnd = s.PeriodStart, s.PeriodEnd
		a.LastActive = t
	}
	before := a.State
	switch a.State {
	case StateInactive, StateResolved:
		if holds {
			take()
			a.ActiveAt, a.FiredAt, a.ResolvedAt = t, time.Time{}, time.Time{}
			a.State = StatePending
			if r.For == 0 {
				a.State, a.FiredAt = StateFiring, t
			}
		}
	case StatePending:
		switch {
		case !holds || !samePeriod:
			// Dated (ResolvedAt), so that the stored row is newer than the
			// pending one it replaces (Restore): a `for` delay starts again
			// from the next time it holds.
			a.State, a.ResolvedAt = StateInactive, t
		default:
			take()
			if t.Sub(a.ActiveAt) >= r.For {
				a.State, a.FiredAt = StateFiring, t
			}
		}
	case StateFiring:
		switch {
		case !samePeriod:
			a.State, a.ResolvedAt = StateResolved, t // the period is over
		case holds:
			take()
		case t.Sub(a.LastActive) >= r.KeepFiringFor:
			a.State, a.ResolvedAt = StateResolved, t
		}
	}
	return a.State != before
}

// advanceUnknown moves a by an Unknown sample s at t (too little data to
// decide): the alert keeps its state, unless it has been pending or firing
// without holding (since LastActive) for r's unknownLimit, and firing for
// its keep_firing_for too: then a pending alert becomes inactive and a
// firing one resolves, its value and summary those of s (what is known
// now, not the last value that held) with why it resolved.
func advanceUnknown(a *Alert, r *Rule, s *Sample, t time.Time) bool {
	limit := unknownLimit(r)
	if limit <= 0 || a.State != StatePending && a.State != StateFiring {
		return false
	}
	if a.State == StateFiring {
		limit = max(limit, r.KeepFiringFor)
	}
	since := t.Sub(a.LastActive)
	if since < limit {
		return false
	}
	if a.State == StatePending {
		a.State, a.ResolvedAt = StateInactive, t
		return true
	}
	a.State, a.ResolvedAt = StateResolved, t
	a.Value, a.Summary, a.Contributors = s.Value, fmt.Sprintf("%s; undecided since it last held at %s (%s, limit %s): resolved for too little data",
		s.Summary, a.LastActive.UTC().Format("2006-01-02 15:04:05 MST"), since, limit), nil
	return true
}

// Outgoing is a notification due to the listed receivers.
type Outgoing struct {
	Notification notify.Notification
	Receivers    []string
	// Requires, for a resolved notification, are the IDs of the episode's
	// firing notifications (the first and its repeats): a receiver gets
	// the resolved one only if it got one of them. A first one that was
	// silenced, or that a receiver never took, is then followed by a
	// repeat it did get, and the resolved one still reaches it.
	Requires []string
	// Supersedes is the ID the same notification had before the keys of
	// budgets and forecasts changed (the period start alone), and Since
	// the start of the episode it stands for: a receiver whose log holds
	// it final, first claimed at or after Since, had this notification
	// (an upgrade does not send every firing budget again). Empty when the
	// keys agree.
	Supersedes string
	Since      time.Time
}

// Due returns the notifications due at now: firing alerts (and repeats
// every RepeatInterval, budgets excepted) and resolved ones, by the
// rules' notify lists, held back by group_wait and group_interval, and
// without inhibited or silenced alerts. silenced may be nil.
func (e *Engine) Due(now time.Time, silenced func(*Alert, *Rule) bool) []Outgoing {
	var out []Outgoing
	for _, r := range e.cfg.Rules {
		if len(r.Notify) == 0 {
			continue
		}
		var firstFired time.Time
		var as []*Alert
		for _, a := range e.Alerts() {
			if a.Rule != r.Name || a.State != StateFiring && a.State != StateResolved {
				continue
			}
			as = append(as, a)
			if a.State == StateFiring && (firstFired.IsZero() || a.FiredAt.Before(firstFired)) {
				firstFired = a.FiredAt
			}
		}
		if len(as) == 0 {
			continue
		}
		if last := e.lastFlush[r.Name]; last.IsZero() {
			if !firstFired.IsZero() && now.Sub(firstFired) < e.cfg.GroupWait {
				continue
			}
		} else if now.Sub(last) < e.cfg.GroupInterval {
			continue
		}
		for _, a := range as {
			if e.inhibited(a, r, now) || silenced != nil && silenced(a, r) {
				continue
			}
			out = append(out, e.outgoing(a, r, now))
		}
	}
	return out
}

// Flushed records that r's notifications were sent at now (group_interval
// counts from here).
func (e *Engine) Flushed(rule string, now time.Time) { e.lastFlush[rule] = now }

// maxRepeatIDs bounds the repeats a resolved notification looks for (a
// year of repeats every 4 h is 2,190).
const maxRepeatIDs = 4096

// unit is the unit of r's values and thresholds (notify.Notification.Unit).
func (r *Rule) unit() string {
	switch s := r.spec.(type) {
	case *BudgetSpec, *ForecastSpec, *AnomalySpec:
		return "USD"
	case *GrowthSpec:
		return "days"
	case *LatencySpec:
		if s.SLO != nil {
			return "burn_rate"
		}
		return "ms"
	case *ErrorRateSpec:
		if s.SLO != nil {
			return "burn_rate"
		}
		return "percent"
	case *UnpricedSpec:
		return "calls"
	}
	return ""
}

// scopeMap is r's scope by dimension name; nil for all calls.
func (r *Rule) scopeMap() map[string][]string {
	if len(r.Scope) == 0 {
		return nil
	}
	m := make(map[string][]string, len(r.Scope))
	for d, v := range r.Scope {
		m[string(d)] = v
	}
	return m
}

// legacyID is the ID a notification of a had before the keys of budgets
// and forecasts changed: the period start stood for the episode and the
// limit was not hashed. "" where the keys agree (kinds without a period).
func (a *Alert) legacyID(state string) string {
	if a.PeriodStart.IsZero() || (a.Kind != KindBudget && a.Kind != KindForecast) {
		return ""
	}
	return NotificationID(a.Rule, a.Group, a.PeriodStart, a.Threshold, state)
}

func (e *Engine) outgoing(a *Alert, r *Rule, now time.Time) Outgoing {
	firing := a.notificationID("firing")
	n := notify.Notification{ID: firing, Type: notify.TypeFiring, Rule: a.Rule, Kind: string(a.Kind), Group: a.Group,
		Scope: r.scopeMap(), Value: a.Value, Threshold: a.ThresholdValue, Unit: r.unit(), ThresholdLabel: a.Threshold,
		PeriodStart: a.PeriodStart, PeriodEnd: a.PeriodEnd,
		StartedAt: a.FiredAt, Summary: a.Summary, Labels: r.Labels, Annotations: r.Annotations, Contributors: a.Contributors}
	o := Outgoing{Receivers: r.Notify}
	switch {
	case a.State == StateResolved:
		n.ID = a.notificationID("resolved")
		n.Type = notify.TypeResolved
		n.Summary = "resolved: " + a.Summary
		o.Requires = []string{firing}
		if old := a.legacyID("firing"); old != "" {
			o.Requires = append(o.Requires, old) // told under the key before the upgrade
		}
		if r.Kind != KindBudget && e.cfg.RepeatInterval > 0 && !a.ResolvedAt.Before(a.FiredAt) {
			reps := min(int(a.ResolvedAt.Sub(a.FiredAt)/e.cfg.RepeatInterval), maxRepeatIDs)
			for rep := 1; rep <= reps; rep++ {
				o.Requires = append(o.Requires, a.notificationID(fmt.Sprintf("firing-r%d", rep)))
				if old := a.legacyID(fmt.Sprintf("firing-r%d", rep)); old != "" {
					o.Requires = append(o.Requires, old)
				}
			}
		}
		o.Supersedes, o.Since = a.legacyID("resolved"), a.Episode()
	case r.Kind != KindBudget && e.cfg.RepeatInterval > 0:
		o.Supersedes, o.Since = a.legacyID("firing"), a.Episode()
		if rep := int(now.Sub(a.FiredAt) / e.cfg.RepeatInterval); rep > 0 {
			n.ID = a.notificationID(fmt.Sprintf("firing-r%d", rep))
			o.Supersedes = a.legacyID(fmt.Sprintf("firing-r%d", rep))
		}
	default:
		o.Supersedes, o.Since = a.legacyID("firing"), a.Episode()
	}
	o.Notification = n
	return o
}

// inhibited: a breached budget makes a forecast or a spike old news. An
// alert of a forecast or anomaly rule is not sent at now while a budget
// alert of a threshold of 100% or more (the budget used up) of the current
// period fires for the same group (the same dimensions and values; a
// budget rule without by inhibits only alerts without group) of a budget
// rule with the same scope, and for a forecast, the same period. A budget
// alert of a period that ended (a crossing found late, firing in the grace
// after its period) inhibits nothing: the spend now is another period's.
func (e *Engine) inhibited(a *Alert, r *Rule, now time.Time) bool {
	if r.Kind != KindForecast && r.Kind != KindAnomaly {
		return false
	}
	g := groupKey(a.Group)
	for _, b := range e.alerts {
		if b.Kind != KindBudget || b.State != StateFiring || groupKey(b.Group) != g {
			continue
		}
		if !b.PeriodEnd.IsZero() && !b.PeriodEnd.After(now) {
			continue
		}
		br := e.cfg.Rule(b.Rule)
		if br == nil || !sameScope(br.Scope, r.Scope) {
			continue
		}
		bs, ok := br.spec.(*BudgetSpec)
		if !ok || !bs.breached(b.Threshold) {
			continue
		}
		if fs, ok := r.spec.(*ForecastSpec); ok && fs.Period != bs.Period {
			continue
		}
		return true
	}
	return false
}

func sameScope(a, b map[analytics.Dim][]string) bool {
	norm := func(m map[analytics.Dim][]string) map[analytics.Dim][]string {
		out := map[analytics.Dim][]string{}
		for d, vs := range m {
			s := slices.Clone(vs)
			sort.Strings(s)
			out[d] = s
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
