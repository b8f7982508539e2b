package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/warehouse"
)

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "create the ClickHouse database and tables (idempotent)",
		Description: `Applies, in order, every versioned migration embedded in the binary that the
database named in --clickhouse has not recorded yet, and prints what it did.
Safe to run again and from several processes at once (they take turns; see
docs/design.md, "Schema upgrades"). Ends by checking the rollup tables' columns.

With --cluster NAME it creates the database on every member of that cluster
(a <remote_servers> entry of the server in --clickhouse) with ON CLUSTER DDL:
Replicated rollup tables per shard in DATABASE_local, Distributed tables over
them and every other table, replicated, in DATABASE (docs/design.md, "Cluster
mode"; docs/operations.md, "Running on a ClickHouse cluster"). Every member
needs the macros {shard} and {replica} and ZooKeeper or ClickHouse Keeper.
A cluster database created by an older costpipe is upgraded member by member
(every member must be up; docs/operations.md, "Upgrading a cluster").

With --rebuild-summaries it then refills the per-model summaries
(usage_model_1h, usage_model_1d, usage_model_1w) from the rollups, month by month: do it
when a query logs that they disagree with the rollups (answers stay exact
meanwhile, only slower). Stop the aggregators first, or run it when they
are quiet: an insert landing in a month while it is rebuilt can be missed
by its summary (docs/operations.md, "Per-model summaries").`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cluster", EnvVars: []string{"COSTPIPE_CLUSTER"},
				Usage: "create the database on ClickHouse cluster `NAME` (ON CLUSTER, replicated and Distributed tables)"},
			&cli.BoolFlag{Name: "rebuild-summaries",
				Usage: "after migrating, refill the per-model summaries from the rollups, month by month (stop the aggregators first)"},
		},
		Action: func(c *cli.Context) error {
			opts := warehouse.DefaultOptions()
			opts.DSN = c.String("clickhouse")
			if err := clickhouseSecurity(c, &opts); err != nil {
				return err
			}
			w, err := warehouse.Open(c.Context, opts)
			if err != nil {
				return err
			}
			defer w.Close()
			ver, err := w.ServerVersion(c.Context)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "clickhouse %s, database %s\n", ver, w.Database())
			var res []warehouse.MigrationResult
			onCluster := true
			if cluster := c.String("cluster"); cluster != "" {
				topo, terr := w.Topology(c.Context, cluster)
				if terr != nil {
					return terr
				}
				fmt.Fprintf(c.App.Writer, "cluster %s: %s; rollups in %s, Distributed tables in %s\n",
					cluster, topo.Shape(), warehouse.LocalDatabase(w.Database()), w.Database())
				res, err = w.UpgradeCluster(c.Context, cluster)
			} else if cluster, err = w.ClusterOf(c.Context); err == nil && cluster != "" {
				// A cluster database named without --cluster: migrate
				// upgrades it as with it.
				res, err = w.UpgradeCluster(c.Context, cluster)
			} else if err == nil {
				onCluster = false
				res, err = w.Migrate(c.Context)
			}
			applied := 0
			for _, r := range res {
				switch {
				case r.Applied && onCluster:
					applied++
					fmt.Fprintf(c.App.Writer, "applied  %s (in the cluster schema)\n", r.Name)
				case r.Applied:
					applied++
					fmt.Fprintf(c.App.Writer, "applied  %s (%s)\n", r.Name, plural(r.Statements, "statement"))
				case r.ChecksumMismatch:
					fmt.Fprintf(c.App.Writer, "present  %s (WARNING: the embedded file differs from the one applied)\n", r.Name)
				default:
					fmt.Fprintf(c.App.Writer, "present  %s\n", r.Name)
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%d migration(s) applied, %d already present\n", applied, len(res)-applied)
			for _, r := range res {
				if len(r.Kept) > 0 {
					fmt.Fprintf(c.App.Writer, "%s kept the rollup tables it replaces as %s (their data was copied and checked); DROP them once satisfied\n",
						r.Name, strings.Join(r.Kept, ", "))
				}
			}
			if c.Bool("rebuild-summaries") {
				rebuilt, err := w.RebuildSummaries(c.Context, func(r warehouse.Rebuilt) {
					shard := ""
					if r.Shard > 0 {
						shard = fmt.Sprintf(" on shard %d", r.Shard)
					}
					fmt.Fprintf(c.App.Writer, "rebuilt  %s month %d%s in %s\n", r.Table.ModelName(), r.Month, shard, r.Took.Round(time.Millisecond))
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "%d summary month(s) rebuilt from the rollups\n", len(rebuilt))
			}
			return nil
		},
	}
}
