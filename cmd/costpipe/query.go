package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

func queryCommand() *cli.Command {
	return &cli.Command{
		Name:  "query",
		Usage: "read usage, cost and latency percentiles from the ClickHouse rollups",
		Subcommands: []*cli.Command{
			queryUsageCommand(),
			queryGrowthCommand(),
			queryForecastCommand(),
		},
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
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", EnvVars: []string{"COSTPIPE_QUERY_FROM"},
				Usage: "inclusive start `TIME`: RFC 3339 (2026-01-02T15:04:05Z) or a UTC date (2026-01-02); excludes --since"},
			&cli.StringFlag{Name: "to", EnvVars: []string{"COSTPIPE_QUERY_TO"},
				Usage: "exclusive end `TIME`: RFC 3339 or a UTC date (default: now)"},
			&cli.StringFlag{Name: "since", Value: "24h", EnvVars: []string{"COSTPIPE_QUERY_SINCE"},
				Usage: "range length ending at --to, a Go `DURATION` (90m, 24h) or days (7d); excludes --from"},
			&cli.StringFlag{Name: "by", EnvVars: []string{"COSTPIPE_QUERY_BY"},
				Usage: "comma-separated `DIMENSIONS` to group by: tenant, application, provider, model, error_type"},
			&cli.GenericFlag{Name: "where", Value: &whereFlag{}, EnvVars: []string{"COSTPIPE_QUERY_WHERE"},
				Usage: "keep rows with `DIM=VALUE` (repeatable: same dimension = OR, different = AND)"},
			&cli.StringFlag{Name: "format", Value: "table", EnvVars: []string{"COSTPIPE_QUERY_FORMAT"},
				Usage: "output `FORMAT`: table, json, csv or arrow (an Arrow IPC stream, cost as decimal128(38,12))"},
			&cli.StringFlag{Name: "reprice", EnvVars: []string{"COSTPIPE_QUERY_REPRICE"},
				Usage: "price the usage with the catalog `FILE` instead (what-if pricing; \"default\" is the embedded catalog)"},
			&cli.BoolFlag{Name: "compare", EnvVars: []string{"COSTPIPE_QUERY_COMPARE"},
				Usage: "with --reprice: also show the stored cost and the difference"},
			&cli.StringSliceFlag{Name: "map-model", EnvVars: []string{"COSTPIPE_QUERY_MAP_MODEL"},
				Usage: "with --reprice: price the calls of model OLD as calls of model NEW, `OLD=NEW` (repeatable)"},
			&cli.StringFlag{Name: "granularity", Value: "auto", EnvVars: []string{"COSTPIPE_QUERY_GRANULARITY"},
				Usage: "rollup tables to read, `G`: auto (the coarsest that fits each part of the range), minute, hour or day"},
		},
		Action: runQueryUsage,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &exitError{code: 2, msg: err.Error() + " (see costpipe query usage --help)"}
		},
	}
}

// whereFlag collects repeated --where DIM=VALUE flags; parseUsageFlags
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

// whereCond is one parsed --where.
type whereCond struct {
	dim   analytics.Dim
	value string
}

// parseWhere parses DIM=VALUE.
func parseWhere(s string) (whereCond, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return whereCond{}, fmt.Errorf("invalid --where %q: want DIMENSION=VALUE, e.g. tenant=acme", s)
	}
	d, err := analytics.ParseDim(strings.TrimSpace(name))
	if err != nil {
		return whereCond{}, fmt.Errorf("invalid --where %q: %w", s, err)
	}
	return whereCond{d, value}, nil
}

// usageRequest is the parsed command line of query usage.
type usageRequest struct {
	query   analytics.UsageQuery
	format  string
	where   []whereCond
	compare bool
}

