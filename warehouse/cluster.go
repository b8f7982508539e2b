package warehouse

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	chschema "github.com/costpipe/costpipe/schemas/clickhouse"
)

// A costpipe database on a ClickHouse cluster (docs/design.md, "Cluster
// mode") is two databases on every member:
//
//   - {database}_local holds, per shard, the rollup tables usage_1m,
//     usage_1h and usage_1d and the per-model summaries (usage_model_1h,
//     usage_model_1d, usage_model_1w) as Replicated*MergeTree tables (ZooKeeper path by {shard}, replica
//     {replica}) with their Null input tables and
//     materialized views: the aggregator lands into one shard's replica and
//     reads that shard's landing marks there;
//   - {database} holds Distributed tables of the same names and columns
//     over them, the analyst views, and every other table (growth_daily, the
//     alerts tables, schema_migrations) replicated on every member of the
//     cluster: queries, derive, alerts and serve read it as they read a
//     single server's database.

// LocalDatabase names the database holding a cluster's shard-local rollup
// tables, input tables and views: {database}_local.
func LocalDatabase(database string) string { return database + "_local" }

// Topology is a cluster as the server's system.clusters describes it.
type Topology struct {
	Name string
	// Shards in shard_num order; each holds its replicas' native addresses
	// ("host:port") in replica_num order.
	Shards [][]string
}

// Shape describes the shards and their replicas: "2 shard(s) of 2
// replica(s)", or "2 shard(s) of 2, 1 replica(s)" when they differ.
func (t Topology) Shape() string {
	counts := make([]string, len(t.Shards))
	same := true
	for i, s := range t.Shards {
		counts[i] = strconv.Itoa(len(s))
		same = same && len(s) == len(t.Shards[0])
	}
	if same && len(counts) > 0 {
		counts = counts[:1]
	}
	return fmt.Sprintf("%d shard(s) of %s replica(s)", len(t.Shards), strings.Join(counts, ", "))
}

var clusterNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`) })

// Topology reads cluster's shards and replicas from the server's
// <remote_servers> (system.clusters).
func (w *Warehouse) Topology(ctx context.Context, cluster string) (Topology, error) {
	if !clusterNameRE().MatchString(cluster) {
		return Topology{}, fmt.Errorf("cluster name %q: want letters, digits, _ . - (as in <remote_servers>)", cluster)
	}
	rows, err := w.conn.Query(ctx, "SELECT shard_num, replica_num, host_name, port FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num", cluster)
	if err != nil {
		return Topology{}, fmt.Errorf("cannot read cluster %q from system.clusters: %w", cluster, err)
	}
	defer rows.Close()
	t := Topology{Name: cluster}
	last := uint32(0)
	for rows.Next() {
		var shard, replica uint32
		var host string
		var port uint16
		if err := rows.Scan(&shard, &replica, &host, &port); err != nil {
			return Topology{}, fmt.Errorf("cannot read cluster %q from system.clusters: %w", cluster, err)
		}
		if shard != last {
			t.Shards = append(t.Shards, nil)
			last = shard
		}
		i := len(t.Shards) - 1
		t.Shards[i] = append(t.Shards[i], net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	if err := rows.Err(); err != nil {
		return Topology{}, fmt.Errorf("cannot read cluster %q from system.clusters: %w", cluster, err)
	}
	if len(t.Shards) == 0 {
		var names []string
		if r, err := w.conn.Query(ctx, "SELECT DISTINCT cluster FROM system.clusters ORDER BY cluster"); err == nil {
			for r.Next() {
				var n string
				if r.Scan(&n) == nil {
					names = append(names, n)
				}
			}
			r.Close()
		}
		known := "it defines no cluster"
		if len(names) > 0 {
			known = "it knows: " + strings.Join(names, ", ")
		}
		return Topology{}, fmt.Errorf("cluster %q is not in the <remote_servers> of the server at %s (%s)",
			cluster, redact(w.dsn), known)
	}
	return t, nil
}

// ClusterOf returns the cluster the database was created on by
// MigrateCluster, or "" for a single-server database (or none yet): the
// cluster named by the Distributed engine of {database}.usage_1m.
func (w *Warehouse) ClusterOf(ctx context.Context) (string, error) {
	engine, err := w.tableEngine(ctx, "engine")
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if engine != "Distributed" {
		return "", nil
	}
	full, err := w.tableEngine(ctx, "engine_full")
	if err != nil {
		return "", err
	}
	m := distributedRE().FindStringSubmatch(full)
	if m == nil {
		return "", fmt.Errorf("cannot read the cluster of %s.%s from its engine %q", w.database, Minute.Name(), full)
	}
	return m[1], nil
}

// tableEngine reads column (engine or engine_full) of usage_1m from
// system.tables. ClickHouse 18.16 builds system.tables from every table of
// the database and fails with UNKNOWN_TABLE (60) when another process's
// migration drops one meanwhile (several aggregators starting at once on a
// new database; measured: 8 of 1,010 reads during a migration): such a read
// is retried, for up to 5 s.
func (w *Warehouse) tableEngine(ctx context.Context, column string) (string, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var v string
		err := w.conn.QueryRow(ctx, "SELECT "+column+" FROM system.tables WHERE database = ? AND name = ?", w.database, Minute.Name()).Scan(&v)
		var ex *clickhouse.Exception
		if err == nil || errors.Is(err, sql.ErrNoRows) {
			return v, err
		}
		if !errors.As(err, &ex) || ex.Code != 60 || time.Now().After(deadline) {
			return "", fmt.Errorf("cannot read the engine of %s.%s: %w", w.database, Minute.Name(), err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var distributedRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^Distributed\(\s*'?([^',\s)]+)'?`) })

