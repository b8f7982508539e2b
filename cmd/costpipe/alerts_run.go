package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/alerts"
	"github.com/costpipe/costpipe/alerts/notify"
	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/warehouse"
)

func alertsRunCommand() *cli.Command {
	d := alerts.DefaultDeliverOptions()
	return &cli.Command{
		Name:  "run",
		Usage: "evaluate the rules every interval and send each notification once, across restarts and replicas",
		Description: `Evaluates every rule of --rules at each multiple of the interval (the file's interval:,
default 30s, or --interval) through the query layer, advances each alert
(inactive → pending → firing → resolved, with for: and keep_firing_for:), and sends
what is due to the rules' receivers, held back by group_wait and group_interval,
repeated every repeat_interval (budgets never), without inhibited alerts (a budget
firing at 100% or more silences the anomaly alerts of the same scope and group, and
its period's forecast alerts) or silenced ones
(costpipe alerts silence).

State, silences and the notification log live in ClickHouse (migration 0006; alerts
run applies no migrations and waits, /readyz 503, until ` + "`costpipe migrate`" + ` has run), so a restarted process or a second replica on the same database continues
where the first left off and never sends a notification twice: each (notification,
receiver) is claimed in the log before delivery and recorded after it. Only a crash
between a receiver's answer and that record can repeat a delivery, with the same
webhook-id (docs/alerts.md, "Delivery guarantees").

--metrics-listen serves, from the start (while ClickHouse is still waited for),
/metrics (costpipe_alerts_*), /healthz (liveness: 200 while the process and its
evaluation loop run, whatever ClickHouse does, since a restart cures no outage) and
/readyz (readiness: 503 until an evaluation has completed, and when none has for
three intervals, at least a minute: ClickHouse unreachable, say; the body says why).
A failing rule is counted in costpipe_alerts_evaluations_total{result="error"} and
logged at once, then once a minute while it fails, and once when it evaluates again.
Each rule's evaluation has --rule-timeout (default: the interval); a rule that does
not answer in time counts result="timeout" and is logged the same way, its alerts
keep their state, and the other rules go on (--rule-concurrency of them at once).
SIGTERM stops evaluating, lets queued notifications finish for up to --drain-timeout
and releases the rest for another replica or the next start (the outcomes and
releases are written to the log within 5 s more).

Example:
  costpipe alerts run --rules rules.yaml --metrics-listen :9465`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "rules", Required: true, EnvVars: []string{"COSTPIPE_ALERTS_RULES"}, TakesFile: true,
				Usage: "rules `FILE` (see costpipe alerts check)"},
			// No Value: unset, the rules file's interval: applies (IsSet below);
			// DefaultText says so instead of the zero value's "0s".
			&cli.DurationFlag{Name: "interval", EnvVars: []string{"COSTPIPE_ALERTS_INTERVAL"},
				Usage:       "evaluation interval, at least 1s, replacing the rules file's interval:",
				DefaultText: "the file's interval:, or " + alerts.DefaultInterval.String()},
			// No Value: unset, the interval applies (IsSet below).
			&cli.DurationFlag{Name: "rule-timeout", EnvVars: []string{"COSTPIPE_ALERTS_RULE_TIMEOUT"},
				Usage:       "bound of one rule's evaluation (its queries): a rule that takes longer counts result=\"timeout\", keeps its alerts' state, and holds up no other rule",
				DefaultText: "the interval"},
			&cli.IntFlag{Name: "rule-concurrency", Value: alerts.DefaultRuleConcurrency, EnvVars: []string{"COSTPIPE_ALERTS_RULE_CONCURRENCY"},
				Usage: "rules evaluated at once (1 to 8; the ClickHouse connection pool is three times this and one, at least 4)"},
			&cli.StringFlag{Name: "metrics-listen", EnvVars: []string{"COSTPIPE_METRICS_LISTEN"},
				Usage: "serve Prometheus /metrics, /healthz (alive) and /readyz (evaluating) on `HOST:PORT` (default: off)"},
			&cli.StringFlag{Name: "replica", Value: "", EnvVars: []string{"COSTPIPE_ALERTS_REPLICA"},
				Usage: "this replica's id in the notification log (default: random per start)"},
			&cli.DurationFlag{Name: "claim-settle", Value: d.Settle, EnvVars: []string{"COSTPIPE_ALERTS_CLAIM_SETTLE"},
				Usage: "wait this long after claiming a notification before reading back which replica won"},
			&cli.DurationFlag{Name: "claim-lease", Value: d.Lease, EnvVars: []string{"COSTPIPE_ALERTS_CLAIM_LEASE"},
				Usage: "a claim without an outcome (its replica died) is taken over after this long; longer than the retries last"},
			&cli.IntFlag{Name: "max-attempts", Value: 6, EnvVars: []string{"COSTPIPE_ALERTS_MAX_ATTEMPTS"},
				Usage: "delivery attempts per notification and receiver in one round; a failed round is retried at a later evaluation until --give-up-after, then the notification is dead"},
			&cli.DurationFlag{Name: "give-up-after", Value: d.GiveUp, EnvVars: []string{"COSTPIPE_ALERTS_GIVE_UP_AFTER"},
				Usage: "retry a notification's failed rounds (each --max-attempts) for this long from its first claim, a round at most every --backoff-max; 0: dead after the first round"},
			&cli.IntFlag{Name: "queue-size", Value: 1000, EnvVars: []string{"COSTPIPE_ALERTS_QUEUE_SIZE"},
				Usage: "notifications queued per receiver; more are dropped (counted) and retried at the next evaluation"},
			&cli.DurationFlag{Name: "attempt-timeout", Value: notify.DefaultAttemptTimeout, EnvVars: []string{"COSTPIPE_ALERTS_ATTEMPT_TIMEOUT"},
				Usage: "bound of one delivery attempt (a receiver's own timeout: may be shorter)"},
			&cli.DurationFlag{Name: "backoff-min", Value: notify.DefaultMinBackoff, EnvVars: []string{"COSTPIPE_ALERTS_BACKOFF_MIN"},
				Usage: "wait before the second attempt; doubles per attempt up to --backoff-max"},
			&cli.DurationFlag{Name: "backoff-max", Value: time.Minute, EnvVars: []string{"COSTPIPE_ALERTS_BACKOFF_MAX"},
				Usage: "longest wait between attempts"},
			&cli.DurationFlag{Name: "drain-timeout", Value: 10 * time.Second, EnvVars: []string{"COSTPIPE_ALERTS_DRAIN_TIMEOUT"},
				Usage: "on SIGTERM, how long queued notifications may still be delivered"},
			&cli.DurationFlag{Name: "clock-offset", Hidden: true, Usage: "evaluate as if the time were now + this (tests)"},
		},
		Action: runAlerts,
	}
}

