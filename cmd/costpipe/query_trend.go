package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/warehouse"
)

// trendFlags are the flags query growth and query forecast share.
func trendFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "by", EnvVars: []string{"COSTPIPE_QUERY_BY"},
			Usage: "comma-separated `DIMENSIONS` to group by: tenant, application, provider, model, error_type, service_tier, context_band"},
		&cli.GenericFlag{Name: "where", Value: &whereFlag{}, EnvVars: []string{"COSTPIPE_QUERY_WHERE"},
			Usage: "keep rows with `DIM=VALUE` (repeatable: same dimension = OR, different = AND)"},
		&cli.StringFlag{Name: "metric", Value: "cost", EnvVars: []string{"COSTPIPE_QUERY_METRIC"},
			Usage: "what to follow, `METRIC`: cost (USD), requests, input_tokens, output_tokens or tokens"},
		&cli.StringFlag{Name: "tz", Value: "UTC", EnvVars: []string{"COSTPIPE_QUERY_TZ"},
			Usage: "IANA time `ZONE` of the calendar days (Europe/Berlin, America/New_York, …)"},
		&cli.StringFlag{Name: "at", EnvVars: []string{"COSTPIPE_QUERY_AT"},
			Usage: "answer as of `TIME` (RFC 3339 or a date; default now)"},
		&cli.StringFlag{Name: "format", Value: "table", EnvVars: []string{"COSTPIPE_QUERY_FORMAT"},
			Usage: "output `FORMAT`: table, json or csv"},
	}
}

// trendRequest is what query growth and query forecast read from flags.
type trendRequest struct {
	by     []analytics.Dim
	where  map[analytics.Dim][]string
	conds  []whereCond
	metric analytics.Metric
	loc    *time.Location
	at     time.Time
	format string
}

func parseTrendFlags(c *cli.Context) (trendRequest, error) {
	var r trendRequest
	var err error
	if c.NArg() > 0 {
		return r, fmt.Errorf("%s takes no arguments, got %q", c.Command.FullName(), c.Args().First())
	}
	if r.by, r.where, r.conds, err = parseByWhere(c); err != nil {
		return r, err
	}
	if r.metric, err = analytics.ParseMetric(c.String("metric")); err != nil {
		return r, fmt.Errorf("invalid --metric: %w", err)
	}
	tz := c.String("tz")
	if tz == "Local" || tz == "" {
		return r, fmt.Errorf("invalid --tz %q: want an IANA zone name such as UTC or Europe/Berlin", tz)
	}
	if r.loc, err = time.LoadLocation(tz); err != nil {
		return r, fmt.Errorf("invalid --tz %q: %v", tz, err)
	}
	r.at = time.Now()
	if s := c.String("at"); s != "" {
		if r.at, err = parseTime(s); err != nil {
			return r, fmt.Errorf("invalid --at: %w", err)
		}
	}
	r.format = c.String("format")
	switch r.format {
	case "table", "json", "csv":
	default:
		return r, fmt.Errorf("invalid --format %q: want table, json or csv", r.format)
	}
	return r, nil
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

func queryGrowthCommand() *cli.Command {
	return &cli.Command{
		Name:  "growth",
		Usage: "how fast usage grows per group: week over week, compound monthly growth, doubling time",
		Description: `For each group of --by (or the totals), from the daily values of --metric in
--tz up to the last complete day before --at:

  last_7d, prev_7d, wow_pct   the last 7 days against the 7 before (the weekly pattern cancels)
  dod_pct                     the last day against the same weekday a week earlier
  daily_rate                  the trend over --window days: the seasonal Theil–Sen slope of
                              ln(daily value) per day (robust to outliers and weekends)
  cmgr_pct                    compound monthly growth at that rate, e^(30·rate) − 1
  rate_ci_low, rate_ci_high   its 90% confidence interval
  doubling_days               ln 2 / rate, only when the whole interval is above 0
  halving_days                the same for a shrinking series

Too little data (fewer than 7 days with usage in the window, or more than half
of its days without) gives a note instead of a number.

Examples:
  costpipe query growth --by model
  costpipe query growth --by tenant --metric requests --window 56 --format json`,
		Flags: append(trendFlags(),
			&cli.IntFlag{Name: "window", Value: 28, EnvVars: []string{"COSTPIPE_QUERY_WINDOW"},
				Usage: "`DAYS` of the trend (14 to 366)"}),
		Action: runQueryGrowth,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &exitError{code: 2, msg: err.Error() + " (see costpipe query growth --help)"}
		},
	}
}