// replicatedPath is the ZooKeeper path of a replicated table created by
// migration version: per shard for the rollups, one for the whole cluster
// otherwise. The version makes a table that a later migration recreates
// under the same name a new replicated table.
func replicatedPath(cluster, database, table string, version int, sharded bool) string {
	scope := "all"
	if sharded {
		scope = "shard-{shard}"
	}
	return fmt.Sprintf("/clickhouse/costpipe/%s/%s/%s/%s/v%d", cluster, database, scope, table, version)
}

var (
	createRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile("^CREATE (TABLE|VIEW|MATERIALIZED VIEW) `?([A-Za-z0-9_]+)`?\\.`?([A-Za-z0-9_]+)`?")
	})
	engineRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`ENGINE = (\w*)MergeTree(\(([^)]*)\))?`) })
)

// MigrateCluster creates (or checks) the costpipe database on cluster with
// ON CLUSTER DDL: the shard-local rollups in LocalDatabase, Distributed tables
// and the rest in the database (see the comment at the top of this file).
//
// The schema is the one the embedded migrations build on a single server,
// derived from them rather than written twice: they are applied to a scratch
// database on the server w is connected to, and each resulting table's
// CREATE statement is turned into its cluster form (ON CLUSTER, a
// Replicated engine, the target database). The scratch database is dropped
// afterwards. Every migration is then recorded as applied.
//
// A cluster database is created at the binary's schema version and
// upgraded migration by migration (upgradeCluster). Safe to run again and
// from several processes (the migration lock of Migrate).
//
// An existing cluster database that lacks migrations is not upgraded:
// MigrateCluster fails with ErrClusterUpgrade, and UpgradeCluster (costpipe
// migrate) applies them. The migration lock is the member's, so two
// processes starting on two members could otherwise upgrade at once, and
// two summary fills interleaved (empty, empty, fill, fill) double them.
func (w *Warehouse) MigrateCluster(ctx context.Context, cluster string) ([]MigrationResult, error) {
	return w.migrateCluster(ctx, cluster, math.MaxInt, false)
}

// UpgradeCluster is MigrateCluster that also applies the migrations an
// existing cluster database lacks: for costpipe migrate, run through one
// member.
func (w *Warehouse) UpgradeCluster(ctx context.Context, cluster string) ([]MigrationResult, error) {
	return w.migrateCluster(ctx, cluster, math.MaxInt, true)
}

// ErrClusterUpgrade is wrapped by MigrateCluster's error when the cluster
// database lacks migrations that only UpgradeCluster applies.
var ErrClusterUpgrade = errors.New("the cluster's schema needs an upgrade")

