package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/costpipe/costpipe/alerts"
	"github.com/costpipe/costpipe/analytics"
)

// demoAlerts backtests two rules over the demo's traffic: a daily budget
// at the traffic's average day (so the busier, later days cross it) and a
// growth rule per model, and prints when they would have fired.
func demoAlerts(ctx context.Context, out io.Writer, q *analytics.Querier, from, to time.Time) error {
	total, err := q.Totals(ctx, from, to)
	if err != nil {
		return err
	}
	days := max(to.Sub(from).Hours()/24, 1)
	budget := total.CostUSD.Float64() / days
	if budget <= 0 {
		return nil
	}
	rules := fmt.Sprintf(`rules:
  - {name: daily-budget, kind: budget, period: day, amount_usd: %.2f, thresholds: [80, 100]}
  - {name: model-growth, kind: growth, by: [model], doubling_days: 14, min_spend_usd: 1}
`, budget)
	cfg, err := alerts.ParseConfig("demo-rules.yaml", []byte(rules))
	if err != nil {
		return err
	}
	start := time.Now()
	hist, err := alerts.LoadHistory(ctx, q, cfg, from, to)
	if err != nil {
		return err
	}
	res, err := alerts.Backtest(ctx, cfg, hist, alerts.BacktestOptions{From: from.Truncate(time.Hour), To: to.Truncate(time.Hour), Step: time.Hour})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nALERTS: what these rules would have done over the traffic (costpipe alerts backtest, %s)\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprint(out, "  "+strings.ReplaceAll(strings.TrimSpace(rules), "\n", "\n  ")+"\n")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  RULE\tFIRED\tFIRST\tLAST\tLAST EPISODE")
	for _, r := range res {
		first, last, what := "-", "-", "-"
		if n := len(r.Episodes); n > 0 {
			e := r.Episodes[n-1]
			first, last = r.Episodes[0].Start.UTC().Format("2006-01-02 15:04"), e.Start.UTC().Format("2006-01-02 15:04")
			what = e.Summary
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", r.Rule, len(r.Episodes), first, last, what)
	}
	tw.Flush()
	fmt.Fprintln(out, "  Evaluate continuously and notify: costpipe alerts run --rules rules.yaml (docs/alerts.md)")
	return nil
}
