package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/internal/hugeheap"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/render"
	"github.com/costpipe/costpipe/report"
	"github.com/costpipe/costpipe/warehouse"
)

func queryCommand() *cli.Command {
	return withCmdline(&cli.Command{
		Name:  "query",
		Usage: "read usage, cost and latency percentiles from the ClickHouse rollups",
		Before: func(*cli.Context) error {
			lazyGC()
			hugeheap.Advise() // a short command: the heap it touches on huge pages
			return nil
		},
		Subcommands: []*cli.Command{
			queryUsageCommand(),
			queryLatencyCommand(),
			queryTopCommand(),
			querySeriesCommand(),
			queryGrowthCommand(),
			queryForecastCommand(),
		},
	})
}

// lazyGC lets a command that answers once and exits (the query commands)
// grow its heap to three times what is live before collecting instead of
// twice (GOGC=200 instead of 100), unless GOGC is set. A 30-day question
// allocates about 4 MiB, right at the default's first collection: at 100
// half of its runs collected once (about 200 more page faults, 2–3 ms of
// CPU here), at 200 none of them did; 400 bought nothing more and would
// let a query of two million step rows peak at five times its live heap.
func lazyGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
}

// rangeFlags are the flags of a time range, shared by query usage,
// latency, top and series; since is --since's default.
func rangeFlags(since string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "from", EnvVars: []string{"COSTPIPE_QUERY_FROM"},
			Usage: "inclusive start `TIME`: RFC 3339 (2026-01-02T15:04:05Z) or a UTC date (2026-01-02); excludes --since"},
		&cli.StringFlag{Name: "to", EnvVars: []string{"COSTPIPE_QUERY_TO"},
			Usage: "exclusive end `TIME`: RFC 3339 or a UTC date (default: now)"},
		&cli.StringFlag{Name: "since", Value: since, EnvVars: []string{"COSTPIPE_QUERY_SINCE"},
			Usage: "range length ending at --to, a Go `DURATION` (90m, 24h) or days (7d); excludes --from"},
	}
}

// groupFlags are --by and --where.
func groupFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "by", EnvVars: []string{"COSTPIPE_QUERY_BY"},
			Usage: "comma-separated `DIMENSIONS` to group by: tenant, application, provider, model, error_type, service_tier, context_band"},
		&cli.GenericFlag{Name: "where", Value: &whereFlag{}, EnvVars: []string{"COSTPIPE_QUERY_WHERE"},
			Usage: "keep rows with `DIM=VALUE` (repeatable: same dimension = OR, different = AND; a value may hold commas, so the environment variable holds one condition, which conditions on the command line replace)"},
	}
}

// formatFlag is --format.
func formatFlag() cli.Flag {
	return &cli.StringFlag{Name: "format", Value: "table", EnvVars: []string{"COSTPIPE_QUERY_FORMAT"},
		Usage: "output `FORMAT`: table, json, csv or arrow (an Arrow IPC stream, cost as decimal128(38,12))"}
}

func queryUsageCommand() *cli.Command {
	return &cli.Command{
		Name:  "usage",
		Usage: "usage, cost and latency per group over a time range",
		Description: `Sums the rollups over the half-open range [--from, --to) (or the last --since),
its bounds rounded up to whole minutes as the rollups hold them (the range
printed is the one counted), and prints one row per group of --by dimensions, most expensive first: calls,
errors, tokens, GPU time, exact cost in USD, unpriced calls, and latency and TTFT
percentiles (within 1%) merged from the stored histograms.

Dimensions: tenant, application, provider, model, error_type (empty for
successful calls), service_tier (empty for the standard tier) and context_band
(the long-context band of the calls' input tokens: 0, 128000, 200000, …).
--where DIM=VALUE keeps only matching rows; repeat it to allow several values of
one dimension (OR) or to filter several dimensions (AND).

What-if pricing: --reprice FILE prices every group's stored token, GPU and
request sums with the catalog FILE instead (a price cut, a negotiated discount;
--map-model OLD=NEW prices OLD's calls as NEW's), exactly: calls are kept apart
by tenant, provider, model, service tier and long-context band, so each is priced
at the rates FILE gives it, and a price change inside the range splits it.
cost_usd and unpriced_requests are then the re-priced ones; --compare adds
stored_cost_usd, stored_unpriced_requests and delta_usd beside them. (--prices
is the catalog the aggregator prices with; it plays no part here.)

Examples:
  costpipe query usage --since 168h --by tenant,model
  costpipe query usage --from 2026-01-01 --to 2026-02-01 --by model --format csv
  costpipe query usage --where tenant=acme --where tenant=globex --format json
  costpipe query usage --since 30d --by model,service_tier --reprice negotiated.yaml --compare
  costpipe query usage --since 30d --where tenant=acme --reprice default --map-model gpt-4o=gpt-4.1-mini

Exit status: 0 success (also when nothing matched), 1 query failed, 2 usage error.`,
		Flags: append(append(rangeFlags("24h"), groupFlags()...),
			formatFlag(),
			&cli.StringFlag{Name: "reprice", EnvVars: []string{"COSTPIPE_QUERY_REPRICE"},
				Usage: "price the usage with the catalog `FILE` instead (what-if pricing; \"default\" is the embedded catalog)"},
			&cli.BoolFlag{Name: "compare", EnvVars: []string{"COSTPIPE_QUERY_COMPARE"},
				Usage: "with --reprice: also show the stored cost and the difference"},
			&cli.StringSliceFlag{Name: "map-model", EnvVars: []string{"COSTPIPE_QUERY_MAP_MODEL"},
				Usage: "with --reprice: price the calls of model OLD as calls of model NEW, `OLD=NEW` (repeatable)"},
			granularityFlag(),
		),
		Action: runQueryUsage,
	}
}