// upgradeNeeded is the ErrClusterUpgrade of a cluster database whose
// recorded migrations (applied) lack some of all, else nil.
func upgradeNeeded(db, cluster string, all []chschema.Migration, applied map[int]string) error {
	var missing []string
	for _, m := range all {
		if _, ok := applied[m.Version]; !ok {
			missing = append(missing, m.Name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: database %s on cluster %s lacks %s; run `costpipe migrate --cluster %s` through one member first (other commands do not upgrade a cluster)",
		ErrClusterUpgrade, db, cluster, strings.Join(missing, ", "), cluster)
}

// migrateCluster is MigrateCluster (or, with upgrade, UpgradeCluster) up
// to migration upTo (tests build older cluster databases with it).
func (w *Warehouse) migrateCluster(ctx context.Context, cluster string, upTo int, upgrade bool) ([]MigrationResult, error) {
	topo, err := w.Topology(ctx, cluster)
	if err != nil {
		return nil, err
	}
	for _, macro := range []string{"shard", "replica"} {
		var n uint64
		if err := w.conn.QueryRow(ctx, "SELECT count() FROM system.macros WHERE macro = ?", macro).Scan(&n); err != nil {
			return nil, fmt.Errorf("cannot read system.macros: %w", err)
		}
		if n == 0 {
			return nil, fmt.Errorf("the server at %s defines no {%s} macro: every member of cluster %s needs <macros> with shard (its shard) and replica (unique in the cluster); see docs/operations.md", redact(w.dsn), macro, cluster)
		}
	}
	db, local := w.database, LocalDatabase(w.database)
	on := " ON CLUSTER `" + cluster + "`"
	found, err := w.ClusterOf(ctx)
	if err != nil {
		return nil, err
	}
	if found == "" {
		var n uint64
		if err := w.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, Minute.Name()).Scan(&n); err != nil {
			return nil, fmt.Errorf("cannot read system.tables: %w", err)
		}
		if n > 0 {
			return nil, fmt.Errorf("database %s on %s holds single-server rollup tables: a cluster database is created empty "+
				"(copy the data afterwards; docs/operations.md, \"Moving to a cluster\")", db, redact(w.dsn))
		}
	} else if found != cluster {
		return nil, fmt.Errorf("database %s was created on cluster %q, not %q", db, found, cluster)
	}
	all, latest, err := migrationsUpTo(upTo)
	if err != nil {
		return nil, err
	}
	version := all[len(all)-1].Version
	// Nothing on the cluster is touched when the schema is complete: ON
	// CLUSTER DDL waits for every member, and an aggregator starting while
	// a replica is down must not.
	var applied map[int]string
	if found != "" {
		if applied, err = w.applied(ctx); err != nil {
			return nil, err
		}
		if len(applied) > 0 && len(applied) < len(all) && !upgrade {
			// Before any DDL or lock: this member's replica of
			// schema_migrations may only lag behind.
			if err := w.exec(ctx, "SYSTEM SYNC REPLICA "+db+".schema_migrations"); err != nil {
				return nil, fmt.Errorf("cannot sync %s.schema_migrations: %w", db, err)
			}
			if applied, err = w.applied(ctx); err != nil {
				return nil, err
			}
			if err := upgradeNeeded(db, cluster, all, applied); err != nil {
				return nil, err
			}
		}
	}
	if len(applied) < len(all) {
		if err := w.checkMembers(ctx, cluster, topo, "migrate"); err != nil {
			return nil, err
		}
		for _, d := range []string{db, local} {
			if err := w.exec(ctx, "CREATE DATABASE IF NOT EXISTS "+d+on); err != nil {
				return nil, fmt.Errorf("cannot create database %s on cluster %s: %w", d, cluster, err)
			}
		}
		if err := w.exec(ctx, `CREATE TABLE IF NOT EXISTS `+db+`.schema_migrations`+on+`
(version UInt32, name String, checksum String, applied_at DateTime)
ENGINE = ReplicatedMergeTree('`+replicatedPath(cluster, db, "schema_migrations", version, false)+`', '{replica}') ORDER BY version`); err != nil {
			return nil, fmt.Errorf("cannot create %s.schema_migrations on cluster %s: %w", db, cluster, err)
		}
		if applied, err = w.applied(ctx); err != nil {
			return nil, err
		}
	}
	if len(applied) < len(all) {
		unlock, err := w.lock(ctx)
		if err != nil {
			return nil, err
		}
		defer unlock()
		// This member's replica of schema_migrations may lag behind an
		// upgrade another member applied: read it once it has synced.
		if err := w.exec(ctx, "SYSTEM SYNC REPLICA "+db+".schema_migrations"); err != nil {
			return nil, fmt.Errorf("cannot sync %s.schema_migrations before migrating: %w", db, err)
		}
		if applied, err = w.applied(ctx); err != nil {
			return nil, err
		}
	}
	if len(applied) > 0 && !upgrade {
		if err := upgradeNeeded(db, cluster, all, applied); err != nil {
			return nil, err
		}
	}
	var out []MigrationResult
	switch {
	case len(applied) == 0:
		if err := w.createClusterSchema(ctx, cluster, version); err != nil {
			return nil, err
		}
		// One block: a reader never sees part of them recorded, which
		// would read as a database to upgrade.
		if err := w.record(ctx, all...); err != nil {
			return out, fmt.Errorf("cannot record the migrations: %w", err)
		}
		for _, m := range all {
			out = append(out, MigrationResult{Version: m.Version, Name: m.Name, Applied: true})
		}
	case len(applied) < len(all):
		for _, m := range all {
			sum := sha256.Sum256([]byte(m.SQL))
			if _, ok := applied[m.Version]; ok {
				out = append(out, MigrationResult{Version: m.Version, Name: m.Name, ChecksumMismatch: applied[m.Version] != hex.EncodeToString(sum[:])})
				continue
			}
			if err := w.upgradeCluster(ctx, cluster, m); err != nil {
				return out, err
			}
			if err := w.record(ctx, m); err != nil {
				return out, fmt.Errorf("cannot record migration %s: %w", m.Name, err)
			}
			out = append(out, MigrationResult{Version: m.Version, Name: m.Name, Applied: true})
		}
	default:
		for _, m := range all {
			sum := sha256.Sum256([]byte(m.SQL))
			out = append(out, MigrationResult{Version: m.Version, Name: m.Name, ChecksumMismatch: applied[m.Version] != hex.EncodeToString(sum[:])})
		}
	}
	if version != latest {
		return out, nil // an older schema than the columns declared here
	}
	return out, w.checkCluster(ctx)
}

// clusterUpgradeRE matches what a migration may do to be applied to a
// cluster by upgradeCluster: drop a rollup's input table, its view or a
// summary's view (0010), or alter a rollup, its input table or view (the
// fence of 0003), by name.
var clusterUpgradeRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile("^(ALTER TABLE|DROP TABLE IF EXISTS) ([A-Za-z0-9_]+)\\.(usage_1[mhd](_input_v[0-9]+|_mv_v[0-9]+)?|usage_model_1[hdw](_mv_v[0-9]+))( .*)?$")
})

