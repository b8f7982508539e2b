package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/consumers"
	"github.com/costpipe/costpipe/internal/loglimit"
	"github.com/costpipe/costpipe/internal/secure"
	"github.com/costpipe/costpipe/pipelines/usage"
	"github.com/costpipe/costpipe/warehouse"
)

func aggregateFlags() []cli.Flag {
	d := consumers.DefaultOptions()
	return []cli.Flag{
		&cli.StringFlag{Name: "group", Value: d.Group, EnvVars: []string{"COSTPIPE_GROUP"},
			Usage: "Kafka consumer group; run more instances with the same group to scale out"},
		&cli.StringFlag{Name: "instance-id", Value: d.InstanceID, EnvVars: []string{"COSTPIPE_INSTANCE_ID"},
			Usage: "`ID` making this instance a static group member (KIP-345): restarted with the same ID within --session-timeout it takes its old partitions back without a rebalance; unique per live instance (a StatefulSet pod name, a systemd %H or %i); empty: a dynamic member (see docs/operations.md)"},
		&cli.DurationFlag{Name: "flush-interval", Value: d.FlushInterval, EnvVars: []string{"COSTPIPE_FLUSH_INTERVAL"},
			Usage: "how often partial windows are landed in ClickHouse (freshness)"},
		&cli.DurationFlag{Name: "max-event-age", Value: d.MaxEventAge, EnvVars: []string{"COSTPIPE_MAX_EVENT_AGE"},
			Usage: "events older than this go to the DLQ"},
		&cli.DurationFlag{Name: "max-future", Value: d.MaxFuture, EnvVars: []string{"COSTPIPE_MAX_FUTURE"},
			Usage: "events further in the future than this go to the DLQ"},
		&cli.DurationFlag{Name: "dedupe-window", Value: d.DedupeWindow, EnvVars: []string{"COSTPIPE_DEDUPE_WINDOW"},
			Usage: "an event_id is remembered for this long after it arrived in Kafka (record time), whatever its event time: retries within it count once (0: no dedupe)"},
		&cli.IntFlag{Name: "dedupe-max-ids", Value: d.DedupeMaxIDs, EnvVars: []string{"COSTPIPE_DEDUPE_MAX_IDS"},
			Usage: "event_ids remembered per partition at most (bounds memory)"},
		&cli.DurationFlag{Name: "session-timeout", Value: d.SessionTimeout, EnvVars: []string{"COSTPIPE_SESSION_TIMEOUT"},
			Usage: "how long the group waits for a silent (crashed) instance before moving its partitions"},
		&cli.DurationFlag{Name: "heartbeat-interval", Value: d.HeartbeatInterval, EnvVars: []string{"COSTPIPE_HEARTBEAT_INTERVAL"},
			Usage: "how often the instance heartbeats to the group (and so how soon it learns that a rebalance began); at most a third of --session-timeout"},
		&cli.DurationFlag{Name: "rebalance-timeout", Value: d.RebalanceTimeout, EnvVars: []string{"COSTPIPE_REBALANCE_TIMEOUT"},
			Usage: "how long the group waits for members to rejoin during a rebalance; must exceed --flush-timeout-on-rebalance + --insert-timeout"},
		&cli.DurationFlag{Name: "flush-timeout-on-rebalance", Value: d.FlushTimeoutOnRebalance, EnvVars: []string{"COSTPIPE_FLUSH_TIMEOUT_ON_REBALANCE"},
			Usage: "how long, from the start of a rebalance, landing may retry before the unlanded state is dropped for the next owner to replay"},
		&cli.DurationFlag{Name: "shutdown-timeout", Value: consumers.DefaultShutdownTimeout,
			Usage: "how long SIGTERM may take, whatever ClickHouse does: landing stops 3 s before it, the rest is for leaving the group (at least 5s; keep it below your grace period, Kubernetes' is 30 s)"},
		&cli.DurationFlag{Name: "insert-timeout", Value: usage.DefaultInsertTimeout, EnvVars: []string{"COSTPIPE_INSERT_TIMEOUT"},
			Usage: "deadline of one ClickHouse insert; a failed or timed-out insert is checked (did it land?) before it is sent again"},
		&cli.StringFlag{Name: "dlq-spool", Value: d.DLQSpoolDir, EnvVars: []string{"COSTPIPE_DLQ_SPOOL"},
			Usage: "`DIR` receiving, as JSON lines, DLQ records that Kafka refuses for good (so one poison record neither stops consumption nor is lost)"},
		&cli.DurationFlag{Name: "group-lag-interval", Value: d.GroupLagInterval, EnvVars: []string{"COSTPIPE_GROUP_LAG_INTERVAL"},
			Usage: "how often every instance reads the whole group's lag (committed against end offsets, costpipe_group_lag_records)"},
		&cli.DurationFlag{Name: "stall-timeout", Value: d.StallTimeout, EnvVars: []string{"COSTPIPE_STALL_TIMEOUT"},
			Usage: "a partition that lags while the group's committed offset does not move for this long makes the group stalled: /readyz fails and a warning is logged (0: 2m, or 2 × --flush-interval + --group-lag-interval when longer)"},
		&cli.StringFlag{Name: "cluster", EnvVars: []string{"COSTPIPE_CLUSTER"},
			Usage: "`NAME` of the ClickHouse cluster (<remote_servers>) to land on: partition p lands on shard p mod shards (docs/design.md, \"Cluster mode\"); default: the cluster the database was created on by `migrate --cluster`, else the single server of --clickhouse"},
		&cli.StringFlag{Name: "metrics-listen", EnvVars: []string{"COSTPIPE_METRICS_LISTEN"},
			Usage: "`HOST:PORT` serving Prometheus /metrics, /healthz, /readyz and Go profiles under /debug/pprof/ (default: off)"},
	}
}