func runQueryGrowth(c *cli.Context) error {
	req, err := parseTrendFlags(c)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	w, q, err := openQuerier(c)
	if err != nil {
		return err
	}
	defer w.Close()
	rows, err := q.Growth(c.Context, analytics.GrowthQuery{At: req.at, Location: req.loc, By: req.by, Where: req.where,
		Metric: req.metric, Window: c.Int("window")})
	if err != nil {
		return err
	}
	out := bufio.NewWriter(c.App.Writer)
	switch req.format {
	case "json":
		err = writeGrowthJSON(out, req.by, rows)
	case "csv":
		err = writeGrowthCSV(out, req.by, rows)
	default:
		err = writeGrowthTable(out, req, rows)
	}
	if err != nil {
		return err
	}
	return out.Flush()
}

// growthFields are the growth columns of json and csv output, in order.
var growthFields = []struct {
	name string
	get  func(r *analytics.GrowthRow) *float64
}{
	{"last_7d", func(r *analytics.GrowthRow) *float64 { return r.Last7d }},
	{"prev_7d", func(r *analytics.GrowthRow) *float64 { return r.Prev7d }},
	{"wow_pct", func(r *analytics.GrowthRow) *float64 { return r.WoWPct }},
	{"dod_pct", func(r *analytics.GrowthRow) *float64 { return r.DoDPct }},
	{"daily_rate", func(r *analytics.GrowthRow) *float64 { return r.DailyRate }},
	{"rate_ci_low", func(r *analytics.GrowthRow) *float64 { return r.RateCILow }},
	{"rate_ci_high", func(r *analytics.GrowthRow) *float64 { return r.RateCIHigh }},
	{"cmgr_pct", func(r *analytics.GrowthRow) *float64 { return r.CMGRPct }},
	{"doubling_days", func(r *analytics.GrowthRow) *float64 { return r.DoublingDays }},
	{"halving_days", func(r *analytics.GrowthRow) *float64 { return r.HalvingDays }},
}