// clusterFillRE matches the two statements of a summary's fill (0009):
// emptying it (DROP TABLE IF EXISTS, redone as dropping its partitions)
// and filling it from its rollup (INSERT … SELECT … FROM the rollup).
var clusterFillRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile("^(DROP TABLE IF EXISTS|INSERT INTO) ([A-Za-z0-9_]+)\\.(usage_model_1[hdw])( .*)?$")
})

// upgradeCluster applies migration m to a cluster database. Its ALTER and
// DROP statements run on every member in turn, each guard asked on that
// member first: those of a rollup against both the shard-local table and
// the Distributed table over it, those of an input table or view against
// the local database. Not ON CLUSTER: 18.16 refuses it for the
// non-replicated tables of a cluster with internal replication, and a
// replicated ALTER, run on one replica, reaches the others through
// ZooKeeper (which their guards then see). Its CREATE statements are not
// run: what the migration creates is then created from the scratch build
// of the schema, as for a new cluster database (createClusterSchema, IF
// NOT EXISTS). A per-model summary's fill (0009) then runs on one replica
// of every shard, from that shard's rollup, into the summary emptied first
// (its partitions dropped), so that a run that died halfway is redone; no
// aggregator lands meanwhile (the old input tables are fenced, and new
// aggregators refuse a database that lacks migrations: ErrClusterUpgrade). A migration that does anything
// else (copies other data, creates views over dropped ones) is refused with
// an error that names it. Every member must be up.
func (w *Warehouse) upgradeCluster(ctx context.Context, cluster string, m chschema.Migration) error {
	db, local := w.database, LocalDatabase(w.database)
	type step struct{ sql, guard string }
	var steps []step
	var fills []string // summary fills, in the local database
	for _, st := range m.Steps(db) {
		q := strings.Join(strings.Fields(st.SQL), " ")
		if strings.HasPrefix(q, "CREATE ") {
			continue
		}
		if fm := clusterFillRE().FindStringSubmatch(q); fm != nil && fm[2] == db {
			if fm[1] == "INSERT INTO" {
				fills = append(fills, strings.ReplaceAll(q, " "+db+".", " "+local+"."))
			}
			continue
		}
		sm := clusterUpgradeRE().FindStringSubmatch(q)
		if sm == nil || sm[2] != db {
			return fmt.Errorf("cannot upgrade database %s on cluster %s to migration %s: its statement %q has no cluster form in this costpipe (see docs/operations.md, \"Running on a ClickHouse cluster\")",
				db, cluster, m.Name, firstLine(q))
		}
		targets := []string{local}
		if sm[4] == "" && sm[5] == "" {
			targets = append(targets, db) // a rollup: the Distributed table too
		}
		for _, target := range targets {
			steps = append(steps, step{
				sql:   sm[1] + " " + target + "." + sm[3] + sm[6],
				guard: strings.ReplaceAll(st.OnlyIf, "database = '"+db+"'", "database = '"+target+"'"),
			})
		}
	}
	topo, err := w.Topology(ctx, cluster)
	if err != nil {
		return err
	}
	o := DefaultOptions()
	o.DSN, o.TLS, o.MaxOpenConns = w.dsn, w.tls, 1
	var (
		members []*Warehouse
		addrs   []string
		firsts  []int // each shard's first member, in members
	)
	defer func() {
		for _, mw := range members {
			mw.Close()
		}
	}()
	for _, shard := range topo.Shards {
		firsts = append(firsts, len(members))
		for _, addr := range shard {
			mw, err := openAtWith(ctx, o, addr, db, migrationReadTimeout)
			if err != nil {
				return fmt.Errorf("migration %s on cluster %s needs every member: %w", m.Name, cluster, err)
			}
			members, addrs = append(members, mw), append(addrs, addr)
		}
	}
	for _, st := range steps {
		for i, mw := range members {
			if st.guard != "" {
				var ok uint8
				if err := mw.conn.QueryRow(ctx, st.guard).Scan(&ok); err != nil {
					return fmt.Errorf("migration %s on cluster %s, member %s: guard %q: %w", m.Name, cluster, addrs[i], st.guard, err)
				}
				if ok != 1 {
					continue
				}
			}
			version, err := mw.ServerVersion(ctx)
			if err != nil {
				return fmt.Errorf("migration %s on cluster %s, member %s: %w", m.Name, cluster, addrs[i], err)
			}
			if err := mw.execWith(ctx, st.sql, alterSettings(version, st.sql)); err != nil {
				return fmt.Errorf("migration %s on cluster %s, member %s: %q: %w", m.Name, cluster, addrs[i], firstLine(st.sql), err)
			}
		}
	}
	if err := w.createClusterSchema(ctx, cluster, m.Version); err != nil {
		return err
	}
	// A fill reads the rollups of one replica per shard: that replica
	// first fetches what the shard's other replicas hold (one that was
	// down and is catching up would fill the summaries short for good).
	if len(fills) > 0 {
		for _, i := range firsts {
			if err := members[i].syncRollups(ctx, local); err != nil {
				return fmt.Errorf("migration %s on cluster %s, member %s, before filling the summaries: %w", m.Name, cluster, addrs[i], err)
			}
		}
	}
	for _, q := range fills {
		fm := clusterFillRE().FindStringSubmatch(q)
		table := local + "." + fm[3]
		for _, i := range firsts {
			if err := members[i].emptyTable(ctx, table); err != nil {
				return fmt.Errorf("migration %s on cluster %s, member %s: %w", m.Name, cluster, addrs[i], err)
			}
			if err := members[i].execWith(ctx, q, clickhouse.Settings{"insert_deduplicate": 0}); err != nil { // as NoDeduplication
				return fmt.Errorf("migration %s on cluster %s, member %s: %q: %w", m.Name, cluster, addrs[i], firstLine(q), err)
			}
		}
	}
	return nil
}

