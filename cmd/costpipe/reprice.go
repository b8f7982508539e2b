package main

import (
	"bufio"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/render"
	"github.com/costpipe/costpipe/warehouse"
)

func repriceCommand() *cli.Command {
	return &cli.Command{
		Name:  "reprice",
		Usage: "rewrite the stored cost of a range after a price catalog correction",
		Description: `Re-prices the stored token, GPU and request sums of [--from, --to) with the
catalog given by --prices (the corrected one, which the aggregators should price
with from now on: deploy it to them first) and lands, in every rollup table, one
correction row per group whose cost changed, carrying only the difference. Every
rollup, view and query then reports the corrected cost (growth_daily, which
costpipe derive writes, follows by itself only for the days of its --recheck: the
command prints the derive --day run for older days); requests, tokens, latency and
the aggregators' landing marks are untouched. The old and new totals are printed.

It can be run again safely: the differences are computed against the stored cost
including earlier corrections, so a second run, or a run after one that was
interrupted, lands only what is still missing. Every table's corrections are
computed before any is written, so a catalog error writes nothing. Two at once
would each land the difference: a run takes a lock on the database (the table
reprice_lock; on a cluster, the member's it is connected to: run it through one
member) and another run fails while it is held. Calls the catalog has no price for keep their
stored cost; calls that were unpriced at ingest and that it prices are counted as
priced from then on (unpriced_requests). A group whose stored cost is within the
rounding of its calls' costs (half a picodollar a call) is left as it is. On a
cluster every replica is synced first, so that a rerun reads the earlier run's
corrections whichever replica answers.

A long run reports how far it is on stderr, at most every 5 s (groups read per
table, then blocks of corrections landed).

--from and --to are UTC dates (whole days); a catalog whose price changes inside
a day of the range is refused. For a what-if without writing anything, use
costpipe query usage --reprice FILE --compare.

Examples:
  costpipe reprice --prices corrected.yaml --from 2026-11-01 --to 2026-12-01 --dry-run
  costpipe reprice --prices corrected.yaml --from 2026-11-01 --to 2026-12-01 --where model=gpt-5`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Required: true, Usage: "first UTC `DATE` of the range (2026-11-01)"},
			&cli.StringFlag{Name: "to", Required: true, Usage: "UTC `DATE` the range ends before (2026-12-01)"},
			&cli.GenericFlag{Name: "where", Value: &whereFlag{}, Usage: "re-price only rows with `DIM=VALUE` (repeatable: same dimension = OR, different = AND)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the corrections; write nothing"},
		},
		Action: runReprice,
	}
}

