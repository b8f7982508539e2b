package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/broker"
	"github.com/costpipe/costpipe/consumers"
	"github.com/costpipe/costpipe/pipelines/usage"
	"github.com/costpipe/costpipe/producers"
	"github.com/costpipe/costpipe/producers/loadgen"
	"github.com/costpipe/costpipe/render"
	"github.com/costpipe/costpipe/warehouse"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run broker, aggregator and traffic in one process, then print a report",
		Description: `Starts the embedded Kafka-protocol broker on a free port, applies the migrations
to --clickhouse, runs the aggregator and the traffic generator (through the Go SDK)
for --duration with a live progress line, waits until every event has landed, and
prints cost, requests, tokens and latency percentiles by model and by tenant,
growth rates by model and a month-end forecast. Alongside the traffic it runs
` + "`costpipe alerts run`" + ` (a process of its own, evaluating every second) with a
budget the traffic crosses (90% of what it spends in the current UTC day, or week or
month when the day has too little traffic or ends during the run) at 50% and 100%,
and in the growth scenario a
growth rule; the notifications go to a local webhook receiver, which verifies their
Standard Webhooks signatures, and to the log receiver, and are printed as they
arrive. With --scenario growth (the
default) the events are spread over the last --span with traffic compounding
--growth-factor times, so growth shows a doubling time; --scenario steady sends
them at the current time.
` + "`make demo`" + ` starts a ClickHouse for it; any reachable server works. The demo lands
synthetic traffic, alert state and landing marks for the events topic, which would
mix with real usage (and make an aggregator skip real events as already landed), so
it runs only in a database whose name starts with costpipe_demo: without
--clickhouse (or COSTPIPE_CLICKHOUSE) it uses 127.0.0.1:9000/costpipe_demo, and any
other database is refused:
  costpipe --clickhouse clickhouse://127.0.0.1:9000/costpipe_demo demo`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "duration", Value: 30 * time.Second, Usage: "how long traffic runs"},
			&cli.Float64Flag{Name: "rate", Value: 5000, Usage: "events per second generated"},
			&cli.IntFlag{Name: "tenants", Value: 12, Usage: "tenants in the generated traffic"},
			&cli.StringFlag{Name: "encoding", Value: "arrow", Usage: "record encoding of the generator: json or arrow"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "generator seed (same seed, same traffic)"},
			&cli.DurationFlag{Name: "flush-interval", Value: 2 * time.Second, Usage: "aggregator flush interval"},
			&cli.BoolFlag{Name: "reset", Usage: "drop the database first, so the report shows this run only (only for a database named costpipe_demo*)"},
			&cli.StringFlag{Name: "scenario", Value: "growth", Usage: "traffic shape: growth (backdated over --span, compounding) or steady (now)"},
			&cli.DurationFlag{Name: "span", Value: 35 * 24 * time.Hour, Usage: "growth scenario: the time range the events are spread over, ending now"},
			&cli.Float64Flag{Name: "growth-factor", Value: 100, Usage: "growth scenario: how many times more traffic the last day has than the first"},
			&cli.BoolFlag{Name: "no-alerts", Usage: "do not run costpipe alerts run alongside the traffic"},
			&cli.DurationFlag{Name: "alerts-wait", Value: 20 * time.Second, Usage: "after the traffic has landed, how long to wait for the live alerts' notifications"},
		},
		Action: runDemo,
	}
}

// demoDatabasePrefix starts the name of every database the demo writes.
const demoDatabasePrefix = "costpipe_demo"

// demoDSN is the demo's ClickHouse when --clickhouse is not given.
const demoDSN = "clickhouse://127.0.0.1:9000/" + demoDatabasePrefix

// runDemo runs the demo; stopped by SIGINT or SIGTERM, whatever it was
// doing (migrating, sending, waiting for notifications), it ends with
// errDemoInterrupted and prints nothing more.
func runDemo(c *cli.Context) error {
	err := demo(c)
	if err != nil && c.Context.Err() != nil {
		return &exitError{code: interruptedStatus(c.Context), msg: errDemoInterrupted.Error()}
	}
	return err
}