// emptyTable drops every partition of the (replicated) table db.name.
func (w *Warehouse) emptyTable(ctx context.Context, table string) error {
	db, name, _ := strings.Cut(table, ".")
	months, err := partitionsOf(ctx, w, db, name)
	if err != nil {
		return err
	}
	for _, m := range months {
		if err := w.exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %d", table, m)); err != nil {
			return fmt.Errorf("cannot empty %s: %w", table, err)
		}
	}
	return nil
}

// exec runs a statement on a connection that waits as long as ctx allows:
// ON CLUSTER DDL answers once every member has run it.
func (w *Warehouse) exec(ctx context.Context, q string) error { return w.execWith(ctx, q, nil) }

// execWith is exec with more settings (alterSettings).
func (w *Warehouse) execWith(ctx context.Context, q string, extra clickhouse.Settings) error {
	set := clickhouse.Settings{"distributed_ddl_task_timeout": 300}
	for k, v := range extra {
		set[k] = v
	}
	return explainKeeper(w.conn.Exec(clickhouse.Context(ctx, clickhouse.WithSettings(set)), q))
}

// keeperException is ClickHouse's KEEPER_EXCEPTION (its message is only
// ZooKeeper's, such as "Session expired").
const keeperException = 999

// explainKeeper adds to a KEEPER_EXCEPTION that it comes from the
// cluster's ZooKeeper or ClickHouse Keeper, which replicated tables and ON
// CLUSTER statements need: "Session expired" alone does not say so.
func explainKeeper(err error) error {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == keeperException {
		return fmt.Errorf("%w (ZooKeeper or ClickHouse Keeper error: check that the servers' <zookeeper> ensemble is up and reachable from every member)", err)
	}
	return err
}

// checkCluster checks the columns of the local rollup tables, their input
// tables and views, and of the Distributed tables (CheckSchema).
func (w *Warehouse) checkCluster(ctx context.Context) error {
	lw := *w
	lw.database = LocalDatabase(w.database)
	if err := lw.CheckSchema(ctx); err != nil {
		return err
	}
	return w.checkTables(ctx, false)
}