func runReprice(c *cli.Context) error {
	if c.NArg() > 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("reprice takes no arguments, got %q", c.Args().First())}
	}
	if c.String("prices") == "" {
		return &exitError{code: 2, msg: "reprice rewrites stored costs: give the corrected catalog with --prices FILE (COSTPIPE_PRICES), the one the aggregators now price with"}
	}
	cat, err := loadCatalog(c)
	if err != nil {
		return err
	}
	var from, to time.Time
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		t, err := time.Parse(time.DateOnly, c.String(f.name))
		if err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("invalid --%s %q: want a UTC date such as 2026-11-01", f.name, c.String(f.name))}
		}
		*f.dst = t
	}
	if !from.Before(to) {
		return &exitError{code: 2, msg: fmt.Sprintf("empty range: --from %s is not before --to %s", from.Format(time.DateOnly), to.Format(time.DateOnly))}
	}
	_, where, conds, err := parseByWhere(c)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	w, q, err := openQuerier(c)
	if err != nil {
		return err
	}
	defer w.Close()
	dry := c.Bool("dry-run")
	rq := analytics.RewriteQuery{From: from, To: to, Where: where, Catalog: cat, DryRun: dry}
	// On a cluster the corrections land in the local tables, through the
	// shards, as the aggregators' rows do (the Distributed tables only read).
	cluster, err := w.ClusterOf(c.Context)
	if err != nil {
		return err
	}
	if cluster != "" && !dry {
		wopts := warehouse.DefaultOptions()
		wopts.DSN = c.String("clickhouse")
		if err := clickhouseSecurity(c, &wopts); err != nil {
			return err
		}
		sharded, err := warehouse.OpenSharded(c.Context, wopts, cluster)
		if err != nil {
			return err
		}
		defer sharded.Close()
		rq.Land = sharded
	}
	last := time.Now()
	rq.Progress = func(p analytics.RewriteProgress) {
		if time.Since(last) < progressEvery {
			return // short runs stay quiet
		}
		last = time.Now()
		switch {
		case p.Blocks > 0:
			fmt.Fprintf(c.App.ErrWriter, "reprice: landed %d of %d blocks of corrections (the last into %s)\n", p.Landed, p.Blocks, p.Table.Name())
		case p.TableRead:
			fmt.Fprintf(c.App.ErrWriter, "reprice: read %s groups of %s\n", render.Thousands(uint64(p.Read)), p.Table.Name())
		default:
			fmt.Fprintf(c.App.ErrWriter, "reprice: reading %s: %s groups so far\n", p.Table.Name(), render.Thousands(uint64(p.Read)))
		}
	}
	res, err := q.RewriteCosts(c.Context, rq)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(c.App.Writer)
	verb := "corrected"
	if dry {
		verb = "would correct"
	}
	fmt.Fprintf(out, "re-priced [%s, %s)%s with %s\n", from.Format(time.DateOnly), to.Format(time.DateOnly), render.Scope{Where: conds}.WhereText(), cat.Name())
	var before, after pricing.Pico
	for _, t := range res.Tables {
		fmt.Fprintf(out, "  %-9s %s of %s groups %s; cost %s → %s USD", t.Table.Name(), render.Thousands(uint64(t.Corrected)), render.Thousands(uint64(t.Groups)), verb,
			t.Before.String(), t.After.String())
		if t.NowPriced > 0 {
			fmt.Fprintf(out, "; %s calls unpriced at ingest now priced", render.Thousands(t.NowPriced))
		}
		if t.Unpriced > 0 {
			fmt.Fprintf(out, "; %s calls without a price kept their cost", render.Thousands(t.Unpriced))
		}
		fmt.Fprintln(out)
		before, after = t.Before, t.After // every table holds the same calls; the last (usage_1d) is the total
	}
	fmt.Fprintf(out, "total cost %s → %s USD (%s)\n", before.String(), after.String(), strings.TrimSpace(signed(after.Sub(before))))
	// Rows landed before 0004 hold no service tier, context band or
	// 1-hour cache writes: their columns' defaults are what is re-priced.
	// A database created at 0004 or later (its first migration applied
	// with it) has no such rows.
	at, ok, err := w.MigrationApplied(c.Context, 4)
	first, _, ferr := w.MigrationApplied(c.Context, 1)
	if err == nil && ferr == nil && ok && at.Sub(first) > time.Minute && from.Before(at) {
		fmt.Fprintf(out, "note: calls landed before migration 0004 was applied (%s) have no service tier, long-context band or 1-hour cache writes recorded: they are re-priced as standard-tier calls below every context threshold, their cache writes at the 5-minute rate\n",
			at.Format(time.DateTime))
	}
	if dry {
		fmt.Fprintln(out, "dry run: nothing was written")
	} else if today := time.Now().UTC().Truncate(24 * time.Hour); from.Before(today.AddDate(0, 0, -analytics.DefaultDeriverOptions().Recheck)) && !after.Sub(before).IsZero() {
		// derive follows changed days only within its --recheck.
		fmt.Fprintf(out, "growth_daily (costpipe derive): days older than derive's --recheck are not derived again by themselves; derive them, and the days after them (whose growth windows and forecasts read them), with\n  costpipe derive --day %s..%s\n",
			from.Format(time.DateOnly), today.AddDate(0, 0, -1).Format(time.DateOnly))
	}
	return out.Flush()
}

// signed renders a difference with its sign.
func signed(p pricing.Pico) string {
	if p.Sign() >= 0 {
		return "+" + p.String()
	}
	return p.String()
}