func runAlerts(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	iv := c.Duration("interval")
	if c.IsSet("interval") && iv < alerts.MinInterval {
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --interval %s: want at least %s, as the rules file's interval: (every evaluation queries ClickHouse)", iv, alerts.MinInterval)}
	}
	ruleTimeout := c.Duration("rule-timeout")
	if c.IsSet("rule-timeout") && ruleTimeout <= 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --rule-timeout %s: want more than 0", ruleTimeout)}
	}
	if n := c.Int("rule-concurrency"); n < 1 || n > maxRuleConcurrency {
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --rule-concurrency %d: want 1 to %d", n, maxRuleConcurrency)}
	}
	cfg, err := loadRules(c.String("rules"), true) // the receivers' files too: errors at FILE:LINE:COL before connecting
	if err != nil {
		return err
	}
	if c.IsSet("interval") {
		cfg.Interval = iv
	}
	if !c.IsSet("rule-timeout") {
		ruleTimeout = cfg.Interval
	}
	offset := c.Duration("clock-offset")
	now := func() time.Time { return time.Now().Add(offset) }

	do := alerts.DefaultDeliverOptions()
	if r := c.String("replica"); r != "" {
		do.Replica = r
	}
	do.Settle, do.Lease, do.Now, do.Logger = c.Duration("claim-settle"), c.Duration("claim-lease"), now, log
	do.GiveUp, do.RetryPause = c.Duration("give-up-after"), c.Duration("backoff-max")
	if err := do.Validate(); err != nil {
		return &exitError{code: 2, msg: "invalid alerts options: " + err.Error()}
	}
	// A claim must outlive its deliveries' retries, or a slow receiver's
	// notification is claimed (and sent) again by another replica. A
	// round's attempts have the lease less two settle times (the claim's
	// settle wait, and the margin its deadline keeps): a round that does
	// not fit would be cut short every time and never reach its end.
	if worst := retryBound(c.Int("max-attempts"), c.Duration("attempt-timeout"), c.Duration("backoff-max")); worst >= do.Lease-2*do.Settle {
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --claim-lease %s: the retries of one notification may take %s (--max-attempts, --attempt-timeout, --backoff-*), and they must end within the lease less twice --claim-settle (%s); make the lease longer",
			do.Lease, worst.Round(time.Second), do.Settle)}
	}

	wo := warehouse.DefaultOptions()
	wo.DSN = c.String("clickhouse")
	// A usage question can hold three connections (the read, the summaries'
	// check, the look at which months retention dropped), and the
	// deliverer needs one besides.
	wo.MaxOpenConns = max(wo.MaxOpenConns, 3*c.Int("rule-concurrency")+1)
	if err := clickhouseSecurity(c, &wo); err != nil {
		return err
	}
	if err := wo.Validate(); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	// /metrics, /healthz and /readyz answer from here on, while ClickHouse
	// is waited for: a liveness probe must not find the port closed then.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	probes := &probeServer{reg: reg}
	closeProbes, err := probes.listen(log, c.String("metrics-listen"))
	if err != nil {
		return err
	}
	defer closeProbes()
	w, err := openWarehouse(c.Context, log, wo)
	if err == nil {
		defer w.Close()
		err = waitMigrated(c.Context, log, analytics.New(w, analytics.Options{Logger: log}), time.Second, 30*time.Second)
	}
	if err != nil {
		if c.Context.Err() != nil {
			log.Info("alerts stopped before they started", "waiting_for", err)
			return nil
		}
		return err
	}

	var kafka *kgo.Client
	for _, rc := range cfg.Receivers {
		if rc.Type == notify.TypeKafka && kafka == nil {
			kopts, err := kafkaClientOpts(c)
			if err != nil {
				return err
			}
			kopts = append(append([]kgo.Opt{kgo.SeedBrokers(splitList(c.String("brokers"))...), kgo.AllowAutoTopicCreation()},
				alertsKafkaBounds(c.Duration("attempt-timeout"))...), kopts...)
			if kafka, err = kgo.NewClient(kopts...); err != nil {
				return fmt.Errorf("cannot create the kafka receiver's client: %w", err)
			}
			defer closeKafkaWithin(log, kafka, kafkaCloseTimeout)
		}
	}
	receivers, err := notify.Build(cfg.Receivers, notify.Deps{HTTP: &http.Client{}, Kafka: kafka, Logger: log, Clock: time.Now})
	if err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %v", cfg.File, err)}
	}
	store := alerts.NewStore(w, now)
	del, err := alerts.NewDeliverer(store, do)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	// The deliverer's clock: claims' deadlines and retry limits are in it.
	disp, err := notify.NewDispatcher(receivers, notify.WithResults(del.Result), notify.WithRegisterer(reg), notify.WithLogger(log), notify.WithClock(notify.ClockFunc(now)),
		notify.WithMaxAttempts(c.Int("max-attempts")), notify.WithQueueSize(c.Int("queue-size")),
		notify.WithAttemptTimeout(c.Duration("attempt-timeout")), notify.WithBackoff(c.Duration("backoff-min"), c.Duration("backoff-max")))
	if err != nil {
		return &exitError{code: 2, msg: "invalid alerts options: " + err.Error()}
	}
	del.SetOutput(disp)
	q := analytics.New(w, analytics.Options{Now: now, Logger: log})
	runner, err := alerts.NewRunner(cfg, q, store, del, alerts.RunOptions{Now: now, Logger: log, Registerer: reg,
		RuleTimeout: ruleTimeout, RuleConcurrency: c.Int("rule-concurrency")})
	if err != nil {
		return err
	}
	probes.setReady(runner.Ready)
	names := make([]string, len(cfg.Rules))
	for i, r := range cfg.Rules {
		names[i] = r.Name
	}
	log.Info("evaluating alert rules", "rules", strings.Join(names, ","), "interval", cfg.Interval, "tz", cfg.TZ,
		"rule_timeout", ruleTimeout, "rule_concurrency", c.Int("rule-concurrency"), "replica", del.Replica(), "database", w.Database())
	err = runner.Run(c.Context)
	probes.setReady(func() error { return errors.New("stopping") })
	drain, cancel := context.WithTimeout(context.Background(), c.Duration("drain-timeout"))
	defer cancel()
	if cerr := disp.Close(drain); cerr != nil && !errors.Is(cerr, context.DeadlineExceeded) {
		log.Warn("closing the dispatcher", "err", cerr)
	}
	// The outcomes, releases of what the drain cut short included, get
	// their own budget: written, a release is claimed again at once by
	// another replica or the next run; unwritten, only after the lease.
	rec, cancelRec := context.WithTimeout(context.Background(), outcomeRecordTimeout)
	defer cancelRec()
	if cerr := del.Close(rec); cerr != nil {
		log.Warn("closing the deliverer", "err", cerr)
	}
	log.Info("alerts stopped", "undelivered", del.Inflight())
	return err
}