func demo(c *cli.Context) error {
	ctx := c.Context
	out := c.App.Writer
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	log, err := logger(c)
	if err != nil {
		return err
	}
	// The aggregator's routine lines would scribble over the progress line.
	aggLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cat, err := loadCatalog(c)
	if err != nil {
		return err
	}
	enc := producers.Encoding(c.String("encoding"))
	if enc != producers.EncodingJSON && enc != producers.EncodingArrow {
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --encoding %q: want json or arrow", enc)}
	}
	// The traffic and the aggregator's flags are checked before anything
	// starts: --reset must not drop the database of a run that cannot go.
	scenario := loadgen.Scenario(c.String("scenario"))
	gopts := loadgen.DefaultOptions()
	gopts.Rate = c.Float64("rate")
	gopts.Duration = c.Duration("duration")
	gopts.Tenants = c.Int("tenants")
	gopts.Seed = c.Uint64("seed")
	gopts.DuplicateRate = 0.002
	gopts.Catalog = cat
	gopts.Scenario = scenario
	if scenario == loadgen.Growth {
		gopts.SimulatedSpan = c.Duration("span")
		gopts.GrowthFactor = c.Float64("growth-factor")
		// One clock for the generator and demoBudget's copy of it: the
		// same span, so the same events.
		genNow := time.Now()
		gopts.Now = func() time.Time { return genNow }
	}
	if err := gopts.Validate(); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	if d := c.Duration("flush-interval"); d < 10*time.Millisecond {
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --flush-interval %s: want at least 10ms", d)}
	}

	// 1. Broker.
	bopts := broker.DefaultOptions()
	bopts.Listen = "127.0.0.1:0"
	bopts.Logger = quiet
	b, err := broker.Start(bopts)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(out, "broker      embedded Kafka protocol on %s (%d partitions)\n", b.Addr(), bopts.Partitions)

	// 2. ClickHouse: a database of the demo's own.
	wopts := warehouse.DefaultOptions()
	wopts.DSN = c.String("clickhouse")
	if !connFlagGiven(c, "clickhouse") {
		wopts.DSN = demoDSN
	}
	dsn := wopts.DSN // before --clickhouse-password-file adds to it
	if err := clickhouseSecurity(c, &wopts); err != nil {
		return err
	}
	octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
	w, err := openWarehouse(octx, log, wopts)
	ocancel()
	if err != nil {
		return fmt.Errorf("%w (make demo starts one; or pass --clickhouse)", err)
	}
	defer w.Close()
	if !strings.HasPrefix(w.Database(), demoDatabasePrefix) {
		return &exitError{code: 2, msg: fmt.Sprintf("the demo lands synthetic traffic, alert state and landing marks: refusing database %q, which may hold real usage; give it a database of its own whose name starts with %s, e.g. --clickhouse clickhouse://HOST:9000/costpipe_demo",
			w.Database(), demoDatabasePrefix)}
	}
	if c.Bool("reset") {
		if err := w.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+w.Database()); err != nil {
			return fmt.Errorf("cannot reset database %s: %w", w.Database(), err)
		}
	}
	if _, err := w.Migrate(ctx); err != nil {
		return err
	}
	ver, _ := w.ServerVersion(ctx)
	fmt.Fprintf(out, "clickhouse  %s, database %s (migrated)\n", ver, w.Database())

	// 3. Aggregator. The growth scenario backdates events across --span:
	// the aggregator must accept them.
	maxAge := usage.DefaultOptions().MaxEventAge
	if scenario == loadgen.Growth {
		maxAge = max(maxAge, c.Duration("span")+24*time.Hour)
	}
	reg := prometheus.NewRegistry()
	popts := usage.DefaultOptions()
	popts.Catalog, popts.Logger, popts.Registerer = cat, aggLog, reg
	popts.MaxEventAge = maxAge
	pipe, err := usage.New(w, popts)
	if err != nil {
		return err
	}
	copts := consumers.DefaultOptions()
	copts.Brokers = []string{b.Addr()}
	copts.Group = "costpipe-demo"
	copts.FlushInterval = c.Duration("flush-interval")
	copts.MaxEventAge = maxAge
	copts.Logger, copts.Registerer = aggLog, reg
	// Synthetic traffic on the embedded broker: a spool of its own, not a
	// directory in the caller's working directory.
	if copts.DLQSpoolDir, err = os.MkdirTemp("", "costpipe-demo-dlq-spool-"); err != nil {
		return err
	}
	defer os.RemoveAll(copts.DLQSpoolDir)
	cons, err := consumers.New(copts, pipe)
	if err != nil {
		return err
	}
	aggCtx, stopAgg := context.WithCancel(context.Background())
	var aggErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); aggErr = cons.Run(aggCtx) }()
	fmt.Fprintf(out, "aggregator  consumer group %s, flush every %s\n", copts.Group, copts.FlushInterval)

	// 4. Traffic through the Go SDK.
	sopts := producers.DefaultOptions()
	sopts.Brokers = []string{b.Addr()}
	sopts.Encoding = enc
	// Back pressure, not drops; the growth scenario's event times go back
	// further than the SDK's default bound (the demo's aggregator takes them).
	sopts.WhenFull, sopts.MaxEventAge, sopts.MaxFuture = producers.Block, 0, 0
	prod, err := producers.New(sopts)
	if err != nil {
		stopAgg()
		wg.Wait()
		return err
	}
	eol := "\n"
	if f, ok := out.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			eol = "" // a terminal: one live line
		}
	}
	// 4a. A live `costpipe alerts run`: a budget the traffic crosses while
	// it runs (90% of what it will spend in the period), and in the growth
	// scenario a growth rule.
	var live *demoLive
	if !c.Bool("no-alerts") {
		now := time.Now()
		// The run's end: the traffic, its landing and the wait for the
		// notifications (a generous bound).
		until := now.Add(gopts.Duration + c.Duration("alerts-wait") + time.Minute)
		period, spend, err := demoBudget(gopts, cat, now, until)
		if err != nil {
			stopAgg()
			wg.Wait()
			return &exitError{code: 2, msg: err.Error()}
		}
		if spend == 0 {
			// Under demoMinSpend in each (a tiny run, or the growth scenario
			// just after midnight on a Monday that starts a month), or the
			// month ends during the run.
			fmt.Fprintln(out, "alerts      not started: too little traffic falls in the current UTC day, week or month, or it ends during the run")
		} else {
			if live, err = startDemoLive(c, dsn, out, eol == "", period, demoBudgetAmount(spend), scenario == loadgen.Growth); err != nil {
				fmt.Fprintf(out, "alerts      not started: %v\n", err)
			} else {
				defer live.stop()
			}
		}
	}
	start := time.Now()
	gopts.Progress = func(s loadgen.Stats) {
		if eol == "" {
			fmt.Fprint(out, "\r")
		}
		fmt.Fprintf(out, "%5.1fs  generated %8d (%6.0f/s)  aggregated %8.0f  duplicates dropped %5.0f  dlq %3.0f  rows landed %6.0f %s",
			time.Since(start).Seconds(), s.Written, s.Rate(), counter(reg, "costpipe_events_in_total"),
			counter(reg, "costpipe_duplicates_total"), counter(reg, "costpipe_dlq_records_total"), histSum(reg, "costpipe_flush_rows"), eol)
	}
	gen, err := loadgen.New(gopts)
	if err != nil {
		stopAgg()
		wg.Wait()
		return &exitError{code: 2, msg: err.Error()}
	}
	fmt.Fprintf(out, "traffic     %.0f events/s for %s, %d tenants, %s records, seed %d, scenario %s\n\n", gopts.Rate, gopts.Duration, gopts.Tenants, enc, gopts.Seed, gopts.Scenario)
	stats, runErr := loadgen.Run(ctx, gen, loadgen.KafkaSink{Producer: prod}, gopts.Rate)
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	prod.Close(cctx)
	ccancel()
	if eol == "" {
		fmt.Fprintln(out)
	}
	if runErr != nil && ctx.Err() == nil {
		stopAgg()
		wg.Wait()
		return runErr
	}

	// 5. Wait until everything sent was aggregated and landed, then stop.
	counts := gen.Counts()
	want := float64(stats.Written - counts.Duplicates)
	deadline := time.Now().Add(60 * time.Second)
	for ctx.Err() == nil && time.Now().Before(deadline) && counter(reg, "costpipe_events_in_total") < want {
		time.Sleep(100 * time.Millisecond)
	}
	stopAgg()
	wg.Wait()
	if aggErr != nil {
		return aggErr
	}
	if ctx.Err() != nil {
		// SIGINT or SIGTERM: what landed stays in the database; the
		// deferred stops end the alerts process and the broker.
		return errDemoInterrupted
	}
	if live != nil {
		// Everything has landed: the next evaluations see it; give the
		// notifications due a few seconds to be delivered.
		all := live.wait(ctx, c.Duration("alerts-wait"))
		live.stop()
		if ctx.Err() != nil {
			return errDemoInterrupted
		}
		live.report(all)
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "sent %d events (%d duplicates re-sent on purpose, %d errors, %d for unpriced models); aggregated %.0f, dropped %.0f duplicates\n\n",
		stats.Written, counts.Duplicates, counts.Errors, counts.Unpriced, counter(reg, "costpipe_events_in_total"), counter(reg, "costpipe_duplicates_total"))

	// 6. Report, through the same query layer as `costpipe query`.
	from := start.Add(-time.Hour)
	if scenario == loadgen.Growth {
		from = start.Add(-c.Duration("span") - time.Hour)
	}
	if err := demoReport(ctx, out, analytics.New(w, querierOptions(c)), from, time.Now().Add(time.Hour)); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nExplore further (while this ClickHouse runs):")
	for _, l := range exploreCommands(os.Args[0], wopts.DSN) {
		fmt.Fprintln(out, "  "+l)
	}
	return nil
}

