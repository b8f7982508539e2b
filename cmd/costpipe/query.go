package main

import (
	"bufio"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/render"
	"github.com/costpipe/costpipe/warehouse"
)

func queryCommand() *cli.Command {
	return &cli.Command{
		Name:  "query",
		Usage: "read usage, cost and latency percentiles from the ClickHouse rollups",
		Subcommands: []*cli.Command{
			queryUsageCommand(),
			queryLatencyCommand(),
			queryTopCommand(),
			querySeriesCommand(),
			queryGrowthCommand(),
			queryForecastCommand(),
		},
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
			Usage: "keep rows with `DIM=VALUE` (repeatable: same dimension = OR, different = AND)"},
	}
}

// formatFlag is --format.
func formatFlag() cli.Flag {
	return &cli.StringFlag{Name: "format", Value: "table", EnvVars: []string{"COSTPIPE_QUERY_FORMAT"},
		Usage: "output `FORMAT`: table, json, csv or arrow (an Arrow IPC stream, cost as decimal128(38,12))"}
}

// usageError turns a flag error of the query subcommand name into exit
// status 2 with a pointer to its help.
func usageError(name string) cli.OnUsageErrorFunc {
	return func(_ *cli.Context, err error, _ bool) error {
		return &exitError{code: 2, msg: err.Error() + " (see costpipe query " + name + " --help)"}
	}
}

