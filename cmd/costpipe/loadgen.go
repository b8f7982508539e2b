package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/producers"
	"github.com/costpipe/costpipe/producers/loadgen"
)

func loadgenCommand() *cli.Command {
	def := loadgen.DefaultOptions()
	env := func(name string) []string { return []string{"COSTPIPE_LOADGEN_" + name} }
	return &cli.Command{
		Name:  "loadgen",
		Usage: "generate realistic inference traffic to Kafka, the HTTP gateway or stdout",
		Description: `Generates events at --rate per second for --duration (0: until Ctrl-C): tenants
of Zipf-distributed size, models of the price catalog (--prices) with log-normal
token counts and latencies per model, error bursts, about --unpriced-rate calls to
models the catalog does not price, and --duplicate-rate re-sent event_ids. The same
--seed gives the same events (steady timestamps aside).

Scenarios: steady stamps events with the current time; growth backdates
rate × duration events over --span ending now, compounding so the last day has
--growth-factor times the traffic of the first, with a diurnal swing.

Output (--output): kafka (default: --brokers, --topic, --encoding), stdout (JSON
lines, the input format of "costpipe produce"), or http://HOST:PORT to POST
NDJSON batches of --batch events to the ingest gateway with --api-key, retrying
429, 500, 502, 503, 504 and network errors (after Retry-After when given). A
live line on stderr shows the achieved rate (--quiet hides it). Exit status: 0 done (also after Ctrl-C), 1 the output failed,
2 usage error.`,
		Flags: []cli.Flag{
			&cli.Float64Flag{Name: "rate", Value: def.Rate, EnvVars: env("RATE"), Usage: "events per second"},
			&cli.DurationFlag{Name: "duration", Value: def.Duration, EnvVars: env("DURATION"), Usage: "how long to run; 0 runs until interrupted (steady only)"},
			&cli.IntFlag{Name: "tenants", Value: def.Tenants, EnvVars: env("TENANTS"), Usage: "number of tenants"},
			&cli.Uint64Flag{Name: "seed", Value: def.Seed, EnvVars: env("SEED"), Usage: "random seed; the same seed gives the same traffic (steady traffic's error bursts follow the 10-minute slots of its timestamps). Without --seed the event ids are new on every run (seed 1's traffic); with it they repeat, and a second run's events are duplicates the aggregator drops"},
			&cli.StringFlag{Name: "scenario", Value: string(def.Scenario), EnvVars: env("SCENARIO"), Usage: "steady or growth"},
			&cli.Float64Flag{Name: "growth-factor", Value: def.GrowthFactor, EnvVars: env("GROWTH_FACTOR"), Usage: "growth: traffic of the last simulated day over the first"},
			&cli.DurationFlag{Name: "span", Value: def.SimulatedSpan, EnvVars: env("SPAN"), Usage: "growth: simulated time range, ending now"},
			&cli.Float64Flag{Name: "error-rate", Value: def.ErrorRate, EnvVars: env("ERROR_RATE"), Usage: "share of failed calls outside error bursts"},
			&cli.Float64Flag{Name: "unpriced-rate", Value: def.UnpricedRate, EnvVars: env("UNPRICED_RATE"), Usage: "share of calls to models the catalog does not price"},
			&cli.Float64Flag{Name: "duplicate-rate", Value: def.DuplicateRate, EnvVars: env("DUPLICATE_RATE"), Usage: "share of events re-sent with an earlier event_id"},
			&cli.StringFlag{Name: "output", Value: "kafka", EnvVars: env("OUTPUT"), Usage: "kafka, stdout, or the gateway's `URL` (http://HOST:PORT)"},
			&cli.StringFlag{Name: "encoding", Value: string(producers.EncodingJSON), EnvVars: env("ENCODING"), Usage: "kafka: json (one event per record) or arrow (batches)"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, EnvVars: env("TIMEOUT"), Usage: "kafka: delivery timeout of an event (positive: an event Kafka has not taken by then is counted failed)"},
			&cli.IntFlag{Name: "batch", Value: loadgen.DefaultHTTPOptions().BatchEvents, EnvVars: env("BATCH"), Usage: "http: events per request"},
			&cli.StringFlag{Name: "api-key", EnvVars: []string{"COSTPIPE_API_KEY"}, Usage: "http: API `KEY` sent as Authorization: Bearer KEY"},
			&cli.BoolFlag{Name: "quiet", EnvVars: env("QUIET"), Usage: "no live rate line on stderr"},
			&cli.StringFlag{Name: "now", Hidden: true, Usage: "RFC 3339 time the clock starts at (tests)"},
		},
		Action: runLoadgen,
	}
}