// swapRepriced makes the re-priced cost the rows' cost: CostUSD and
// UnpricedRequests take the re-priced values, and Reprice then holds the
// stored ones (kept only with --compare, for the writers' stored_* fields).
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
	opts := warehouse.DefaultOptions()
	opts.DSN = c.String("clickhouse")
	w, err := warehouse.Open(c.Context, opts)
	if err != nil {
		return err
	}
	defer w.Close()
	q := analytics.New(w, analytics.DefaultOptions())
	rows, err := q.Usage(c.Context, req.query)
	if err != nil {
		if strings.Contains(err.Error(), "doesn't exist") {
			return fmt.Errorf("%w (has `costpipe migrate` run on database %s?)", err, w.Database())
		}
		return err
	}
	if req.query.Reprice != nil {
		swapRepriced(rows, req.compare)
		// Most expensive first, by the re-priced cost.
		slices.SortStableFunc(rows, func(a, b analytics.UsageRow) int { return b.CostUSD.Cmp(a.CostUSD) })
	}
	out := bufio.NewWriter(c.App.Writer)
	switch req.format {
	case "json":
		err = writeUsageJSON(out, req.query.By, rows)
	case "csv":
		err = writeUsageCSV(out, req.query.By, rows)
	case "arrow":
		err = writeUsageArrow(out, req.query.By, rows)
	default:
		var total *analytics.UsageRow
		if len(rows) > 1 {
			tq := req.query
			tq.By = nil
			t, err := q.Usage(c.Context, tq)
			if err != nil {
				return err
			}
			swapRepriced(t, req.compare)
			if len(t) == 1 {
				total = &t[0]
			}
		}
		err = writeUsageTable(out, req, rows, total)
	}
	if err != nil {
		return err
	}
	return out.Flush()
}

