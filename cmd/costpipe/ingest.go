package main

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/producers/ingest"
)

func ingestCommand() *cli.Command {
	def := ingest.DefaultOptions()
	return &cli.Command{
		Name:  "ingest",
		Usage: "run the HTTP ingest gateway (POST /v1/events and OTLP POST /v1/traces → Kafka)",
		Description: `Serves POST /v1/events on --listen: a JSON event, a JSON array of events, NDJSON
(application/x-ndjson) or CloudEvents (application/cloudevents+json,
application/cloudevents-batch+json), optionally gzip-encoded. Valid events are
produced to --topic with acks=all; 202 means Kafka acknowledged every accepted
event. Also GET /healthz, /readyz (Kafka reachable, checked at most once a
second) and /metrics (Prometheus; with --metrics-listen only there, off the
public listener).

Events older than --max-event-age or further ahead than --max-future (by this
process's clock) are rejected as invalid, as the aggregator would send them to its
DLQ: give both the aggregators' values (they read the same variables).

POST /v1/traces takes OTLP/HTTP trace exports (application/x-protobuf or
application/json, optionally gzip) from OpenTelemetry SDKs and Collectors: every
span with gen_ai usage attributes becomes one event (docs/otlp.md). With a key for
every tenant, the tenant is the resource attribute --otlp-tenant-attribute.

API keys come from --keys: one "KEY TENANT" pair per line ("#" comments), TENANT
being a tenant name or * for all; clients send "Authorization: Bearer KEY". The
file is read again on SIGHUP (a bad file keeps the old keys). Without --keys the
gateway refuses to start, unless --insecure-no-auth accepts every request.

SIGTERM or Ctrl-C makes /readyz answer 503 while requests are still served for
--shutdown-delay (so load balancers stop sending first), then stops accepting
connections, finishes in-flight requests, flushes the producer and exits 0, all
within --shutdown-timeout of the signal.
Exit status: 0 clean stop, 1 serving or draining failed, 2 usage error.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", EnvVars: []string{"COSTPIPE_INGEST_LISTEN"},
				Usage: "`HOST:PORT` to serve HTTP on (port 0 picks a free one)"},
			&cli.StringFlag{Name: "metrics-listen", EnvVars: []string{"COSTPIPE_INGEST_METRICS_LISTEN"},
				Usage: "`HOST:PORT` of an operator's listener serving /metrics, /healthz, /readyz and Go profiles under /debug/pprof/; /metrics then leaves --listen (default: off, /metrics on --listen)"},
			&cli.StringFlag{Name: "keys", EnvVars: []string{"COSTPIPE_INGEST_KEYS"}, TakesFile: true,
				Usage: "API key `FILE`: one \"KEY TENANT\" per line, TENANT * for every tenant"},
			&cli.BoolFlag{Name: "insecure-no-auth", EnvVars: []string{"COSTPIPE_INGEST_INSECURE_NO_AUTH"},
				Usage: "run without API keys: anyone may write any tenant (development only)"},
			&cli.StringFlag{Name: "max-body", Value: formatSize(def.MaxBodyBytes), EnvVars: []string{"COSTPIPE_INGEST_MAX_BODY"},
				Usage: "largest request body, before and after gzip (`SIZE`: bytes, or with KiB, MiB, GiB, KB, MB, GB)"},
			&cli.IntFlag{Name: "max-inflight", Value: def.MaxInFlight, EnvVars: []string{"COSTPIPE_INGEST_MAX_INFLIGHT"},
				Usage: "requests processed at once; more are answered 429"},
			&cli.IntFlag{Name: "max-receiving-per-key", Value: def.MaxReceivingPerKey, EnvVars: []string{"COSTPIPE_INGEST_MAX_RECEIVING_PER_KEY"},
				Usage: "requests of one API key still receiving their body at once; more are answered 429 (0: no limit)"},
			&cli.StringFlag{Name: "max-inflight-bytes", Value: formatSize(def.MaxInFlightBytes), EnvVars: []string{"COSTPIPE_INGEST_MAX_INFLIGHT_BYTES"},
				Usage: "request bytes held at once over all requests (`SIZE`); more are answered 429 (a request that could never fit, 413)"},
			&cli.DurationFlag{Name: "produce-timeout", Value: def.ProduceTimeout, EnvVars: []string{"COSTPIPE_INGEST_PRODUCE_TIMEOUT"},
				Usage: "how long a request waits for Kafka to acknowledge its events before answering 503"},
			&cli.DurationFlag{Name: "linger", Value: def.ProducerLinger, EnvVars: []string{"COSTPIPE_INGEST_LINGER"},
				Usage: "producer linger before sending a batch"},
			&cli.StringFlag{Name: "otlp-tenant-attribute", Value: def.OTLPTenantAttribute, EnvVars: []string{"COSTPIPE_INGEST_OTLP_TENANT_ATTRIBUTE"},
				Usage: "OTLP resource attribute `NAME` giving the tenant of spans sent with a * key"},
			&cli.StringFlag{Name: "otlp-skip-operations", Value: strings.Join(def.OTLPSkipOperations, ","), EnvVars: []string{"COSTPIPE_INGEST_OTLP_SKIP_OPERATIONS"},
				Usage: "gen_ai.operation.name values whose spans aggregate other calls and are ignored (`LIST`, comma-separated; \"\" for none)"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: def.ShutdownTimeout, EnvVars: []string{"COSTPIPE_INGEST_SHUTDOWN_TIMEOUT"},
				Usage: "from SIGTERM to exit at most: the --shutdown-delay, then the drain of in-flight requests (keep it above --shutdown-delay + 30s of reading + --produce-timeout + 1s, or a request still waiting for Kafka may be cut off; a warning says so)"},
			&cli.DurationFlag{Name: "shutdown-delay", Value: def.ShutdownDelay, EnvVars: []string{"COSTPIPE_INGEST_SHUTDOWN_DELAY"},
				Usage: "after SIGTERM, how long /readyz answers 503 while requests are still served, before the listener closes (0: at once); part of --shutdown-timeout"},
			// The aggregator's flags, names and variables: a deployment that
			// sets the variable sets both.
			&cli.DurationFlag{Name: "max-event-age", Value: def.MaxEventAge, EnvVars: []string{"COSTPIPE_MAX_EVENT_AGE"},
				Usage: "events older than this are rejected (the aggregator would send them to its DLQ); must match the aggregators' --max-event-age"},
			&cli.DurationFlag{Name: "max-future", Value: def.MaxFuture, EnvVars: []string{"COSTPIPE_MAX_FUTURE"},
				Usage: "events further in the future than this are rejected; must match the aggregators' --max-future"},
		},
		Action: runIngest,
	}
}

func runIngest(c *cli.Context) error {
	if c.NArg() > 0 {
		return &exitError{code: 2, msg: "ingest takes no arguments"}
	}
	var hup chan os.Signal // SIGHUP reloads --keys: caught from the start
	if c.String("keys") != "" {
		hup = catchHangups()
		defer signal.Stop(hup)
	}
	log, err := logger(c)
	if err != nil {
		return err
	}
	opts := ingest.DefaultOptions()
	opts.Brokers = splitList(c.String("brokers"))
	opts.Topic = c.String("topic")
	opts.Logger = log
	if opts.ClientOpts, err = kafkaClientOpts(c); err != nil {
		return err
	}
	opts.InsecureNoAuth = c.Bool("insecure-no-auth")
	opts.PrivateMetrics = c.String("metrics-listen") != ""
	opts.MaxInFlight = c.Int("max-inflight")
	opts.MaxReceivingPerKey = c.Int("max-receiving-per-key")
	opts.ProduceTimeout = c.Duration("produce-timeout")
	opts.ProducerLinger = c.Duration("linger")
	opts.ShutdownTimeout = c.Duration("shutdown-timeout")
	opts.ShutdownDelay = c.Duration("shutdown-delay")
	opts.OTLPTenantAttribute = c.String("otlp-tenant-attribute")
	opts.OTLPSkipOperations = splitList(c.String("otlp-skip-operations"))
	opts.MaxEventAge = c.Duration("max-event-age")
	opts.MaxFuture = c.Duration("max-future")
	if opts.MaxBodyBytes, err = parseSize(c.String("max-body")); err != nil {
		return &exitError{code: 2, msg: "invalid --max-body: " + err.Error()}
	}
	if opts.MaxInFlightBytes, err = parseSize(c.String("max-inflight-bytes")); err != nil {
		return &exitError{code: 2, msg: "invalid --max-inflight-bytes: " + err.Error()}
	}
	keyFile := c.String("keys")
	switch {
	case keyFile != "" && opts.InsecureNoAuth:
		return &exitError{code: 2, msg: "cannot use --keys with --insecure-no-auth: choose one"}
	case keyFile == "" && !opts.InsecureNoAuth:
		return &exitError{code: 2, msg: "cannot start without API keys: give --keys FILE (or --insecure-no-auth for development)"}
	case keyFile != "":
		if opts.Keys, err = ingest.LoadKeys(keyFile); err != nil {
			return &exitError{code: 2, msg: err.Error()}
		}
		opts.KeysFile = keyFile
	}
	if err := opts.Validate(); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	srv, err := ingest.New(opts)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return &exitError{code: 2, msg: fmt.Sprintf("cannot listen on --listen %q: %v", c.String("listen"), err)}
	}
	if addr := c.String("metrics-listen"); addr != "" {
		ops, err := net.Listen("tcp", addr)
		if err != nil {
			ln.Close()
			return &exitError{code: 2, msg: fmt.Sprintf("cannot listen on --metrics-listen %q: %v", addr, err)}
		}
		mux := http.NewServeMux()
		mux.Handle("/", srv.OpsHandler())
		// Profiles, as the aggregator serves them: an operator's port.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go hs.Serve(ops)
		defer hs.Close() // after the drain: /readyz answers 503 through it
		log.Info("serving metrics", "addr", ops.Addr().String()+"/metrics")
	}

	if keyFile != "" {
		go reloadOnHangup(c.Context, hup, func() {
			n, err := srv.ReloadKeys()
			if err != nil {
				log.Error("cannot reload API keys; keeping the old ones", "file", keyFile, "keys", n, "err", err)
				return
			}
			log.Info("API keys reloaded", "file", keyFile, "keys", n)
		})
	}

	auth := "NO AUTHENTICATION (--insecure-no-auth)"
	if opts.Keys != nil {
		auth = fmt.Sprintf("%d API keys from %s", opts.Keys.Len(), keyFile)
	}
	fmt.Fprintf(c.App.Writer, "ingest listening on http://%s (topic %s, brokers %s, %s)\n",
		ln.Addr(), opts.Topic, strings.Join(opts.Brokers, ","), auth)
	start := time.Now()
	if err := srv.Serve(c.Context, ln); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	fmt.Fprintf(c.App.Writer, "ingest stopped after %s\n", time.Since(start).Round(time.Second))
	return nil
}

// sizeUnits are the suffixes parseSize accepts, longest first.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9},
	{"b", 1},
}

// parseSize reads a byte size: "5242880", "5MiB", "512 KiB", "1GB".
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("cannot parse size %q: want bytes, or a number with KiB, MiB, GiB, KB, MB or GB", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("cannot use size %q: too large", s)
	}
	return n * mult, nil
}

// formatSize writes n in the largest binary unit that divides it.
func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10)
}
