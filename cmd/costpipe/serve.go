package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/alerts"
	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/producers/ingest"
	"github.com/costpipe/costpipe/serve"
	"github.com/costpipe/costpipe/warehouse"
)

func serveCommand() *cli.Command {
	def := serve.DefaultOptions()
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the query API (JSON, CSV, Arrow) and the dashboard over HTTP",
		Description: `Serves on --listen:

  GET /api/v1/usage, /latency, /top, /series, /growth, /forecast, /prices,
      /alerts, /alerts/notifications
                  the reports of costpipe query (and prices coverage), with its
                  flags as query parameters: ?since=7d&by=model&where=tenant=acme.
                  JSON; "Accept: application/vnd.apache.arrow.stream" gives Arrow,
                  "Accept: text/csv" CSV. Errors are JSON naming the parameter.
  GET /           the dashboard (one page, embedded)
  GET /healthz, /readyz (ClickHouse answers), /metrics (Prometheus)

It starts whether or not ClickHouse answers: while ClickHouse is unreachable,
API requests are answered 503 with Retry-After and /readyz 503, and the log
says so once a minute (with how many requests failed) and again when it
answers.

API keys come from --keys, the ingest gateway's format: one "KEY TENANT" pair
per line, TENANT a tenant name or * for all. Clients send "Authorization:
Bearer KEY"; a tenant's key reads only that tenant (any other is 403), a *
key every tenant. The page asks for a key and keeps it in the browser.
SIGHUP reads the key file again without dropping a request: new keys work,
removed ones get 401; a file that does not parse keeps the old keys (logged,
and counted in costpipe_serve_keys_reload_total{result="error"}).

SIGTERM or Ctrl-C stops accepting connections and lets the requests in flight
finish until 2 s before --shutdown-timeout; those still running then are
cancelled and answered 503 with Retry-After, and serve exits 0.
Reference: docs/serve.md.

Examples:
  costpipe serve --listen 127.0.0.1:8090 --keys keys.txt
  curl -H "Authorization: Bearer $KEY" 'http://127.0.0.1:8090/api/v1/usage?since=7d&by=model'

Exit status: 0 clean stop, 1 serving failed, 2 usage error.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8090", EnvVars: []string{"COSTPIPE_SERVE_LISTEN"},
				Usage: "`HOST:PORT` to serve HTTP on (port 0 picks a free one)"},
			&cli.StringFlag{Name: "keys", EnvVars: []string{"COSTPIPE_SERVE_KEYS"}, TakesFile: true,
				Usage: "API key `FILE` (the ingest gateway's format): one \"KEY TENANT\" per line, TENANT * for every tenant"},
			&cli.DurationFlag{Name: "query-timeout", Value: def.QueryTimeout, EnvVars: []string{"COSTPIPE_SERVE_QUERY_TIMEOUT"},
				Usage: "how long an API request may take before it is answered 503"},
			&cli.IntFlag{Name: "max-concurrent", Value: def.MaxConcurrent, EnvVars: []string{"COSTPIPE_SERVE_MAX_CONCURRENT"},
				Usage: "API requests querying at once; more wait for a slot"},
			&cli.IntFlag{Name: "max-response-bytes", Value: def.MaxResponseBytes, EnvVars: []string{"COSTPIPE_SERVE_MAX_RESPONSE_BYTES"},
				Usage: "largest API answer in `BYTES`; a larger one is refused with a hint to narrow the request"},
			&cli.DurationFlag{Name: "cache-ttl", Value: def.CacheTTL, EnvVars: []string{"COSTPIPE_SERVE_CACHE_TTL"},
				Usage: "keep each API answer this `DURATION` and let identical concurrent requests share one query (0: no cache); about the aggregator's flush interval, so answers are no staler than the rollups"},
			&cli.IntFlag{Name: "max-cache-bytes", Value: def.MaxCacheBytes, EnvVars: []string{"COSTPIPE_SERVE_MAX_CACHE_BYTES"},
				Usage: "bound of the cached answers in `BYTES`"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: def.ShutdownTimeout, EnvVars: []string{"COSTPIPE_SERVE_SHUTDOWN_TIMEOUT"},
				Usage: "longest SIGTERM shutdown: requests in flight run until 2 s before it (half of it when shorter than 4 s), then are cancelled (503 with Retry-After); above --query-timeout + 2 s none is cut, but keep it under the orchestrator's grace period (Kubernetes: 30 s)"},
		},
		Action: runServe,
	}
}

func runServe(c *cli.Context) error {
	if c.NArg() > 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("serve takes no arguments, got %q", c.Args().First())}
	}
	hup := catchHangups()
	defer signal.Stop(hup)
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.String("keys") == "" {
		return &exitError{code: 2, msg: "serve needs --keys FILE: one \"KEY TENANT\" per line (TENANT * for every tenant)"}
	}
	opts := serve.DefaultOptions()
	if opts.Keys, err = ingest.LoadKeys(c.String("keys")); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	opts.KeysFile = c.String("keys")
	if opts.Catalog, err = loadCatalog(c); err != nil {
		return err
	}
	opts.Logger = log
	opts.QueryTimeout = c.Duration("query-timeout")
	opts.WriteTimeout = opts.QueryTimeout + 10*time.Second
	opts.MaxConcurrent = c.Int("max-concurrent")
	opts.MaxResponseBytes = c.Int("max-response-bytes")
	opts.ShutdownTimeout = c.Duration("shutdown-timeout")
	opts.CacheTTL = c.Duration("cache-ttl")
	opts.MaxCacheBytes = c.Int("max-cache-bytes")
	if err := opts.Validate(); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	wopts := warehouse.DefaultOptions()
	wopts.DSN = c.String("clickhouse")
	if err := clickhouseSecurity(c, &wopts); err != nil {
		return err
	}
	// A request may hold several connections at once (a latency series
	// queries 4 steps at a time; the summaries' check runs beside the
	// question): a pool of one per request made saturation 500s.
	wopts.MaxOpenConns = 4 * opts.MaxConcurrent
	// Lazily: serve starts before ClickHouse does (a compose stack, a
	// rolling restart) and rides out its outages, answering 503 meanwhile.
	w, err := warehouse.OpenLazy(wopts)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	defer w.Close()
	pctx, cancel := context.WithTimeout(c.Context, 2*time.Second)
	if err := w.Ping(pctx); err != nil {
		if !warehouse.Unavailable(err) {
			cancel()
			return err // TLS or credentials: it will not get better by itself
		}
		log.Warn("ClickHouse does not answer yet: serving anyway; the API answers 503 and /readyz 503 until it does", "err", err)
	}
	cancel()
	opts.Alerts = alerts.NewStore(w, time.Now)
	srv, err := serve.New(w, analytics.New(w, analytics.Options{MaxRows: 20000, Logger: log}), opts)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("cannot listen on %s: %v", c.String("listen"), err)}
	}
	go reloadOnHangup(c.Context, hup, func() { srv.ReloadKeys() }) // it logs and counts the outcome
	log.Info("serving the API and the dashboard", "url", "http://"+ln.Addr().String()+"/", "keys", opts.Keys.Len())
	return srv.Serve(c.Context, ln)
}

// catchHangups makes SIGHUP arrive on the channel it returns instead of
// ending the process, as Go does by default: a command that reloads its
// key file on SIGHUP calls it first thing, so a SIGHUP during its start
// (a key-rotation sidecar's, while it connects) is a reload once it
// serves rather than the end of the process. Stop it with signal.Stop.
func catchHangups() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// reloadOnHangup calls reload for each SIGHUP that hup (catchHangups)
// delivers until ctx ends; one that arrived before is served at once.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, reload func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			reload()
		}
	}
}