// parseUsageFlags validates the flags of query usage; now anchors --since.
func parseUsageFlags(c *cli.Context, now time.Time) (usageRequest, error) {
	var req usageRequest
	if c.NArg() > 0 {
		return req, fmt.Errorf("query usage takes no arguments, got %q", c.Args().First())
	}
	req.format = c.String("format")
	switch req.format {
	case "table", "json", "csv", "arrow":
	default:
		return req, fmt.Errorf("invalid --format %q: want table, json, csv or arrow", req.format)
	}
	g, err := analytics.ParseGranularity(c.String("granularity"))
	if err != nil {
		return req, fmt.Errorf("invalid --granularity: %w", err)
	}
	req.query.Granularity = g
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

	to := now.UTC()
	if s := c.String("to"); s != "" {
		if to, err = parseTime(s); err != nil {
			return req, fmt.Errorf("invalid --to: %w", err)
		}
	}
	var from time.Time
	if s := c.String("from"); s != "" {
		if c.IsSet("since") {
			return req, fmt.Errorf("--from and --since are mutually exclusive: give a range with --from/--to or a length with --since")
		}
		if from, err = parseTime(s); err != nil {
			return req, fmt.Errorf("invalid --from: %w", err)
		}
	} else {
		d, err := parseSince(c.String("since"))
		if err != nil {
			return req, err
		}
		from = to.Add(-d)
	}
	if !from.Before(to) {
		return req, fmt.Errorf("empty range: --from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	req.query.From, req.query.To = from, to

	req.query.By, req.query.Where, req.where, err = parseByWhere(c)
	return req, err
}

// parseByWhere reads --by and --where.
func parseByWhere(c *cli.Context) (by []analytics.Dim, where map[analytics.Dim][]string, conds []whereCond, err error) {
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
			where[cond.dim] = append(where[cond.dim], cond.value)
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

// usageCounters are the counter columns of json and csv output, in order.
var usageCounters = []struct {
	name string
	get  func(*analytics.UsageRow) uint64
}{
	{"requests", func(r *analytics.UsageRow) uint64 { return r.Requests }},
	{"errors", func(r *analytics.UsageRow) uint64 { return r.Errors }},
	{"input_tokens", func(r *analytics.UsageRow) uint64 { return r.InputTokens }},
	{"cached_input_tokens", func(r *analytics.UsageRow) uint64 { return r.CachedInputTokens }},
	{"cache_write_tokens", func(r *analytics.UsageRow) uint64 { return r.CacheWriteTokens }},
	{"cache_write_1h_tokens", func(r *analytics.UsageRow) uint64 { return r.CacheWrite1hTokens }},
	{"output_tokens", func(r *analytics.UsageRow) uint64 { return r.OutputTokens }},
	{"reasoning_tokens", func(r *analytics.UsageRow) uint64 { return r.ReasoningTokens }},
}

// gpuMs is the exact decimal of GPU microseconds in milliseconds.
func gpuMs(us uint64) string {
	return strconv.FormatFloat(float64(us)/1000, 'f', -1, 64)
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// writeUsageJSON writes an array of objects with ordered keys: the group's
// dimensions, the counters, gpu_ms, unpriced_requests, cost_usd (exact
// decimal string) and, when present, latency_ms and ttft_ms.
func writeUsageJSON(w io.Writer, by []analytics.Dim, rows []analytics.UsageRow) error {
	var b bytes.Buffer
	b.WriteString("[")
	for i := range rows {
		r := &rows[i]
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n  {")
		first := true
		field := func(k string, v any) {
			if !first {
				b.WriteString(", ")
			}
			first = false
			kb, _ := json.Marshal(k)
			vb, _ := json.Marshal(v)
			b.Write(kb)
			b.WriteString(": ")
			b.Write(vb)
		}
		for _, d := range by {
			field(string(d), r.Group[d])
		}
		for _, c := range usageCounters {
			field(c.name, c.get(r))
		}
		field("gpu_ms", json.Number(gpuMs(r.GPUMicros)))
		field("unpriced_requests", r.UnpricedRequests)
		field("cost_usd", r.CostUSD.String())
		if r.Reprice != nil { // --compare: the stored values
			field("stored_cost_usd", r.Reprice.CostUSD.String())
			field("stored_unpriced_requests", r.Reprice.UnpricedRequests)
			field("delta_usd", r.CostUSD.Sub(r.Reprice.CostUSD).String())
		}
		for _, p := range []struct {
			name string
			p    analytics.Percentiles
		}{{"latency_ms", r.Latency}, {"ttft_ms", r.TTFT}} {
			if p.p.Present() {
				field(p.name, jsonPercentiles{p.p.P50, p.p.P90, p.p.P99, p.p.Avg, p.p.Min, p.p.Max, p.p.Count})
			}
		}
		b.WriteString("}")
	}
	if len(rows) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	_, err := w.Write(b.Bytes())
	return err
}

// jsonPercentiles is the latency_ms / ttft_ms object.
type jsonPercentiles struct {
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Avg   float64 `json:"avg"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	Count uint64  `json:"count"`
}

// writeUsageCSV writes a header and one line per row, the json fields
// flattened; percentile cells are empty when no call reported the duration.
// Every cell goes through csvCell, so no value is read as a formula.
func writeUsageCSV(w io.Writer, by []analytics.Dim, rows []analytics.UsageRow) error {
	cw := &safeCSVWriter{csv.NewWriter(w)}
	var header []string
	for _, d := range by {
		header = append(header, string(d))
	}
	for _, c := range usageCounters {
		header = append(header, c.name)
	}
	header = append(header, "gpu_ms", "unpriced_requests", "cost_usd")
	compare := len(rows) > 0 && rows[0].Reprice != nil
	if compare {
		header = append(header, "stored_cost_usd", "stored_unpriced_requests", "delta_usd")
	}
	for _, p := range []string{"latency", "ttft"} {
		for _, s := range []string{"p50", "p90", "p99", "avg", "min", "max"} {
			header = append(header, p+"_"+s+"_ms")
		}
		header = append(header, p+"_count")
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	for i := range rows {
		r := &rows[i]
		var rec []string
		for _, d := range by {
			rec = append(rec, r.Group[d])
		}
		for _, c := range usageCounters {
			rec = append(rec, strconv.FormatUint(c.get(r), 10))
		}
		rec = append(rec, gpuMs(r.GPUMicros), strconv.FormatUint(r.UnpricedRequests, 10), r.CostUSD.String())
		if compare {
			rec = append(rec, r.Reprice.CostUSD.String(), strconv.FormatUint(r.Reprice.UnpricedRequests, 10),
				r.CostUSD.Sub(r.Reprice.CostUSD).String())
		}
		for _, p := range []analytics.Percentiles{r.Latency, r.TTFT} {
			if p.Present() {
				rec = append(rec, fmtFloat(p.P50), fmtFloat(p.P90), fmtFloat(p.P99), fmtFloat(p.Avg), fmtFloat(p.Min), fmtFloat(p.Max))
			} else {
				rec = append(rec, "", "", "", "", "", "")
			}
			rec = append(rec, strconv.FormatUint(p.Count, 10))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// safeCSVWriter is a csv.Writer whose Write neutralises formula cells
// (csvCell).
type safeCSVWriter struct{ *csv.Writer }

func (w *safeCSVWriter) Write(rec []string) error {
	for i, c := range rec {
		rec[i] = csvCell(c)
	}
	return w.Writer.Write(rec)
}

// csvCell defuses CSV (formula) injection: a spreadsheet opening the file
// runs a cell that starts with '=', '+', '-' or '@' as a formula, and some
// also after a leading tab or carriage return (OWASP). Such a cell gets a
// leading single quote, which spreadsheets show as text. A cell that is a
// plain decimal number as a whole ("-1.5", "+2", "-3e-7") is left alone:
// a spreadsheet reads it as that number, never as a formula, so negative
// amounts stay numbers. The rule applies to every column, text or not;
// this command's numeric columns are never negative today, but stay safe
// and numeric if they become so.
func csvCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		if !isDecimal(s) {
			return "'" + s
		}
	}
	return s
}

// isDecimal reports whether s is [+-]digits[.digits][(e|E)[+-]digits].
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := func() bool {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if !digits() {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}

// writeUsageTable prints a titled table for people: aligned columns,
// thousands separators, cost with 2 to 6 decimals, percentiles in ms, and a
// TOTAL line when there are several groups.
func writeUsageTable(w io.Writer, req usageRequest, rows []analytics.UsageRow, total *analytics.UsageRow) error {
	rng := fmt.Sprintf("[%s, %s)", req.query.From.UTC().Format(time.RFC3339), req.query.To.UTC().Format(time.RFC3339))
	if len(rows) == 0 {
		_, err := fmt.Fprintf(w, "no usage in %s%s\n", rng, whereText(req.where))
		return err
	}
	title := "usage in " + rng
	if len(req.query.By) > 0 {
		names := make([]string, len(req.query.By))
		for i, d := range req.query.By {
			names[i] = string(d)
		}
		title += " by " + strings.Join(names, ", ")
	}
	title += whereText(req.where)
	if _, err := fmt.Fprintln(w, title); err != nil {
		return err
	}

	all := rows
	if total != nil {
		all = append(append([]analytics.UsageRow(nil), rows...), *total)
	}
	var unpriced, gpu uint64
	for i := range rows {
		unpriced += rows[i].UnpricedRequests
		gpu += rows[i].GPUMicros
	}
	type col struct {
		head  string
		right bool
		cell  func(r *analytics.UsageRow) string
	}
	var cols []col
	for k, d := range req.query.By {
		cols = append(cols, col{strings.ToUpper(string(d)), false, func(r *analytics.UsageRow) string {
			if r == total {
				if k == 0 {
					return "TOTAL"
				}
				return ""
			}
			if v := r.Group[d]; v != "" {
				return v
			}
			return "-"
		}})
	}
	num := func(head string, f func(r *analytics.UsageRow) uint64) col {
		return col{head, true, func(r *analytics.UsageRow) string { return thousands(f(r)) }}
	}
	cols = append(cols,
		num("REQUESTS", func(r *analytics.UsageRow) uint64 { return r.Requests }),
		num("ERRORS", func(r *analytics.UsageRow) uint64 { return r.Errors }),
		num("INPUT TOK", func(r *analytics.UsageRow) uint64 { return r.InputTokens }),
		num("CACHED", func(r *analytics.UsageRow) uint64 { return r.CachedInputTokens }),
		num("OUTPUT TOK", func(r *analytics.UsageRow) uint64 { return r.OutputTokens }),
		num("REASONING", func(r *analytics.UsageRow) uint64 { return r.ReasoningTokens }),
	)
	if gpu > 0 {
		cols = append(cols, col{"GPU HOURS", true, func(r *analytics.UsageRow) string {
			return formatSig(float64(r.GPUMicros) / 3.6e9)
		}})
	}
	cols = append(cols, col{"COST USD", true, func(r *analytics.UsageRow) string { return formatCost(r.CostUSD) }})
	if req.compare {
		cols = append(cols,
			col{"STORED USD", true, func(r *analytics.UsageRow) string {
				if r.Reprice == nil {
					return "-"
				}
				return formatCost(r.Reprice.CostUSD)
			}},
			col{"CHANGE", true, func(r *analytics.UsageRow) string {
				if r.Reprice == nil || r.Reprice.CostUSD.IsZero() {
					return "-"
				}
				return fmt.Sprintf("%+.1f%%", (r.CostUSD.Float64()/r.Reprice.CostUSD.Float64()-1)*100)
			}})
	}
	if unpriced > 0 {
		cols = append(cols, num("UNPRICED", func(r *analytics.UsageRow) uint64 { return r.UnpricedRequests }))
	}
	pct := func(head string, f func(r *analytics.UsageRow) (analytics.Percentiles, float64)) col {
		return col{head, true, func(r *analytics.UsageRow) string {
			p, v := f(r)
			if !p.Present() {
				return "-"
			}
			return formatMs(v)
		}}
	}
	cols = append(cols,
		pct("LAT P50 MS", func(r *analytics.UsageRow) (analytics.Percentiles, float64) { return r.Latency, r.Latency.P50 }),
		pct("LAT P90 MS", func(r *analytics.UsageRow) (analytics.Percentiles, float64) { return r.Latency, r.Latency.P90 }),
		pct("LAT P99 MS", func(r *analytics.UsageRow) (analytics.Percentiles, float64) { return r.Latency, r.Latency.P99 }),
		pct("TTFT P50 MS", func(r *analytics.UsageRow) (analytics.Percentiles, float64) { return r.TTFT, r.TTFT.P50 }),
		pct("TTFT P99 MS", func(r *analytics.UsageRow) (analytics.Percentiles, float64) { return r.TTFT, r.TTFT.P99 }),
	)

	cells := make([][]string, len(all))
	widths := make([]int, len(cols))
	for j, c := range cols {
		widths[j] = utf8.RuneCountInString(c.head)
	}
	for i := range all {
		r := &all[i]
		if total != nil && i == len(all)-1 {
			r = total
		}
		cells[i] = make([]string, len(cols))
		for j, c := range cols {
			cells[i][j] = c.cell(r)
			widths[j] = max(widths[j], utf8.RuneCountInString(cells[i][j]))
		}
	}
	var b strings.Builder
	line := func(vals []string) {
		for j, v := range vals {
			if j > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[j]-utf8.RuneCountInString(v))
			if cols[j].right {
				b.WriteString(pad + v)
			} else if j < len(vals)-1 {
				b.WriteString(v + pad)
			} else {
				b.WriteString(v)
			}
		}
		b.WriteString("\n")
	}
	heads := make([]string, len(cols))
	for j, c := range cols {
		heads[j] = c.head
	}
	line(heads)
	for i := range cells {
		if total != nil && i == len(cells)-1 {
			seps := make([]string, len(cols))
			for j := range seps {
				seps[j] = strings.Repeat("-", widths[j])
			}
			line(seps)
		}
		line(cells[i])
	}
	if unpriced > 0 {
		calls := "calls"
		if unpriced == 1 {
			calls = "call"
		}
		fmt.Fprintf(&b, "note: %s %s had no price (counted at cost 0): add the models to the price catalog\n", thousands(unpriced), calls)
	}
	if req.query.Reprice != nil {
		fmt.Fprintf(&b, "costs re-priced with %s (what-if; the stored costs are unchanged)\n", req.query.Reprice.Name())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// whereText is " where tenant=acme, model=a|b" for titles.
func whereText(conds []whereCond) string {
	if len(conds) == 0 {
		return ""
	}
	var parts []string
	idx := map[analytics.Dim]int{}
	for _, c := range conds {
		if i, ok := idx[c.dim]; ok {
			parts[i] += "|" + strconv.Quote(c.value)
			continue
		}
		idx[c.dim] = len(parts)
		parts = append(parts, string(c.dim)+"="+strconv.Quote(c.value))
	}
	return " where " + strings.Join(parts, ", ")
}

// thousands formats n with comma separators: 1234567 → "1,234,567".
func thousands(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	lead := len(s) % 3
	if lead > 0 {
		b.WriteString(s[:lead])
	}
	for i := lead; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// formatCost rounds p half away from zero to 6 decimals and drops trailing
// zeros beyond the second: 12.5 → "12.50", 0.0001234567 → "0.000123".
func formatCost(p pricing.Pico) string {
	s := p.Decimal().Round(6).StringFixed(6)
	for strings.HasSuffix(s, "0") && len(s)-strings.IndexByte(s, '.') > 3 {
		s = s[:len(s)-1]
	}
	return s
}

// formatMs prints milliseconds for people: no decimals from 100 up, else
// 3 significant digits (78.9, 4.56, 0.123).
func formatMs(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return formatSig(v)
}

// formatSig prints v ≥ 0 in fixed notation with at least 3 significant
// digits and at most 9 decimals: 1234, 12.3, 0.000343, 0.
func formatSig(v float64) string {
	if v == 0 {
		return "0"
	}
	prec := 2 - int(math.Floor(math.Log10(v)))
	return strconv.FormatFloat(v, 'f', min(max(prec, 0), 9), 64)
}