func aggregateCommand() *cli.Command {
	return &cli.Command{
		Name:  "aggregate",
		Usage: "consume events, price and aggregate them, land rollups in ClickHouse",
		Description: `Joins the consumer group --group on --topic, validates and deduplicates events
(invalid ones go to the DLQ topic with the reason), prices them from the catalog
and lands per-minute, hourly and daily rollups in ClickHouse every --flush-interval.
Landing is exactly-once: crashes, restarts and ClickHouse outages never lose or
double-count an event. Applies pending migrations at start. SIGTERM lands what is
in memory, commits and exits 0, within --shutdown-timeout (25 s); if ClickHouse
cannot take it in that time, it exits 1 without committing, and the next start reads
it again from Kafka.`,
		Flags: aggregateFlags(),
		Action: func(c *cli.Context) error {
			log, err := logger(c)
			if err != nil {
				return err
			}
			agg, err := newAggregator(c, log, prometheus.NewRegistry())
			if err != nil {
				if c.Context.Err() != nil && !errors.As(err, new(*exitError)) {
					// Stopped while waiting for ClickHouse: nothing held.
					log.Info("aggregator stopped before it started", "waiting_for", err)
					return nil
				}
				return err
			}
			return agg.run(c.Context)
		},
	}
}

// aggregator bundles what `aggregate` and `demo` run.
type aggregator struct {
	log     *slog.Logger
	reg     *prometheus.Registry
	w       *warehouse.Warehouse
	sharded *warehouse.Sharded // nil on a single server
	cons    *consumers.Consumer
	// started is the consumer once the aggregator has one: /readyz reads
	// it while ClickHouse is still being waited for.
	started    atomic.Pointer[consumers.Consumer]
	srv        *http.Server           // the --metrics-listen server; nil without one
	startup    []prometheus.Collector // the metrics of an instance still starting (listen)
	instanceID string
}