// errDemoInterrupted ends a demo stopped by SIGINT or SIGTERM before its
// report; runDemo gives it the shell's status of a command that signal
// ended (130 for Ctrl-C, 143 for SIGTERM).
var errDemoInterrupted = errors.New("demo interrupted: what landed stays in the demo's database")

// exploreCommands are the demo's closing suggestions: query commands that
// work as printed, the program as it was invoked, against the database the
// demo filled. A password in the DSN is left out (a command line is
// visible to every user of the machine), with a hint to add it.
func exploreCommands(prog, dsn string) []string {
	hint := ""
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.User(u.User.Username())
			dsn, hint = u.String(), "   # add --clickhouse-password-file FILE"
		}
	}
	base := shellQuote(prog) + " --clickhouse " + shellQuote(dsn) + " query "
	return []string{
		base + "usage --since 2h --by tenant,model" + hint,
		base + "growth --by model" + hint,
		base + "forecast --by tenant --budget 1000" + hint,
	}
}

// shellQuote is s as one word of a POSIX shell: as it is when it holds
// only characters no shell treats specially, else in single quotes.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func demoReport(ctx context.Context, out io.Writer, q *analytics.Querier, from, to time.Time) error {
	total, err := q.Totals(ctx, from, to)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "TOTAL  cost $%.4f  requests %d  errors %d  input tokens %d (cached %d)  output tokens %d (reasoning %d)\n\n",
		total.CostUSD.Float64(), total.Requests, total.Errors, total.InputTokens, total.CachedInputTokens, total.OutputTokens, total.ReasoningTokens)
	for _, by := range []analytics.Dim{analytics.DimModel, analytics.DimTenant} {
		dims := []analytics.Dim{by}
		if by == analytics.DimModel {
			dims = []analytics.Dim{analytics.DimProvider, analytics.DimModel}
		}
		rows, err := q.Usage(ctx, analytics.UsageQuery{From: from, To: to, By: dims})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "BY %s\n", strings.ToUpper(string(by)))
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "\tCOST_USD\tREQUESTS\tERR%\tIN_TOKENS\tOUT_TOKENS\tP50_MS\tP99_MS\tTTFT_P50\tUNPRICED\t")
		for _, r := range rows {
			name := r.Group[by]
			if by == analytics.DimModel {
				name = r.Group[analytics.DimProvider] + "/" + name
			}
			errPct := 0.0
			if r.Requests > 0 {
				errPct = 100 * float64(r.Errors) / float64(r.Requests)
			}
			fmt.Fprintf(tw, "%s\t%.4f\t%d\t%.1f\t%d\t%d\t%s\t%s\t%s\t%d\t\n", name, r.CostUSD.Float64(), r.Requests, errPct,
				r.InputTokens, r.OutputTokens, ms(r.Latency.P50, r.Latency.Present()), ms(r.Latency.P99, r.Latency.Present()),
				ms(r.TTFT.P50, r.TTFT.Present()), r.UnpricedRequests)
		}
		tw.Flush()
		fmt.Fprintln(out)
	}
	rows, err := q.Usage(ctx, analytics.UsageQuery{From: from, To: to, By: []analytics.Dim{analytics.DimProvider, analytics.DimModel}})
	if err != nil {
		return err
	}
	var unpriced []string
	for _, r := range rows {
		if r.UnpricedRequests > 0 {
			unpriced = append(unpriced, fmt.Sprintf("%s/%s (%d calls)", r.Group[analytics.DimProvider], r.Group[analytics.DimModel], r.UnpricedRequests))
		}
	}
	sort.Strings(unpriced)
	if len(unpriced) > 0 {
		fmt.Fprintf(out, "UNPRICED models (cost counted as 0; add them to a --prices catalog): %s\n", strings.Join(unpriced, ", "))
	}
	if err := demoTrends(ctx, out, q); err != nil {
		return err
	}
	return demoAlerts(ctx, out, q, from, to)
}