func writeGrowthJSON(w io.Writer, by []analytics.Dim, rows []analytics.GrowthRow) error {
	out := make([]map[string]any, 0, len(rows))
	for i := range rows {
		r := &rows[i]
		m := map[string]any{}
		for _, d := range by {
			m[string(d)] = r.Group[d]
		}
		for _, f := range growthFields {
			m[f.name] = f.get(r) // nil: null
		}
		m["window"], m["days_used"], m["zero_days"], m["note"] = r.Window, r.DaysUsed, r.ZeroDays, r.Note
		days := make([]string, len(r.Days))
		for j, d := range r.Days {
			days[j] = d.Format(time.DateOnly)
		}
		m["days"], m["daily"] = days, r.Daily
		out = append(out, m)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeGrowthCSV(w io.Writer, by []analytics.Dim, rows []analytics.GrowthRow) error {
	cw := &safeCSVWriter{csv.NewWriter(w)}
	var header []string
	for _, d := range by {
		header = append(header, string(d))
	}
	for _, f := range growthFields {
		header = append(header, f.name)
	}
	header = append(header, "window", "days_used", "zero_days", "note")
	if err := cw.Write(header); err != nil {
		return err
	}
	for i := range rows {
		r := &rows[i]
		var rec []string
		for _, d := range by {
			rec = append(rec, r.Group[d])
		}
		for _, f := range growthFields {
			rec = append(rec, optFloat(f.get(r)))
		}
		rec = append(rec, strconv.Itoa(r.Window), strconv.Itoa(r.DaysUsed), strconv.Itoa(r.ZeroDays), r.Note)
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func optFloat(v *float64) string {
	if v == nil {
		return ""
	}
	return fmtFloat(*v)
}

func writeGrowthTable(w io.Writer, req trendRequest, rows []analytics.GrowthRow) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintf(w, "no %s in the growth window%s\n", req.metric, whereText(req.conds))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	var head []string
	for _, d := range req.by {
		head = append(head, strings.ToUpper(string(d)))
	}
	head = append(head, "LAST 7D", "PREV 7D", "WOW", "DOD", "CMGR", "DOUBLING", "90% CI OF CMGR", "LAST 28 DAYS", "NOTE")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for i := range rows {
		r := &rows[i]
		var cells []string
		for _, d := range req.by {
			cells = append(cells, orDash(r.Group[d]))
		}
		doubling := "-"
		switch {
		case r.DoublingDays != nil:
			doubling = fmt.Sprintf("%.1f d", *r.DoublingDays)
		case r.HalvingDays != nil:
			doubling = fmt.Sprintf("halves %.1f d", *r.HalvingDays)
		}
		ci := "-"
		if r.RateCILow != nil && r.RateCIHigh != nil {
			ci = fmt.Sprintf("%s … %s", pct(cmgr(*r.RateCILow)), pct(cmgr(*r.RateCIHigh)))
		}
		cells = append(cells, metricText(req.metric, r.Last7d), metricText(req.metric, r.Prev7d), optPct(r.WoWPct), optPct(r.DoDPct),
			optPct(r.CMGRPct), doubling, ci, sparkline(tail(r.Daily, 28)), r.Note)
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	last := rows[0].Days[len(rows[0].Days)-1]
	_, err := fmt.Fprintf(w, "%s per day in %s up to %s%s; CMGR = compound monthly growth of the %d-day trend\n",
		req.metric, req.loc, last.Format(time.DateOnly), whereText(req.conds), rows[0].Window)
	return err
}

func cmgr(rate float64) float64 { return 100 * (math.Exp(30*rate) - 1) }

func pct(v float64) string { return fmt.Sprintf("%+.1f%%", v) }

func optPct(v *float64) string {
	if v == nil {
		return "-"
	}
	return pct(*v)
}

// metricText renders a metric value for people: USD with cents, counts
// with thousands separators.
func metricText(m analytics.Metric, v *float64) string {
	if v == nil {
		return "-"
	}
	if m == analytics.MetricCost {
		return "$" + strconv.FormatFloat(*v, 'f', 2, 64)
	}
	return thousands(uint64(math.Round(*v)))
}

func tail(xs []float64, n int) []float64 {
	if len(xs) > n {
		return xs[len(xs)-n:]
	}
	return xs
}

// sparkline draws values as block characters, lowest to highest.
func sparkline(xs []float64) string {
	const bars = "▁▂▃▄▅▆▇█"
	hi := 0.0
	for _, x := range xs {
		hi = math.Max(hi, x)
	}
	var b strings.Builder
	r := []rune(bars)
	for _, x := range xs {
		if hi <= 0 || x <= 0 {
			b.WriteRune(' ')
			continue
		}
		b.WriteRune(r[min(len(r)-1, int(x/hi*float64(len(r)-1)+0.5))])
	}
	return b.String()
}

func queryForecastCommand() *cli.Command {
	return &cli.Command{
		Name:  "forecast",
		Usage: "where usage ends the current day, week or month per group, with a p10–p90 band and budget exhaustion",
		Description: `For each group of --by (or the totals): the exact value of the period so far
(to_date), and forecast_p10/p50/p90 of the period's total. The method is chosen
per series by a rolling-origin backtest over the --history days among
seasonal_naive (same weekday last week), run_rate (mean of the last 7 days) and
holt_winters (damped trend, weekly season); the backtest's mase (below 1 beats
last week's value) and the band's coverage (share of backtest origins whose
outcome fell inside the p10–p90 band; nominal 0.8) are part of the output.
Today is forecast as a whole day. With --budget: exhaustion_p50/p90 (the date
the spend crosses it on the median and on the high path) and p_overspend.

Examples:
  costpipe query forecast --by tenant --budget 5000
  costpipe query forecast --period week --tz Europe/Berlin --format json`,
		Flags: append(trendFlags(),
			&cli.StringFlag{Name: "period", Value: "month", EnvVars: []string{"COSTPIPE_QUERY_PERIOD"},
				Usage: "calendar `PERIOD` forecast: day, week (Monday to Sunday) or month"},
			&cli.Float64Flag{Name: "budget", EnvVars: []string{"COSTPIPE_QUERY_BUDGET"},
				Usage: "the period's budget in the metric's unit (`USD` for cost), per group"},
			&cli.IntFlag{Name: "history", Value: 91, EnvVars: []string{"COSTPIPE_QUERY_HISTORY"},
				Usage: "`DAYS` of history to fit and backtest on"}),
		Action: runQueryForecast,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &exitError{code: 2, msg: err.Error() + " (see costpipe query forecast --help)"}
		},
	}
}

func runQueryForecast(c *cli.Context) error {
	req, err := parseTrendFlags(c)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	period, err := analytics.ParsePeriod(c.String("period"))
	if err != nil {
		return &exitError{code: 2, msg: "invalid --period: " + err.Error()}
	}
	var budget *float64
	if c.IsSet("budget") {
		b := c.Float64("budget")
		if !(b > 0) || math.IsInf(b, 0) {
			return &exitError{code: 2, msg: fmt.Sprintf("invalid --budget %v: want a positive amount", b)}
		}
		budget = &b
	}
	w, q, err := openQuerier(c)
	if err != nil {
		return err
	}
	defer w.Close()
	rows, err := q.Forecast(c.Context, analytics.ForecastQuery{At: req.at, Location: req.loc, Period: period, By: req.by,
		Where: req.where, Metric: req.metric, History: c.Int("history"), Budget: budget})
	if err != nil {
		return err
	}
	out := bufio.NewWriter(c.App.Writer)
	switch req.format {
	case "json":
		err = writeForecastJSON(out, req, rows)
	case "csv":
		err = writeForecastCSV(out, req, rows)
	default:
		err = writeForecastTable(out, req, period, budget, rows)
	}
	if err != nil {
		return err
	}
	return out.Flush()
}

// forecastRecord is one row's output fields, in order.
func forecastRecord(req trendRequest, r *analytics.ForecastRow) [][2]any {
	var f [][2]any
	for _, d := range req.by {
		f = append(f, [2]any{string(d), r.Group[d]})
	}
	toDate := any(r.SoFar)
	if req.metric == analytics.MetricCost {
		toDate = json.Number(r.SoFarCost.String()) // exact
	}
	day := func(off *int) any {
		if off == nil {
			return nil
		}
		return r.Today.AddDate(0, 0, *off).Format(time.DateOnly)
	}
	f = append(f,
		[2]any{"period_start", r.PeriodStart.Format(time.DateOnly)},
		[2]any{"period_end", r.PeriodEnd.AddDate(0, 0, -1).Format(time.DateOnly)},
		[2]any{"to_date", toDate},
		[2]any{"forecast_p10", r.P10}, [2]any{"forecast_p50", r.P50}, [2]any{"forecast_p90", r.P90},
		[2]any{"method", r.Method}, [2]any{"mase", r.MASE}, [2]any{"coverage", r.Coverage},
		[2]any{"backtest_origins", r.BacktestOrigins},
		[2]any{"exhaustion_p50", day(r.ExhaustionP50)}, [2]any{"exhaustion_p90", day(r.ExhaustionP90)},
		[2]any{"p_overspend", r.POverspend}, [2]any{"note", r.Note})
	return f
}

func writeForecastJSON(w io.Writer, req trendRequest, rows []analytics.ForecastRow) error {
	var b strings.Builder
	b.WriteString("[")
	for i := range rows {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n  {")
		for j, kv := range forecastRecord(req, &rows[i]) {
			if j > 0 {
				b.WriteString(", ")
			}
			k, _ := json.Marshal(kv[0])
			v, _ := json.Marshal(kv[1])
			b.Write(k)
			b.WriteString(": ")
			b.Write(v)
		}
		b.WriteString("}")
	}
	if len(rows) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeForecastCSV(w io.Writer, req trendRequest, rows []analytics.ForecastRow) error {
	cw := &safeCSVWriter{csv.NewWriter(w)}
	for i := range rows {
		rec := forecastRecord(req, &rows[i])
		if i == 0 {
			var header []string
			for _, kv := range rec {
				header = append(header, kv[0].(string))
			}
			if err := cw.Write(header); err != nil {
				return err
			}
		}
		var vals []string
		for _, kv := range rec {
			vals = append(vals, cellText(kv[1]))
		}
		if err := cw.Write(vals); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// cellText renders a value of forecastRecord as a CSV cell ("" for null).
func cellText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case *float64:
		return optFloat(x)
	case float64:
		return fmtFloat(x)
	case int:
		return strconv.Itoa(x)
	case json.Number:
		return string(x)
	case string:
		return x
	}
	return fmt.Sprint(v)
}

func writeForecastTable(w io.Writer, req trendRequest, period analytics.Period, budget *float64, rows []analytics.ForecastRow) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintf(w, "no %s in the forecast history%s\n", req.metric, whereText(req.conds))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	var head []string
	for _, d := range req.by {
		head = append(head, strings.ToUpper(string(d)))
	}
	head = append(head, "TO DATE", "P10", "P50", "P90", "METHOD", "MASE", "COVERAGE")
	if budget != nil {
		head = append(head, "EXHAUSTED P50", "EXHAUSTED P90", "P(OVER)")
	}
	head = append(head, "NOTE")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for i := range rows {
		r := &rows[i]
		var cells []string
		for _, d := range req.by {
			cells = append(cells, orDash(r.Group[d]))
		}
		toDate := metricText(req.metric, &r.SoFar)
		if req.metric == analytics.MetricCost {
			toDate = "$" + formatCost(r.SoFarCost)
		}
		cells = append(cells, toDate, metricText(req.metric, r.P10), metricText(req.metric, r.P50), metricText(req.metric, r.P90),
			orDash(r.Method), optNum(r.MASE, 2), optNum(r.Coverage, 2))
		if budget != nil {
			rec := forecastRecord(req, r)
			get := func(k string) string {
				for _, kv := range rec {
					if kv[0] == k && kv[1] != nil {
						return kv[1].(string)
					}
				}
				return "-"
			}
			cells = append(cells, get("exhaustion_p50"), get("exhaustion_p90"), optNum(r.POverspend, 2))
		}
		cells = append(cells, r.Note)
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	r := &rows[0]
	_, err := fmt.Fprintf(w, "%s of the %s %s … %s (%s)%s; p10–p90 is the band of the period total\n", req.metric, period,
		r.PeriodStart.Format(time.DateOnly), r.PeriodEnd.AddDate(0, 0, -1).Format(time.DateOnly), req.loc, whereText(req.conds))
	return err
}

func optNum(v *float64, digits int) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', digits, 64)
}