// createClusterSchema applies the migrations to a scratch database and
// recreates its tables on the cluster.
func (w *Warehouse) createClusterSchema(ctx context.Context, cluster string, version int) error {
	db, local := w.database, LocalDatabase(w.database)
	scratch := db + "_costpipe_scratch"
	on := " ON CLUSTER `" + cluster + "`"
	if err := w.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+scratch); err != nil {
		return fmt.Errorf("cannot drop the scratch database %s: %w", scratch, err)
	}
	sw := *w
	sw.database = scratch
	if _, err := sw.migrate(ctx, version); err != nil {
		return fmt.Errorf("cannot build the schema in the scratch database %s: %w", scratch, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = w.conn.Exec(dctx, "DROP DATABASE IF EXISTS "+scratch)
	}()

	type object struct{ name, engine, query string }
	rows, err := w.conn.Query(ctx, "SELECT name, engine, create_table_query FROM system.tables WHERE database = ? ORDER BY name", scratch)
	if err != nil {
		return fmt.Errorf("cannot list the scratch database's tables: %w", err)
	}
	var objs []object
	for rows.Next() {
		var o object
		if err := rows.Scan(&o.name, &o.engine, &o.query); err != nil {
			rows.Close()
			return fmt.Errorf("cannot list the scratch database's tables: %w", err)
		}
		objs = append(objs, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot list the scratch database's tables: %w", err)
	}

	rollup := map[string]bool{}
	// The rollups' input tables and views, of this version or (for a
	// cluster built at an older version) another.
	localOnlyRE := regexp.MustCompile(`^usage_(model_)?1[mhdw]_(input|mv)_v\d+$`)
	localOnly := map[string]bool{}
	// Upgrade leftovers (the single-server chain keeps old rollups as
	// usage_G_vN) and the migration bookkeeping are not recreated.
	var olds []*regexp.Regexp
	for _, t := range Tables {
		rollup[t.Name()] = true
		localOnly[t.InputName()], localOnly[t.MVName()] = true, true
		olds = append(olds, regexp.MustCompile("^"+t.Name()+`_v\d+$`))
	}
	for _, t := range SummaryTables {
		rollup[t.ModelName()], localOnly[t.ModelMVName()] = true, true
	}
	for _, o := range objs {
		if localOnlyRE.MatchString(o.name) {
			localOnly[o.name] = true
		}
	}
	leftover := func(name string) bool {
		for _, re := range olds {
			if re.MatchString(name) {
				return true
			}
		}
		return name == "schema_migrations" || name == "schema_migrations_lock"
	}
	// recreate turns a scratch CREATE into its cluster form in target.
	recreate := func(o object, target string, sharded bool) (string, error) {
		m := createRE().FindStringSubmatchIndex(o.query)
		if m == nil {
			return "", fmt.Errorf("cannot read the CREATE statement of %s.%s: %.80q", scratch, o.name, o.query)
		}
		kind := o.query[m[2]:m[3]]
		q := "CREATE " + kind + " IF NOT EXISTS " + target + "." + o.name + on + o.query[m[1]:]
		q = strings.ReplaceAll(q, "`"+scratch+"`.", target+".")
		q = strings.ReplaceAll(q, scratch+".", target+".")
		if kind == "TABLE" {
			em := engineRE().FindStringSubmatchIndex(q)
			if em != nil {
				args := ""
				if em[6] >= 0 && strings.TrimSpace(q[em[6]:em[7]]) != "" {
					args = ", " + q[em[6]:em[7]]
				}
				path := replicatedPath(cluster, db, o.name, version, sharded)
				q = q[:em[0]] + "ENGINE = Replicated" + q[em[2]:em[3]] + "MergeTree('" + path + "', '{replica}'" + args + ")" + q[em[1]:]
			}
		}
		return q, nil
	}

	var tables, inputs, mvs, dist, others, views []string
	for _, o := range objs {
		var (
			q   string
			err error
		)
		switch {
		case leftover(o.name):
			continue
		case rollup[o.name]:
			if q, err = recreate(o, local, true); err == nil {
				tables = append(tables, q)
				dist = append(dist, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s AS %s.%s ENGINE = Distributed('%s', '%s', '%s')",
					db, o.name, on, local, o.name, cluster, local, o.name))
			}
		case localOnly[o.name] && o.engine == "MaterializedView":
			q, err = recreate(o, local, true)
			mvs = append(mvs, q)
		case localOnly[o.name]:
			q, err = recreate(o, local, true)
			inputs = append(inputs, q)
		case o.engine == "View":
			q, err = recreate(o, db, false)
			views = append(views, q)
		default:
			q, err = recreate(o, db, false)
			others = append(others, q)
		}
		if err != nil {
			return err
		}
	}
	for _, group := range [][]string{tables, inputs, mvs, dist, others} {
		for _, q := range group {
			if err := w.exec(ctx, q); err != nil {
				return fmt.Errorf("cannot create on cluster %s (%q): %w", cluster, firstLine(q), err)
			}
		}
	}
	// Views may read other views: create what can be, round after round.
	for len(views) > 0 {
		var later []string
		var lastErr error
		for _, q := range views {
			if err := w.exec(ctx, q); err != nil {
				later, lastErr = append(later, q), fmt.Errorf("cannot create on cluster %s (%q): %w", cluster, firstLine(q), err)
			}
		}
		if len(later) == len(views) {
			return lastErr
		}
		views = later
	}
	return nil
}