func runLoadgen(c *cli.Context) error {
	if c.NArg() > 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("loadgen takes no arguments, got %q", c.Args().First())}
	}
	cat, err := loadCatalog(c)
	if err != nil {
		return err
	}
	opts := loadgen.DefaultOptions()
	opts.Rate = c.Float64("rate")
	opts.Duration = c.Duration("duration")
	opts.Tenants = c.Int("tenants")
	opts.Seed = c.Uint64("seed")
	if !c.IsSet("seed") {
		// New ids on every run: the aggregator would drop a second run's
		// events as retries of the first's (--dedupe-window).
		opts.IDSalt = rand.Uint64()
	}
	opts.Scenario = loadgen.Scenario(c.String("scenario"))
	opts.GrowthFactor = c.Float64("growth-factor")
	opts.SimulatedSpan = c.Duration("span")
	opts.ErrorRate = c.Float64("error-rate")
	opts.UnpricedRate = c.Float64("unpriced-rate")
	opts.DuplicateRate = c.Float64("duplicate-rate")
	opts.Catalog = cat
	if s := c.String("now"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("invalid --now %q: want RFC 3339", s)}
		}
		started := time.Now()
		opts.Now = func() time.Time { return t.Add(time.Since(started)) }
	}
	stderr := c.App.ErrWriter
	endLine := func() {}
	if !c.Bool("quiet") {
		opts.Progress, endLine = liveLine(stderr, opts.Rate)
	}
	gen, err := loadgen.New(opts)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}

	var (
		sink   loadgen.Sink
		where  string
		finish func() (string, bool) // closes the output, returns a summary and whether all went well
	)
	switch out := c.String("output"); {
	case out == "stdout" || out == "-":
		sink, where = loadgen.NewWriterSink(c.App.Writer), "stdout"
		finish = func() (string, bool) { return "", true }
	case strings.HasPrefix(out, "http://") || strings.HasPrefix(out, "https://"):
		ho := loadgen.DefaultHTTPOptions()
		ho.URL, ho.APIKey, ho.BatchEvents = out, c.String("api-key"), c.Int("batch")
		hs, err := loadgen.NewHTTPSink(ho)
		if err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("invalid --output or --batch: %v", err)}
		}
		sink, where = hs, out
		finish = func() (string, bool) {
			s := hs.Stats()
			return fmt.Sprintf("gateway: accepted %d, rejected %d, %d requests, %d retries", s.Accepted, s.Rejected, s.Requests, s.Retries),
				s.Rejected == 0
		}
	case out == "kafka":
		po := producers.DefaultOptions()
		po.Brokers = splitList(c.String("brokers"))
		po.Topic = c.String("topic")
		po.Encoding = producers.Encoding(c.String("encoding"))
		if c.Duration("timeout") <= 0 {
			// 0 would retry an event until Kafka takes it, and the run's
			// last flush would wait for a broker that is down for ever.
			return &exitError{code: 2, msg: fmt.Sprintf("invalid --timeout %s: must be positive", c.Duration("timeout"))}
		}
		po.DeliveryTimeout = c.Duration("timeout")
		// The SDK's loss lines in the command's log format, not Go's
		// default logger's.
		if l, err := logger(c); err == nil {
			po.Logger = l
		}
		// A generator wants back pressure, not drops, and sends the event
		// times it was asked for (the growth scenario's go back weeks): the
		// aggregator's bounds decide, not the SDK's.
		po.WhenFull, po.MaxEventAge, po.MaxFuture = producers.Block, 0, 0
		if po.ClientOptions, err = kafkaClientOpts(c); err != nil {
			return err
		}
		p, err := producers.New(po)
		if err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("cannot produce to kafka: %v", err)}
		}
		sink, where = loadgen.KafkaSink{Producer: p}, fmt.Sprintf("kafka %s (%s)", po.Topic, po.Encoding)
		finish = func() (string, bool) {
			ctx, cancel := context.WithTimeout(context.Background(), c.Duration("timeout")+5*time.Second)
			defer cancel()
			cerr := p.Close(ctx)
			s := p.Stats()
			msg := fmt.Sprintf("kafka: sent %d, failed %d, dropped %d", s.Sent, s.Failed, s.Dropped)
			if cerr != nil {
				msg += ": " + cerr.Error()
			}
			return msg, cerr == nil && s.Failed == 0 && s.Dropped == 0
		}
	default:
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --output %q: want kafka, stdout or http://HOST:PORT", out)}
	}

	st, runErr := loadgen.Run(c.Context, gen, sink, opts.Rate)
	summary, ok := finish()
	endLine()
	fmt.Fprintf(stderr, "loadgen: wrote %d events in %.2fs (%.0f/s) to %s; %d errors, %d unpriced, %d duplicates\n",
		st.Written, st.Elapsed.Seconds(), st.Rate(), where, st.Errors, st.Unpriced, st.Duplicates)
	if summary != "" {
		fmt.Fprintln(stderr, "loadgen: "+summary)
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return &exitError{code: 1, msg: runErr.Error()}
	}
	if !ok {
		return &exitError{code: 1}
	}
	return nil
}

// liveLine returns a Progress callback printing the achieved rate (one line
// rewritten in place on a terminal, a line per update otherwise) and a
// function ending the line.
func liveLine(w io.Writer, target float64) (progress func(loadgen.Stats), end func()) {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	var last loadgen.Stats
	end = func() {
		if tty {
			fmt.Fprintln(w)
		}
	}
	return func(s loadgen.Stats) {
		// The rate over the last update, which is what "achieved" means
		// while the run goes on.
		rate := s.Rate()
		if dt := (s.Elapsed - last.Elapsed).Seconds(); dt > 0.2 && last.Elapsed > 0 {
			rate = float64(s.Written-last.Written) / dt
		}
		last = s
		errPct, unpricedPct := 0.0, 0.0
		if s.Events > 0 {
			errPct, unpricedPct = 100*float64(s.Errors)/float64(s.Events), 100*float64(s.Unpriced)/float64(s.Events)
		}
		line := fmt.Sprintf("loadgen: %d events in %.0fs, %.0f/s (target %.0f/s), %.1f%% errors, %.1f%% unpriced, %d duplicates",
			s.Written, s.Elapsed.Seconds(), rate, target, errPct, unpricedPct, s.Duplicates)
		if tty {
			fmt.Fprint(w, "\r\033[K"+line)
			return
		}
		fmt.Fprintln(w, line)
	}, end
}