// granularityFlag is --granularity.
func granularityFlag() cli.Flag {
	return &cli.StringFlag{Name: "granularity", Value: "auto", EnvVars: []string{"COSTPIPE_QUERY_GRANULARITY"},
		Usage: "rollup tables to read, `G`: auto (the coarsest that fits each part of the range), minute, hour or day (hour and day need --from and --to on whole hours or days, UTC)"}
}

// whereFlag collects repeated --where DIM=VALUE flags; report.ParseByWhere
// validates them.
type whereFlag struct {
	raw []string
	env int // how many of raw its environment variable set (cmdlineFlag)
}

// Set records one condition.
func (w *whereFlag) Set(s string) error {
	w.raw = append(w.raw, s)
	return nil
}

// String renders the conditions, for help output.
func (w *whereFlag) String() string {
	if w == nil {
		return ""
	}
	return strings.Join(w.raw, " ")
}

// fromEnvironment marks the conditions recorded so far as its environment
// variable's: conditions given on the command line replace them.
func (w *whereFlag) fromEnvironment() { w.env = len(w.raw) }

// conditions are the command line's conditions, or the environment
// variable's when the command line gives none.
func (w *whereFlag) conditions() []string {
	if len(w.raw) > w.env {
		return w.raw[w.env:]
	}
	return w.raw
}

// cmdlineFlag tells which flags of a command were given on its command
// line rather than by their environment variable, which urfave/cli's IsSet
// does not: a flag typed wins over its own variable and over the variable
// of a flag it excludes (rivalFlags), as docs/contracts.md says. It comes
// after a command's own flags, hidden: its Apply, called after theirs
// (once their variables are read, before the command line is parsed),
// keeps the command's flag set, whose Visit then lists the flags given on
// the command line, and tells the flags that collect repeated values
// (whereFlag) that what they hold so far came from the environment.
type cmdlineFlag struct{ set *flag.FlagSet }

// Apply keeps set and marks the values the environment gave.
func (f *cmdlineFlag) Apply(set *flag.FlagSet) error {
	f.set = set
	set.VisitAll(func(fl *flag.Flag) {
		if e, ok := fl.Value.(interface{ fromEnvironment() }); ok {
			e.fromEnvironment()
		}
	})
	return nil
}

// Names is empty: the flag cannot be given.
func (f *cmdlineFlag) Names() []string { return nil }

// IsSet is false: the flag cannot be given.
func (f *cmdlineFlag) IsSet() bool { return false }

// String is empty: the flag is not shown in help.
func (f *cmdlineFlag) String() string { return "" }

// withCmdline appends a cmdlineFlag to cmd's flags and its subcommands'.
func withCmdline(cmd *cli.Command) *cli.Command {
	cmd.Flags = append(cmd.Flags, &cmdlineFlag{})
	for _, sc := range cmd.Subcommands {
		withCmdline(sc)
	}
	return cmd
}

// onCommandLine reports whether flag name was given on c's command line
// (false for a command without a cmdlineFlag).
func onCommandLine(c *cli.Context, name string) bool {
	given := false
	for _, f := range c.Command.Flags {
		if cf, ok := f.(*cmdlineFlag); ok && cf.set != nil {
			cf.set.Visit(func(fl *flag.Flag) { given = given || fl.Name == name })
		}
	}
	return given
}

// rivalFlags are the query flags that exclude each other: one set by its
// environment variable alone gives way to the other given on the command
// line (COSTPIPE_QUERY_SINCE=7d in a profile, then --from typed: --from).
var rivalFlags = map[string]string{"from": "since", "since": "from", "period": "horizon", "horizon": "period"}