// readyz answers 200 while the consumer is ready, else 503 with the reasons
// (consumers.Consumer.Ready), or that it is starting.
func (a *aggregator) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	cons := a.started.Load()
	if cons == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready: starting (connecting to ClickHouse, applying migrations, waiting for the topic)\n")
		return
	}
	if err := cons.Ready(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready: "+err.Error()+"\n")
		return
	}
	io.WriteString(w, "ready\n")
}

func newAggregator(c *cli.Context, log *slog.Logger, reg *prometheus.Registry) (*aggregator, error) {
	cat, err := loadCatalog(c)
	if err != nil {
		return nil, err
	}
	copts := consumers.DefaultOptions()
	copts.Brokers = splitList(c.String("brokers"))
	copts.Topic = c.String("topic")
	copts.DLQTopic = dlqTopic(copts.Topic)
	copts.Group = c.String("group")
	copts.InstanceID = c.String("instance-id")
	copts.HeartbeatInterval = c.Duration("heartbeat-interval")
	copts.GroupLagInterval = c.Duration("group-lag-interval")
	copts.StallTimeout = c.Duration("stall-timeout")
	copts.FlushInterval = c.Duration("flush-interval")
	copts.MaxEventAge = c.Duration("max-event-age")
	copts.MaxFuture = c.Duration("max-future")
	copts.DedupeWindow = c.Duration("dedupe-window")
	copts.DedupeMaxIDs = c.Int("dedupe-max-ids")
	copts.SessionTimeout = c.Duration("session-timeout")
	copts.RebalanceTimeout = c.Duration("rebalance-timeout")
	copts.FlushTimeoutOnRebalance = c.Duration("flush-timeout-on-rebalance")
	copts.ShutdownTimeout = c.Duration("shutdown-timeout")
	copts.DLQSpoolDir = c.String("dlq-spool")
	copts.Logger = log
	copts.Registerer = reg
	if copts.ClientOpts, err = kafkaClientOpts(c); err != nil {
		return nil, err
	}
	if err := copts.Validate(); err != nil {
		return nil, &exitError{code: 2, msg: "invalid aggregate options: " + err.Error()}
	}
	// Before anything connects: a spool that cannot be written would only
	// show at the first record Kafka refuses.
	if err := consumers.CheckSpoolDir(copts.DLQSpoolDir); err != nil {
		return nil, &exitError{code: 2, msg: "invalid aggregate options: " + err.Error()}
	}
	insertTimeout := c.Duration("insert-timeout")
	if insertTimeout < time.Second {
		// Checked here too, to name the flag: the pipeline checks it when
		// ClickHouse has been reached.
		return nil, &exitError{code: 2, msg: fmt.Sprintf("invalid --insert-timeout %s: want at least 1s", insertTimeout)}
	}
	if insertTimeout+copts.FlushTimeoutOnRebalance >= copts.RebalanceTimeout {
		// An insert started just before the rebalance deadline must end
		// before the group gives the partitions to another member.
		return nil, &exitError{code: 2, msg: fmt.Sprintf("invalid aggregate options: --insert-timeout %s + --flush-timeout-on-rebalance %s must be below --rebalance-timeout %s",
			insertTimeout, copts.FlushTimeoutOnRebalance, copts.RebalanceTimeout)}
	}
	wopts := warehouse.DefaultOptions()
	wopts.DSN = c.String("clickhouse")
	if err := clickhouseSecurity(c, &wopts); err != nil {
		return nil, err
	}
	if err := wopts.Validate(); err != nil {
		return nil, &exitError{code: 2, msg: err.Error()}
	}
	// /metrics, /healthz and /readyz answer from here on, while ClickHouse
	// is waited for: a liveness probe must not find the port closed then.
	a := &aggregator{log: log, reg: reg, instanceID: copts.InstanceID}
	if err := a.listen(c.String("metrics-listen")); err != nil {
		return nil, err
	}
	w, err := openWarehouse(c.Context, log, wopts)
	if err != nil {
		a.closeServer()
		return nil, err
	}
	cluster := c.String("cluster")
	var res []warehouse.MigrationResult
	if cluster != "" {
		res, err = w.MigrateCluster(c.Context, cluster)
	} else if res, err = w.Migrate(c.Context); err == nil {
		cluster, err = w.ClusterOf(c.Context)
	}
	logMigrations(log, w.Database(), res)
	if err != nil {
		w.Close()
		a.closeServer()
		return nil, err
	}
	var lander usage.Lander = w
	var sharded *warehouse.Sharded
	if cluster != "" {
		if sharded, err = warehouse.OpenSharded(c.Context, wopts, cluster); err != nil {
			w.Close()
			a.closeServer()
			return nil, err
		}
		lander = sharded
		topo := sharded.Topology()
		log.Info("landing on a cluster", "cluster", cluster, "shards", len(topo.Shards), "database", warehouse.LocalDatabase(w.Database()))
	}
	popts := usage.DefaultOptions()
	popts.Topic = copts.Topic
	popts.Catalog = cat
	popts.InsertTimeout = insertTimeout
	popts.MaxEventAge = copts.MaxEventAge
	popts.Logger = log
	popts.Registerer = reg
	closeAll := func() {
		w.Close()
		if sharded != nil {
			sharded.Close()
		}
		a.closeServer()
	}
	pipe, err := usage.New(lander, popts)
	if err != nil {
		closeAll()
		return nil, err
	}
	// The consumer's client may create a missing topic (for the DLQ): a
	// mistyped --topic would then be consumed, empty, and look healthy.
	if err := waitTopic(c.Context, log, copts); err != nil {
		closeAll()
		return nil, err
	}
	for _, m := range a.startup {
		reg.Unregister(m) // the consumer registers costpipe_ready
	}
	cons, err := consumers.New(copts, pipe)
	if err != nil {
		closeAll()
		return nil, err
	}
	a.w, a.sharded, a.cons = w, sharded, cons
	a.started.Store(cons)
	return a, nil
}