// outcomeRecordTimeout bounds the wait at shutdown, after the dispatcher's
// drain, for the notification outcomes to be written to the log.
const outcomeRecordTimeout = 5 * time.Second

// maxRuleConcurrency bounds --rule-concurrency: a few lanes are what keeps
// one slow rule from holding up the others; more would mostly load
// ClickHouse with every rule's queries at once.
const maxRuleConcurrency = 8

// alertsKafkaBounds bounds how long the Kafka receiver's client keeps a
// record, from the attempt timeout: franz-go's defaults keep one forever (no
// delivery timeout, and an idempotent producer never gives up a request a
// broker took but did not answer), so behind a silent broker every attempt's
// record would pile up in the client. A record is failed once its attempt
// could no longer use it, even when it was sent (a broker may then still
// have written it: the retry writes it again under the same key, the
// notification ID, which receivers deduplicate on); a produce request is
// abandoned, and its connection closed, after the attempt timeout plus an
// overhead of half of it, between 1 s and franz-go's default 10 s. (The
// attempt timeout is taken between 1 s, franz-go's least record timeout, and
// a day, within the int32 milliseconds of a produce request's timeout.) The
// Kafka receiver itself returns when its attempt's ctx ends, whatever the
// client does.
func alertsKafkaBounds(attempt time.Duration) []kgo.Opt {
	attempt = min(max(attempt, time.Second), 24*time.Hour)
	overhead := min(max(attempt/2, time.Second), 10*time.Second)
	return []kgo.Opt{
		kgo.AllowIdempotentProduceCancellation(),
		kgo.RecordDeliveryTimeout(attempt),
		kgo.ProduceRequestTimeout(attempt),
		kgo.RequestTimeoutOverhead(overhead),
	}
}