func queryUsageCommand() *cli.Command {
	return &cli.Command{
		Name:  "usage",
		Usage: "usage, cost and latency per group over a time range",
		Description: `Sums the rollups over the half-open range [--from, --to) (or the last --since)
and prints one row per group of --by dimensions, most expensive first: calls,
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
		Action:       runQueryUsage,
		OnUsageError: usageError("usage"),
	}
}

// granularityFlag is --granularity.
func granularityFlag() cli.Flag {
	return &cli.StringFlag{Name: "granularity", Value: "auto", EnvVars: []string{"COSTPIPE_QUERY_GRANULARITY"},
		Usage: "rollup tables to read, `G`: auto (the coarsest that fits each part of the range), minute, hour or day"}
}

// whereFlag collects repeated --where DIM=VALUE flags; parseByWhere
// validates them.
type whereFlag struct {
	raw []string
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

// parseWhere parses DIM=VALUE.
func parseWhere(s string) (render.Filter, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return render.Filter{}, fmt.Errorf("invalid --where %q: want DIMENSION=VALUE, e.g. tenant=acme", s)
	}
	d, err := analytics.ParseDim(strings.TrimSpace(name))
	if err != nil {
		return render.Filter{}, fmt.Errorf("invalid --where %q: %w", s, err)
	}
	return render.Filter{Dim: d, Value: value}, nil
}

// usageRequest is the parsed command line of query usage (and of query
// latency, top and series, which read its range, --by and --where).
type usageRequest struct {
	query   analytics.UsageQuery
	format  render.Format
	where   []render.Filter
	compare bool
}

// scope is what the request covers, for titles.
func (r *usageRequest) scope() render.Scope {
	return render.Scope{From: r.query.From, To: r.query.To, By: r.query.By, Where: r.where}
}

// swapRepriced makes the re-priced cost the rows' cost: CostUSD and
// UnpricedRequests take the re-priced values, and Reprice then holds the
// stored ones (kept only with --compare, for the stored_* fields).
func swapRepriced(rows []analytics.UsageRow, compare bool) {
	for i := range rows {
		r := &rows[i]
		if r.Reprice == nil {
			continue
		}
		stored := analytics.Repriced{CostUSD: r.CostUSD, UnpricedRequests: r.UnpricedRequests}
		r.CostUSD, r.UnpricedRequests = r.Reprice.CostUSD, r.Reprice.UnpricedRequests
		r.Reprice = nil
		if compare {
			r.Reprice = &stored
		}
	}
}

func runQueryUsage(c *cli.Context) error {
	req, err := parseUsageFlags(c, time.Now())
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	w, q, err := openQuerier(c)
	if err != nil {
		return err
	}
	defer w.Close()
	rows, err := q.Usage(c.Context, req.query)
	if err != nil {
		return migrateHint(err, w)
	}
	if req.query.Reprice != nil {
		swapRepriced(rows, req.compare)
		// Most expensive first, by the re-priced cost.
		slices.SortStableFunc(rows, func(a, b analytics.UsageRow) int { return b.CostUSD.Cmp(a.CostUSD) })
	}
	report := render.UsageReport{Scope: req.scope(), Rows: rows, Compare: req.compare}
	if req.query.Reprice != nil {
		report.RepricedWith = req.query.Reprice.Name()
	}
	if req.format == render.FormatTable && len(rows) > 1 {
		if report.Total, err = queryTotal(c, q, req); err != nil {
			return err
		}
	}
	return writeReport(c, req.format, render.Usage(report))
}

// queryTotal is the usage of every group of req (re-priced as req asks),
// for the TOTAL line of a table; nil when nothing matched.
func queryTotal(c *cli.Context, q *analytics.Querier, req usageRequest) (*analytics.UsageRow, error) {
	tq := req.query
	tq.By = nil
	t, err := q.Usage(c.Context, tq)
	if err != nil || len(t) != 1 {
		return nil, err
	}
	swapRepriced(t, req.compare)
	return &t[0], nil
}

// openQuerier opens the warehouse of --clickhouse and a querier on it.
func openQuerier(c *cli.Context) (*warehouse.Warehouse, *analytics.Querier, error) {
	opts := warehouse.DefaultOptions()
	opts.DSN = c.String("clickhouse")
	w, err := warehouse.Open(c.Context, opts)
	if err != nil {
		return nil, nil, err
	}
	return w, analytics.New(w, analytics.DefaultOptions()), nil
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
// share: no arguments, --format, --granularity (auto when the command has
// none), the range and --by and --where; now anchors --since.
func parseQueryFlags(c *cli.Context, now time.Time) (usageRequest, error) {
	var req usageRequest
	if c.NArg() > 0 {
		return req, fmt.Errorf("query %s takes no arguments, got %q", c.Command.Name, c.Args().First())
	}
	var err error
	if req.format, err = parseFormat(c); err != nil {
		return req, err
	}
	if req.query.Granularity, err = analytics.ParseGranularity(c.String("granularity")); err != nil {
		return req, fmt.Errorf("invalid --granularity: %w", err)
	}
	if req.query.From, req.query.To, err = parseRange(c, now); err != nil {
		return req, err
	}
	req.query.By, req.query.Where, req.where, err = parseByWhere(c)
	return req, err
}

// parseUsageFlags validates the flags of query usage; now anchors --since.
func parseUsageFlags(c *cli.Context, now time.Time) (usageRequest, error) {
	req, err := parseQueryFlags(c, now)
	if err != nil {
		return req, err
	}
	req.compare = c.Bool("compare")
	if maps := c.StringSlice("map-model"); len(maps) > 0 {
		if c.String("reprice") == "" {
			return req, fmt.Errorf("--map-model needs --reprice (the catalog to price the mapped calls with)")
		}
		req.query.MapModel = map[string]string{}
		for _, m := range maps {
			from, to, ok := strings.Cut(m, "=")
			if !ok || from == "" || to == "" {
				return req, fmt.Errorf("invalid --map-model %q: want OLD=NEW (model names)", m)
			}
			req.query.MapModel[from] = to
		}
	}
	if req.compare && c.String("reprice") == "" {
		return req, fmt.Errorf("--compare needs --reprice (the catalog to compare the stored cost with)")
	}
	if path := c.String("reprice"); path != "" {
		if path == "default" {
			req.query.Reprice = pricing.Default()
		} else if req.query.Reprice, err = pricing.Load(path); err != nil {
			return req, fmt.Errorf("invalid --reprice:\n%w", err)
		}
	}
	return req, nil
}

// parseRange reads --from, --to and --since; now anchors --since.
func parseRange(c *cli.Context, now time.Time) (from, to time.Time, err error) {
	to = now.UTC()
	if s := c.String("to"); s != "" {
		if to, err = parseTime(s); err != nil {
			return from, to, fmt.Errorf("invalid --to: %w", err)
		}
	}
	if s := c.String("from"); s != "" {
		if c.IsSet("since") {
			return from, to, fmt.Errorf("--from and --since are mutually exclusive: give a range with --from/--to or a length with --since")
		}
		if from, err = parseTime(s); err != nil {
			return from, to, fmt.Errorf("invalid --from: %w", err)
		}
	} else {
		d, err := parseSince(c.String("since"))
		if err != nil {
			return from, to, err
		}
		from = to.Add(-d)
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("empty range: --from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from, to, nil
}

// parseByWhere reads --by and --where.
func parseByWhere(c *cli.Context) (by []analytics.Dim, where map[analytics.Dim][]string, conds []render.Filter, err error) {
	seen := map[analytics.Dim]bool{}
	for _, s := range strings.Split(c.String("by"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		d, err := analytics.ParseDim(s)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("invalid --by dimension %q: want tenant, application, provider, model, error_type, service_tier or context_band", s)
		}
		if seen[d] {
			return nil, nil, nil, fmt.Errorf("invalid --by: dimension %q given twice", s)
		}
		seen[d] = true
		by = append(by, d)
	}
	if wf, ok := c.Generic("where").(*whereFlag); ok && len(wf.raw) > 0 {
		where = map[analytics.Dim][]string{}
		for _, s := range wf.raw {
			cond, err := parseWhere(s)
			if err != nil {
				return nil, nil, nil, err
			}
			conds = append(conds, cond)
			where[cond.Dim] = append(where[cond.Dim], cond.Value)
		}
	}
	return by, where, conds, nil
}

// parseTime accepts RFC 3339 (fraction optional) or a date, taken as UTC
// midnight.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q: want RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02)", s)
}

// parseSince accepts a positive Go duration or a whole number of days ("7d").
func parseSince(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("invalid --since %q: want a duration such as 90m, 24h or 7d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("invalid --since %q: want a duration such as 90m, 24h or 7d", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("invalid --since %q: must be positive", s)
	}
	return d, nil
}