// Sharded lands rollups on a cluster's shards. Kafka partition p lands on
// shard p mod shards (system.clusters order), into that shard's local tables
// on one replica, where its landing marks are read too.
//
// A shard's replica is chosen before first use and after any error: the
// first, in <remote_servers> order, that answers SYSTEM SYNC REPLICA for the
// three rollup tables within SyncTimeout. Syncing first makes the choice
// safe: a replica that finished its replication queue holds every part any
// replica acknowledged, so its landing marks are complete, even when another
// aggregator wrote this partition through another replica before a
// rebalance. A replica that cannot sync (another replica holding parts it
// has not fetched is down) is not used; when none can, the call fails and
// the pipeline retries with backoff, with its data still in Kafka.
//
// Its methods are safe for concurrent use; they take turns.
type Sharded struct {
	mu          sync.Mutex
	topo        Topology
	opts        Options
	database    string // the local database
	SyncTimeout time.Duration
	shards      []*shard
}

type shard struct {
	num   int
	addrs []string
	// w is the connection to the replica in use; nil until one is chosen.
	w *Warehouse
}

// OpenSharded connects to the server of o.DSN, reads cluster's topology and
// returns a Sharded landing into LocalDatabase of the DSN's database.
// Connections to the shards' replicas open on first use.
func OpenSharded(ctx context.Context, o Options, cluster string) (*Sharded, error) {
	entry, err := Open(ctx, o)
	if err != nil {
		return nil, err
	}
	defer entry.Close()
	topo, err := entry.Topology(ctx, cluster)
	if err != nil {
		return nil, err
	}
	s := &Sharded{topo: topo, opts: o, database: LocalDatabase(entry.database), SyncTimeout: 30 * time.Second}
	for i, addrs := range topo.Shards {
		s.shards = append(s.shards, &shard{num: i + 1, addrs: addrs})
	}
	return s, nil
}

// Topology is the cluster's shards and replicas as read at open.
func (s *Sharded) Topology() Topology { return s.topo }

// ShardOf is the index (from 0) of the shard partition lands on.
func (s *Sharded) ShardOf(partition int32) int {
	return int(uint32(partition) % uint32(len(s.shards)))
}

