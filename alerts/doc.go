// Package alerts evaluates costpipe's alert rules and delivers each
// notification once: `costpipe alerts check|run|test|backtest|silence`.
//
// A rules file (ParseConfig; docs/alerts.md) holds defaults, receivers
// (alerts/notify.ReceiverConfig) and rules of seven kinds, one file each:
// budget.go, forecast.go, growth.go, anomaly.go, latency.go, error_rate.go
// (with slo.go for burn rates) and unpriced.go. A rule asks a Source — the
// query layer, *analytics.Querier, in production; a Script in rule tests
// and backtests — and returns a Sample per group.
//
// An Engine (state.go) keeps each alert (rule × group × threshold) in the
// state machine inactive → pending → firing → resolved with for: and
// keep_firing_for:, and says which notifications are Due at a time:
// group_wait, group_interval, repeat_interval, inhibition (a budget firing
// at 100% or more silences the anomaly alerts of the same scope and group,
// and the forecast alerts of the same period too) and silences. Every
// notification has an idempotency key (NotificationID: rule, group, episode
// start — for budgets the period start and the limit in USD —, threshold,
// state), the webhook-id. A budget also reads its ended period for
// late_data_grace (default 1h), so a crossing by spend that landed after
// the period ended is notified once, under that period's key. Each rule's
// evaluation has a deadline (Engine.RuleTimeout): a rule that times out
// keeps its alerts' state and does not hold up the others, whose queries
// run a few at a time (Engine.Parallel).
//
// A Store (store.go) keeps state, silences and the notification log in
// ClickHouse (migration 0006). A Deliverer (deliver.go) claims each
// (notification, receiver) in the log, hands what it won to the
// dispatcher of alerts/notify and records the outcome, so restarts and
// replicas send each notification once (docs/design.md, "Alerts"). A
// Runner (run.go) ties them together on epoch-aligned ticks.
//
// Every clock is injected: Engine.Eval and Due take the time, Runner and
// Deliverer take a Now. An Engine, a Script and a Runner are driven by one
// goroutine; a Store and a Deliverer are safe for concurrent use.
package alerts