// listen serves /metrics, /healthz, /readyz and the profiles on addr ("":
// none), from now until closeServer. The Go and process collectors are
// registered here, the consumer's and the pipeline's when they are made.
func (a *aggregator) listen(addr string) error {
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Until the consumer is made (ClickHouse waited for, migrations), the
	// instance is not ready, and says so: an instance stuck there would
	// otherwise export no costpipe_* series for an alert to see.
	begun := time.Now()
	a.startup = []prometheus.Collector{
		prometheus.NewGauge(prometheus.GaugeOpts{Name: "costpipe_ready", Help: "1 when /readyz answers 200, else 0."}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "costpipe_starting_seconds",
			Help: "Seconds this instance has been starting (waiting for ClickHouse, migrating); the series goes once it consumes."},
			func() float64 { return time.Since(begun).Seconds() }),
	}
	a.reg.MustRegister(a.startup...)
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return &exitError{code: 2, msg: fmt.Sprintf("cannot listen on --metrics-listen %q: %v", addr, err)}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", a.readyz)
	// Profiles, as Prometheus and VictoriaMetrics serve them: the
	// listener is an operator's port, not a public one.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go a.srv.Serve(ln)
	a.log.Info("serving metrics", "addr", ln.Addr().String()+"/metrics")
	return nil
}

// closeServer stops the --metrics-listen server, if any.
func (a *aggregator) closeServer() {
	if a.srv != nil {
		a.srv.Close()
	}
}