// kafkaCloseTimeout bounds closing the Kafka receiver's client at exit.
const kafkaCloseTimeout = 5 * time.Second

// closeKafkaWithin closes cl, waiting at most timeout: the process is
// exiting, and a client that does not finish closing must not keep it
// alive past --drain-timeout until SIGKILL.
func closeKafkaWithin(log *slog.Logger, cl *kgo.Client, timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		cl.Close()
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		log.Warn("the kafka receiver's client did not close in time; exiting anyway", "timeout", timeout)
	}
}

// retryBound is the longest a notification's attempts and backoffs take:
// every wait may be the longest, a receiver's Retry-After raising it up to
// maxBackoff whatever the doubling from minBackoff has reached. (Counting
// the doubling alone let a lease pass the check that every round then
// outlived against such a receiver: released at its deadline, claimed
// again at once, never given up.)
func retryBound(attempts int, timeout, maxBackoff time.Duration) time.Duration {
	if attempts <= 0 {
		return 0
	}
	return time.Duration(attempts)*timeout + time.Duration(attempts-1)*maxBackoff
}

// probeServer is the --metrics-listen server of alerts run and derive:
// /metrics from reg; /healthz 200 while the process runs (its loop runs in
// it, and restarting it cures no ClickHouse outage: liveness); /readyz 200
// while the readiness given to setReady reports nil, else 503 with
// "not ready: " and its reason, and "starting" until it is given.
type probeServer struct {
	reg   *prometheus.Registry
	ready atomic.Pointer[func() error]
}

// setReady makes /readyz answer from ready.
func (p *probeServer) setReady(ready func() error) { p.ready.Store(&ready) }

// handler serves /metrics, /healthz and /readyz.
func (p *probeServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		why := "starting (connecting to ClickHouse, waiting for its migrations)"
		if ready := p.ready.Load(); ready != nil {
			err := (*ready)()
			if err == nil {
				io.WriteString(w, "ready\n")
				return
			}
			why = err.Error()
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready: "+why+"\n")
	})
	return mux
}

// listen serves handler on addr ("": nothing) until the returned function
// is called; an address it cannot listen on is a usage error.
func (p *probeServer) listen(log *slog.Logger, addr string) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &exitError{code: 2, msg: fmt.Sprintf("cannot listen on --metrics-listen %q: %v", addr, err)}
	}
	srv := &http.Server{Handler: p.handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	log.Info("serving metrics", "addr", ln.Addr().String()+"/metrics")
	return func() { srv.Close() }, nil
}

// waitMigrated waits until q's database holds every migration of this
// binary, checking every pause (doubled up to most): alerts run applies
// none, since a migration that changes the landing tables fences the
// running aggregators (migrations are costpipe migrate's, run before new
// binaries are rolled out), and starts evaluating once someone has run it.
// Other errors end the wait.
func waitMigrated(ctx context.Context, log *slog.Logger, q *analytics.Querier, pause, most time.Duration) error {
	for {
		err := q.CheckMigrated(ctx)
		if err == nil || !errors.Is(err, analytics.ErrNotMigrated) {
			return err
		}
		log.Warn("waiting for costpipe migrate", "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause = min(2*pause, most)
	}
}