// InsertRollups inserts rows, all of one shard's partitions and one month,
// into that shard as one block (see Warehouse.InsertRollups).
func (s *Sharded) InsertRollups(ctx context.Context, t Table, rows []Rollup) error {
	if len(rows) == 0 {
		return nil
	}
	i := s.ShardOf(rows[0].SrcPartition)
	for _, r := range rows {
		if s.ShardOf(r.SrcPartition) != i {
			return fmt.Errorf("cannot insert into %s: rows of partitions %d and %d belong to shards %d and %d (an insert must touch one shard)",
				t.Name(), rows[0].SrcPartition, r.SrcPartition, i+1, s.ShardOf(r.SrcPartition)+1)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shards[i]
	w, err := s.replica(ctx, sh)
	if err != nil {
		return err
	}
	if err := w.InsertRollups(ctx, t, rows); err != nil {
		s.forget(sh)
		return fmt.Errorf("shard %d: %w", sh.num, err)
	}
	return nil
}

// LandingMarks reads the marks of each partition from its shard's replica
// (Warehouse.LandingMarks).
func (s *Sharded) LandingMarks(ctx context.Context, topic string, partitions []int32, since Month) (map[MarkKey]int64, error) {
	by := map[int][]int32{}
	for _, p := range partitions {
		by[s.ShardOf(p)] = append(by[s.ShardOf(p)], p)
	}
	out := map[MarkKey]int64{}
	idx := make([]int, 0, len(by))
	for i := range by {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range idx {
		sh := s.shards[i]
		w, err := s.replica(ctx, sh)
		if err != nil {
			return nil, err
		}
		// Sync before every read: a partition handed over by a rebalance
		// may have landed through another replica.
		if err := s.sync(ctx, w); err != nil {
			s.forget(sh)
			return nil, fmt.Errorf("shard %d: %w", sh.num, err)
		}
		marks, err := w.LandingMarks(ctx, topic, by[i], since)
		if err != nil {
			s.forget(sh)
			return nil, fmt.Errorf("shard %d: %w", sh.num, err)
		}
		for k, v := range marks {
			out[k] = v
		}
	}
	return out, nil
}

// replica returns the connection to the shard's replica in use, choosing one
// (and syncing it) when there is none.
func (s *Sharded) replica(ctx context.Context, sh *shard) (*Warehouse, error) {
	if sh.w != nil {
		return sh.w, nil
	}
	var errs []error
	for _, addr := range sh.addrs {
		w, err := openAt(ctx, s.opts, addr, s.database)
		if err == nil {
			if err = s.sync(ctx, w); err == nil {
				sh.w = w
				return w, nil
			}
			w.Close()
		}
		errs = append(errs, fmt.Errorf("replica %s: %w", addr, err))
	}
	return nil, fmt.Errorf("no replica of shard %d can be used: %w", sh.num, errors.Join(errs...))
}

// sync waits, up to SyncTimeout, until the replica has fetched every part
// its shard's other replicas acknowledged.
func (s *Sharded) sync(ctx context.Context, w *Warehouse) error {
	sctx, cancel := context.WithTimeout(ctx, s.SyncTimeout)
	defer cancel()
	return w.syncRollups(sctx, w.database)
}

// syncRollups waits, as long as ctx allows, until this replica of db's
// rollup tables has fetched every part its shard's other replicas
// acknowledged (SYSTEM SYNC REPLICA).
func (w *Warehouse) syncRollups(ctx context.Context, db string) error {
	for _, t := range Tables {
		if err := w.conn.Exec(ctx, "SYSTEM SYNC REPLICA "+db+"."+t.Name()); err != nil {
			return fmt.Errorf("cannot sync %s.%s with its shard's other replicas: %w", db, t.Name(), explainKeeper(err))
		}
	}
	return nil
}

// SyncReplicas waits, up to SyncTimeout per replica, until every replica
// of every shard has fetched the parts its shard's other replicas
// acknowledged: a read through the Distributed tables then sees them
// whichever replica answers. reprice calls it before reading the cost it
// corrects, so that a rerun never reads a replica that missed the first
// run's corrections (and lands them again). Every replica must answer.
func (s *Sharded) SyncReplicas(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sh := range s.shards {
		for _, addr := range sh.addrs {
			w, err := openAt(ctx, s.opts, addr, s.database)
			if err == nil {
				err = s.sync(ctx, w)
				w.Close()
			}
			if err != nil {
				return fmt.Errorf("replica %s of shard %d: %w (every replica must be in sync to read the stored cost exactly once)", addr, sh.num, err)
			}
		}
	}
	return nil
}

func (s *Sharded) forget(sh *shard) {
	if sh.w != nil {
		sh.w.Close()
		sh.w = nil
	}
}

// Close closes the shards' connections.
func (s *Sharded) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sh := range s.shards {
		s.forget(sh)
	}
	return nil
}

// openAt is Open on the server at addr, with database as the costpipe
// database, keeping the DSN's credentials and TLS settings.
func openAt(ctx context.Context, o Options, addr, database string) (*Warehouse, error) {
	return openAtWith(ctx, o, addr, database, 0)
}

// openAtWith is openAt with the connections' read timeout (0: the DSN's):
// a statement that copies a table answers only when it is done.
func openAtWith(ctx context.Context, o Options, addr, database string, readTimeout time.Duration) (*Warehouse, error) {
	opts, _, err := parseDSN(o.DSN)
	if err != nil {
		return nil, err
	}
	applyTLS(opts, o.TLS)
	opts.Addr = []string{addr}
	opts.Auth.Database = "default"
	opts.DialTimeout = o.DialTimeout
	if readTimeout > 0 {
		opts.ReadTimeout = readTimeout
	}
	opts.MaxOpenConns, opts.MaxIdleConns = o.MaxOpenConns, o.MaxOpenConns
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot open clickhouse at %s: %w", addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("cannot reach clickhouse at %s: %w", addr, err)
	}
	return &Warehouse{conn: conn, database: database, dsn: o.DSN, tls: o.TLS, lockWait: o.MigrateLockWait, enc: new(nativeBuf), closed: new(sync.Once)}, nil
}

// memberCheckTimeout bounds the ping of each member by checkMembers.
const memberCheckTimeout = 5 * time.Second

// checkMembers pings every member of topo and fails, naming the ones that
// do not answer, before what (migrate, retention) sends ON CLUSTER
// statements: with a member down ClickHouse waits
// distributed_ddl_task_timeout (150 s by default) without a word, then
// fails, having applied the statement on the other members only (a
// retention drop forwarded to a dead replica left the live replica of its
// shard undropped).
func (w *Warehouse) checkMembers(ctx context.Context, cluster string, topo Topology, what string) error {
	o := Options{DSN: w.dsn, TLS: w.tls, DialTimeout: memberCheckTimeout, MaxOpenConns: 1}
	var down []string
	for i, addrs := range topo.Shards {
		for _, addr := range addrs {
			pctx, cancel := context.WithTimeout(ctx, memberCheckTimeout)
			m, err := openAt(pctx, o, addr, w.database)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				down = append(down, fmt.Sprintf("%s (shard %d): %v", addr, i+1, err))
				continue
			}
			m.Close()
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("cannot %s on cluster %s: %d member(s) do not answer, and an ON CLUSTER statement needs every member (it would wait distributed_ddl_task_timeout, then leave the change on the others only); bring them back, or drop them from <remote_servers>:\n  %s",
			what, cluster, len(down), strings.Join(down, "\n  "))
	}
	return nil
}