// waitTopic returns once the topic to consume exists, asking Kafka without
// creating it; until then it warns (the first time at once, then once a
// minute) that the topic is missing and not ready. A missing topic is
// usually a typo in --topic, or a topic not created yet.
func waitTopic(ctx context.Context, log *slog.Logger, o consumers.Options) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(o.Brokers...)}, o.ClientOpts...)...)
	if err != nil {
		return &exitError{code: 2, msg: fmt.Sprintf("cannot create a Kafka client for %q: %v", o.Brokers, err)}
	}
	defer cl.Close()
	var failing loglimit.Failures
	var last error // why the topic is not there yet, for the stop's log line
	stopped := func() error {
		if last == nil {
			return ctx.Err()
		}
		return fmt.Errorf("%v (stopped while waiting: %w)", last, ctx.Err())
	}
	backoff := 200 * time.Millisecond
	for {
		req := kmsg.NewPtrMetadataRequest()
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(o.Topic)
		req.Topics = append(req.Topics, t)
		req.AllowAutoTopicCreation = false
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := req.RequestWith(rctx, cl)
		cancel()
		switch {
		case ctx.Err() != nil:
			return stopped()
		case err != nil:
			err = fmt.Errorf("cannot ask Kafka about topic %q: %w", o.Topic, err)
		case len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0 && len(resp.Topics[0].Partitions) > 0:
			if failing.Failing() {
				log.Info("topic found; consuming", "topic", o.Topic)
			}
			return nil
		case len(resp.Topics) == 1 && resp.Topics[0].ErrorCode != 0:
			err = fmt.Errorf("topic %q: %w", o.Topic, kerr.ErrorForCode(resp.Topics[0].ErrorCode))
		default:
			err = fmt.Errorf("topic %q has no partitions", o.Topic)
		}
		if n, _, due := failing.Fail(time.Now(), time.Minute); due {
			log.Warn("waiting for the topic to consume: check --topic (COSTPIPE_TOPIC) and that the topic is created; not ready meanwhile",
				"topic", o.Topic, "attempts", n, "err", err)
		}
		last = err
		select {
		case <-ctx.Done():
			return stopped()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// openWarehouse connects, retrying with backoff while ClickHouse is down.
func openWarehouse(ctx context.Context, log *slog.Logger, o warehouse.Options) (*warehouse.Warehouse, error) {
	backoff := 500 * time.Millisecond
	var failing loglimit.Failures
	for {
		w, err := warehouse.Open(ctx, o)
		if err == nil {
			return w, nil
		}
		if ctx.Err() != nil || secure.Permanent(err) {
			return nil, err
		}
		// The first failure at once, then a line a minute with the count.
		if n, _, due := failing.Fail(time.Now(), time.Minute); due {
			log.Warn("clickhouse not reachable yet; retrying", "retry_in", backoff, "attempts", n, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (a *aggregator) run(ctx context.Context) error {
	defer a.w.Close()
	if a.sharded != nil {
		defer a.sharded.Close()
	}
	defer a.closeServer()
	a.log.Info("aggregator starting", "database", a.w.Database(), "instance_id", a.instanceID)
	// Run returns nil on a clean stop; an error, whatever it wraps (a
	// landing cut by a rebalance wraps context.Canceled), means that what
	// it held did not land (it is read again from Kafka at the next start)
	// or that the topic was deleted and created again
	// (consumers.ErrTopicRecreated, which only a new start can read):
	// exit 1 either way.
	if err := a.cons.Run(ctx); err != nil {
		return err
	}
	a.log.Info("aggregator stopped")
	return nil
}

// logMigrations logs the migrations a long-running command applied at
// start, and warns when they created the database's tables from nothing:
// a typo in --clickhouse's database lands everything in a new one.
func logMigrations(log *slog.Logger, db string, res []warehouse.MigrationResult) {
	var applied []string
	fresh := false
	for _, r := range res {
		if r.Applied {
			applied = append(applied, r.Name)
			fresh = fresh || r.Version == 1
		}
	}
	switch {
	case fresh:
		log.Warn("created the costpipe tables in a database that had none: if you meant an existing one, check the database in --clickhouse",
			"database", db, "migrations", len(applied))
	case len(applied) > 0:
		log.Info("applied migrations", "database", db, "migrations", strings.Join(applied, ","))
	}
}