// demoTrends prints the growth of the five most expensive models and the
// month-end forecast of the total cost.
func demoTrends(ctx context.Context, out io.Writer, q *analytics.Querier) error {
	rows, err := q.Growth(ctx, analytics.GrowthQuery{By: []analytics.Dim{analytics.DimModel}})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\nGROWTH BY MODEL (cost per UTC day, 28-day trend)")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tLAST 7D\tWOW\tCMGR\tDOUBLING\tLAST 28 DAYS\t")
	for i := range rows[:min(5, len(rows))] {
		r := &rows[i]
		doubling := "-"
		if r.DoublingDays != nil {
			doubling = fmt.Sprintf("%.1f d", *r.DoublingDays)
		} else if r.Note != "" {
			doubling = "(too little data)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Group[analytics.DimModel], dollars(r.Last7d),
			render.Cell(render.OptFloat(r.WoWPct), render.UnitPercent), render.Cell(render.OptFloat(r.CMGRPct), render.UnitPercent),
			doubling, render.Sparkline(r.Daily[max(0, len(r.Daily)-28):]))
	}
	tw.Flush()
	fc, err := q.Forecast(ctx, analytics.ForecastQuery{})
	if err != nil {
		return err
	}
	if len(fc) == 1 && fc[0].P50 != nil {
		f := &fc[0]
		fmt.Fprintf(out, "\nMONTH-END FORECAST (%s … %s): so far $%s, p50 %s, p10–p90 %s … %s (%s, backtest MASE %s)\n",
			f.PeriodStart.Format(time.DateOnly), f.PeriodEnd.AddDate(0, 0, -1).Format(time.DateOnly), render.USD(f.SoFarCost),
			dollars(f.P50), dollars(f.P10), dollars(f.P90), f.Method, render.Cell(render.OptFloat(f.MASE), render.UnitRatio))
	}
	return nil
}

// dollars is an amount of USD for people, "$1,234.57"; "-" for nil.
func dollars(v *float64) string {
	if v == nil {
		return "-"
	}
	return "$" + render.Cell(render.Float(*v), render.UnitUSD)
}

func ms(v float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

// counter sums the samples of a counter family in reg (0 when absent).
func counter(reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// histSum is the sum of observations of a histogram family (for
// costpipe_flush_rows: rows landed).
func histSum(reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			var h *dto.Histogram = mf.GetMetric()[0].GetHistogram()
			return h.GetSampleSum()
		}
	}
	return 0
}
