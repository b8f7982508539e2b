package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
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
repeated every repeat_interval (budgets never), without inhibited alerts (a firing
budget silences the forecast and anomaly alerts of the same scope) or silenced ones
(costpipe alerts silence).

State, silences and the notification log live in ClickHouse (migration 0006, applied
at start), so a restarted process or a second replica on the same database continues
where the first left off and never sends a notification twice: each (notification,
receiver) is claimed in the log before delivery and recorded after it. Only a crash
between a receiver's answer and that record can repeat a delivery, with the same
webhook-id (docs/alerts.md, "Delivery guarantees").

--metrics-listen serves /metrics (costpipe_alerts_*) and /healthz (503 until an
evaluation has completed, and when none has for three intervals, at least a minute:
ClickHouse unreachable, say). SIGTERM stops
evaluating, lets queued notifications finish for up to --drain-timeout and releases
the rest for another replica or the next start.

Example:
  costpipe alerts run --rules rules.yaml --metrics-listen :9465`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "rules", Required: true, EnvVars: []string{"COSTPIPE_ALERTS_RULES"}, TakesFile: true,
				Usage: "rules `FILE` (see costpipe alerts check)"},
			&cli.DurationFlag{Name: "interval", EnvVars: []string{"COSTPIPE_ALERTS_INTERVAL"},
				Usage: "evaluation interval, at least 1s, replacing the file's interval: (default 30s)"},
			&cli.StringFlag{Name: "metrics-listen", EnvVars: []string{"COSTPIPE_METRICS_LISTEN"},
				Usage: "serve /metrics and /healthz on `HOST:PORT`"},
			&cli.StringFlag{Name: "replica", Value: "", EnvVars: []string{"COSTPIPE_ALERTS_REPLICA"},
				Usage: "this replica's id in the notification log (default: random per start)"},
			&cli.DurationFlag{Name: "claim-settle", Value: d.Settle, EnvVars: []string{"COSTPIPE_ALERTS_CLAIM_SETTLE"},
				Usage: "wait this long after claiming a notification before reading back which replica won"},
			&cli.DurationFlag{Name: "claim-lease", Value: d.Lease, EnvVars: []string{"COSTPIPE_ALERTS_CLAIM_LEASE"},
				Usage: "a claim without an outcome (its replica died) is taken over after this long; longer than the retries last"},
			&cli.IntFlag{Name: "max-attempts", Value: 6, EnvVars: []string{"COSTPIPE_ALERTS_MAX_ATTEMPTS"},
				Usage: "delivery attempts per notification and receiver before it is dead"},
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
	cfg, err := loadRules(c.String("rules"), true) // the receivers' files too: errors at FILE:LINE:COL before connecting
	if err != nil {
		return err
	}
	if c.IsSet("interval") {
		cfg.Interval = iv
	}
	offset := c.Duration("clock-offset")
	now := func() time.Time { return time.Now().Add(offset) }

	do := alerts.DefaultDeliverOptions()
	if r := c.String("replica"); r != "" {
		do.Replica = r
	}
	do.Settle, do.Lease, do.Now, do.Logger = c.Duration("claim-settle"), c.Duration("claim-lease"), now, log
	if err := do.Validate(); err != nil {
		return &exitError{code: 2, msg: "invalid alerts options: " + err.Error()}
	}
	// A claim must outlive its deliveries' retries, or a slow receiver's
	// notification is claimed (and sent) again by another replica.
	if worst := retryBound(c.Int("max-attempts"), c.Duration("attempt-timeout"), c.Duration("backoff-min"), c.Duration("backoff-max")); worst >= do.Lease {
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --claim-lease %s: the retries of one notification may take %s (--max-attempts, --attempt-timeout, --backoff-*); make the lease longer",
			do.Lease, worst.Round(time.Second))}
	}

	wo := warehouse.DefaultOptions()
	wo.DSN = c.String("clickhouse")
	if err := clickhouseSecurity(c, &wo); err != nil {
		return err
	}
	if err := wo.Validate(); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	var ln net.Listener
	if addr := c.String("metrics-listen"); addr != "" {
		if ln, err = net.Listen("tcp", addr); err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("cannot listen on --metrics-listen %q: %v", addr, err)}
		}
		defer ln.Close()
	}
	w, err := openWarehouse(c.Context, log, wo)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := w.Migrate(c.Context); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var kafka *kgo.Client
	for _, rc := range cfg.Receivers {
		if rc.Type == notify.TypeKafka && kafka == nil {
			kopts, err := kafkaClientOpts(c)
			if err != nil {
				return err
			}
			if kafka, err = kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(splitList(c.String("brokers"))...), kgo.AllowAutoTopicCreation()}, kopts...)...); err != nil {
				return fmt.Errorf("cannot create the kafka receiver's client: %w", err)
			}
			defer kafka.Close()
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
	disp, err := notify.NewDispatcher(receivers, notify.WithResults(del.Result), notify.WithRegisterer(reg), notify.WithLogger(log),
		notify.WithMaxAttempts(c.Int("max-attempts")), notify.WithQueueSize(c.Int("queue-size")),
		notify.WithAttemptTimeout(c.Duration("attempt-timeout")), notify.WithBackoff(c.Duration("backoff-min"), c.Duration("backoff-max")))
	if err != nil {
		return &exitError{code: 2, msg: "invalid alerts options: " + err.Error()}
	}
	del.SetOutput(disp)
	q := analytics.New(w, analytics.Options{Now: now})
	runner, err := alerts.NewRunner(cfg, q, store, del, alerts.RunOptions{Now: now, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	if ln != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if err := runner.Healthy(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok\n")
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("serving metrics", "addr", ln.Addr().String()+"/metrics")
	}
	names := make([]string, len(cfg.Rules))
	for i, r := range cfg.Rules {
		names[i] = r.Name
	}
	log.Info("evaluating alert rules", "rules", strings.Join(names, ","), "interval", cfg.Interval, "tz", cfg.TZ,
		"replica", del.Replica(), "database", w.Database())
	err = runner.Run(c.Context)
	drain, cancel := context.WithTimeout(context.Background(), c.Duration("drain-timeout"))
	defer cancel()
	if cerr := disp.Close(drain); cerr != nil && !errors.Is(cerr, context.DeadlineExceeded) {
		log.Warn("closing the dispatcher", "err", cerr)
	}
	log.Info("alerts stopped", "undelivered", del.Inflight())
	return err
}

// retryBound is the longest a notification's attempts and backoffs take.
func retryBound(attempts int, timeout, minBackoff, maxBackoff time.Duration) time.Duration {
	total, b := time.Duration(0), minBackoff
	for i := 0; i < attempts; i++ {
		total += timeout
		if i+1 < attempts {
			total += b
			b = min(2*b, maxBackoff)
		}
	}
	return total
}