// flagParams are a command's flags as report parameters.
type flagParams struct{ c *cli.Context }

// Value returns the flag's value as text ("" for a flag the command lacks
// or one that yields to its rival).
func (f flagParams) Value(name string) string {
	if name == "where" || f.yields(name) {
		return ""
	}
	switch v := f.c.Value(name).(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

// Values returns every --where.
func (f flagParams) Values(name string) []string {
	if wf, ok := f.c.Generic(name).(*whereFlag); ok {
		return wf.conditions()
	}
	return nil
}

// IsSet reports whether the flag was given (or set from the environment),
// false for one that yields to its rival.
func (f flagParams) IsSet(name string) bool { return f.c.IsSet(name) && !f.yields(name) }

// yields reports whether flag name, set by its environment variable alone,
// gives way to its rival (rivalFlags) given on the command line.
func (f flagParams) yields(name string) bool {
	if name == "budget" {
		// A budget applies to a period or a horizon of days: its variable
		// gives way to a horizon of hours typed (--horizon 24h).
		return !onCommandLine(f.c, name) && onCommandLine(f.c, "horizon") && strings.HasSuffix(f.c.String("horizon"), "h")
	}
	r, ok := rivalFlags[name]
	return ok && !onCommandLine(f.c, name) && onCommandLine(f.c, r)
}

// Name is "--" + name.
func (f flagParams) Name(name string) string { return "--" + name }

func runQueryUsage(c *cli.Context) error {
	return runReport(c, func(c *cli.Context) (report.Usage, render.Format, error) { return parseUsageFlags(c, time.Now()) },
		func(ctx context.Context, q *analytics.Querier, req report.Usage, f render.Format) (*render.Table, error) {
			return report.UsageTable(ctx, q, req, f == render.FormatTable)
		})
}

// runReport is the body of every query subcommand: parse the request and
// --format from the flags (an error is a usage error, exit status 2), open
// the querier, build the table (an error fails the query, status 1, with
// the migrate hint; an *exitError keeps its status) and write it.
func runReport[R any](c *cli.Context, parse func(*cli.Context) (R, render.Format, error),
	table func(context.Context, *analytics.Querier, R, render.Format) (*render.Table, error)) error {
	req, format, err := parse(c)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	w, q, err := openQuerier(c)
	if err != nil {
		return err
	}
	defer w.Close()
	t, err := table(c.Context, q, req, format)
	if err != nil {
		if ee := (*exitError)(nil); errors.As(err, &ee) {
			return err
		}
		if ue := questionFault(err); ue != nil {
			return ue
		}
		return migrateHint(err, w)
	}
	return writeReport(c, format, t)
}

// questionFault is the usage error (exit status 2) of a question that only
// answering it finds wrong, saying which flag to change, or nil for any
// other error: a fixed --granularity the range does not fit, rows that
// retention dropped read at one granularity or step, too many groups or
// steps. serve answers the same questions 400.
func questionFault(err error) *exitError {
	var de *analytics.DroppedError
	switch {
	case errors.As(err, &de):
		return &exitError{code: 2, msg: de.Error()} // it says what to ask instead
	case errors.Is(err, analytics.ErrGranularity):
		return &exitError{code: 2, msg: "invalid --granularity: " + analytics.GranularityCause(err).Error() +
			": give --from and --to on whole hours or days, or leave --granularity at auto"}
	case errors.Is(err, analytics.ErrTooManyGroups):
		return &exitError{code: 2, msg: err.Error() + " (--by, --where)"}
	case errors.Is(err, analytics.ErrTooManySteps):
		return &exitError{code: 2, msg: err.Error()} // it names the step and range
	}
	return nil
}

// fromFlags is a parser of runReport: the report request as parse reads it
// from the flags, now, and --format.
func fromFlags[R any](parse func(report.Params, time.Time) (R, error)) func(*cli.Context) (R, render.Format, error) {
	return withFormat(func(c *cli.Context) (R, error) { return parse(flagParams{c}, time.Now()) })
}

// tableOf is a table builder of runReport that does not depend on --format.
func tableOf[R any](table func(context.Context, *analytics.Querier, R) (*render.Table, error)) func(context.Context, *analytics.Querier, R, render.Format) (*render.Table, error) {
	return func(ctx context.Context, q *analytics.Querier, req R, _ render.Format) (*render.Table, error) {
		return table(ctx, q, req)
	}
}

// withFormat adds --format to a parser of the request alone, refusing
// arguments.
func withFormat[R any](parse func(*cli.Context) (R, error)) func(*cli.Context) (R, render.Format, error) {
	return func(c *cli.Context) (R, render.Format, error) {
		var zero R
		if c.NArg() > 0 {
			return zero, "", fmt.Errorf("query %s takes no arguments, got %q", c.Command.Name, c.Args().First())
		}
		format, err := parseFormat(c)
		if err != nil {
			return zero, "", err
		}
		req, err := parse(c)
		return req, format, err
	}
}

// openQuerier opens the warehouse of --clickhouse and a querier on it.
func openQuerier(c *cli.Context) (*warehouse.Warehouse, *analytics.Querier, error) {
	opts := warehouse.DefaultOptions()
	opts.DSN = c.String("clickhouse")
	if err := clickhouseSecurity(c, &opts); err != nil {
		return nil, nil, err
	}
	w, err := warehouse.Open(c.Context, opts)
	if err != nil {
		return nil, nil, err
	}
	return w, analytics.New(w, querierOptions(c)), nil
}

// querierOptions are analytics' defaults with the command's logger
// (--log-level), which the per-model summaries' warnings go to.
func querierOptions(c *cli.Context) analytics.Options {
	o := analytics.DefaultOptions()
	if l, err := logger(c); err == nil {
		o.Logger = l
	}
	return o
}

// migrateHint adds a hint to an error about a missing table.
func migrateHint(err error, w *warehouse.Warehouse) error {
	if strings.Contains(err.Error(), "doesn't exist") {
		return fmt.Errorf("%w (has `costpipe migrate` run on database %s?)", err, w.Database())
	}
	return err
}

// writeReport writes t to the command's output in format f.
func writeReport(c *cli.Context, f render.Format, t *render.Table) error {
	out := bufio.NewWriter(c.App.Writer)
	if err := render.Write(out, f, t); err != nil {
		return err
	}
	return out.Flush()
}

// parseFormat reads --format.
func parseFormat(c *cli.Context) (render.Format, error) {
	f, err := render.ParseFormat(c.String("format"))
	if err != nil {
		return "", fmt.Errorf("invalid --format %q: want table, json, csv or arrow", c.String("format"))
	}
	return f, nil
}

// parseQueryFlags reads the flags query usage, latency, top and series
// share: no arguments and --format; report.ParseUsage reads the range,
// --granularity (auto when the command has none), --by and --where.
func parseQueryFlags(c *cli.Context, now time.Time) (report.Usage, render.Format, error) {
	if c.NArg() > 0 {
		return report.Usage{}, "", fmt.Errorf("query %s takes no arguments, got %q", c.Command.Name, c.Args().First())
	}
	format, err := parseFormat(c)
	if err != nil {
		return report.Usage{}, "", err
	}
	req, err := report.ParseUsage(flagParams{c}, now)
	return req, format, err
}

// parseUsageFlags validates the flags of query usage; now anchors --since.
func parseUsageFlags(c *cli.Context, now time.Time) (report.Usage, render.Format, error) {
	req, format, err := parseQueryFlags(c, now)
	if err != nil {
		return req, format, err
	}
	req.Compare = c.Bool("compare")
	if maps := c.StringSlice("map-model"); len(maps) > 0 {
		if c.String("reprice") == "" {
			return req, format, fmt.Errorf("--map-model needs --reprice (the catalog to price the mapped calls with)")
		}
		req.Query.MapModel = map[string]string{}
		for _, m := range maps {
			from, to, ok := strings.Cut(m, "=")
			if !ok || from == "" || to == "" {
				return req, format, fmt.Errorf("invalid --map-model %q: want OLD=NEW (model names)", m)
			}
			if prev, dup := req.Query.MapModel[from]; dup && prev != to {
				return req, format, fmt.Errorf("invalid --map-model %q: %s is already mapped to %s", m, from, prev)
			}
			req.Query.MapModel[from] = to
		}
	}
	if req.Compare && c.String("reprice") == "" {
		return req, format, fmt.Errorf("--compare needs --reprice (the catalog to compare the stored cost with)")
	}
	if path := c.String("reprice"); path != "" {
		if path == "default" {
			req.Query.Reprice = pricing.Default()
		} else if req.Query.Reprice, err = pricing.Load(path); err != nil {
			return req, format, fmt.Errorf("invalid --reprice:\n%w", err)
		}
	}
	return req, format, nil
}

// parseByWhere reads --by and --where.
func parseByWhere(c *cli.Context) (by []analytics.Dim, where map[analytics.Dim][]string, conds []render.Filter, err error) {
	return report.ParseByWhere(flagParams{c})
}

// parseSince accepts a positive Go duration or a whole number of days ("7d").
func parseSince(s string) (time.Duration, error) { return report.ParseSince(s) }

// parseTime accepts RFC 3339 (fraction optional) or a date, taken as UTC
// midnight.
func parseTime(s string) (time.Time, error) { return report.ParseTime(s) }
