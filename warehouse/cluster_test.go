package warehouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/costpipe/costpipe/internal/chtest"
)

func openCluster(t *testing.T, c *chtest.Cluster, db string) *Warehouse {
	t.Helper()
	opts := DefaultOptions()
	opts.DSN = c.DSN(db)
	w, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// engines returns name → engine of db's tables on s.
func engines(t *testing.T, s *chtest.Server, db string) map[string]string {
	t.Helper()
	rows, err := s.Conn(t, "default").Query(t.Context(), "SELECT name, engine FROM system.tables WHERE database = ?", db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, e string
		if err := rows.Scan(&n, &e); err != nil {
			t.Fatal(err)
		}
		out[n] = e
	}
	return out
}

// TestMigrateCluster creates the schema on two shards of one replica and on
// one shard of two replicas: every member gets the local rollups (Replicated),
// their inputs and views, the Distributed tables and the rest; the layout is
// checked against the single-server schema's tables; a second run, and
// Migrate (which recognises the cluster), change nothing.
func TestMigrateCluster(t *testing.T) {
	t.Parallel()
	for _, shape := range []struct{ shards, replicas int }{{2, 1}, {1, 2}} {
		t.Run(strings.Repeat("s", shape.shards)+strings.Repeat("r", shape.replicas), func(t *testing.T) {
			c := chtest.StartCluster(t, chtest.ClusterOptions{Shards: shape.shards, Replicas: shape.replicas})
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			w := openCluster(t, c, "costpipe")
			res, err := w.MigrateCluster(ctx, c.Name)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if !r.Applied {
					t.Errorf("first run: %s not applied", r.Name)
				}
			}
			single := chtest.Shared(t)
			sw := openSingle(t, single, "cp_cluster_ref")
			if _, err := sw.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			ref := engines(t, single, "cp_cluster_ref")
			for _, s := range c.Servers() {
				got, loc := engines(t, s, "costpipe"), engines(t, s, "costpipe_local")
				var names []string
				for _, tb := range Tables {
					names = append(names, tb.Name())
				}
				for _, tb := range SummaryTables {
					names = append(names, tb.ModelName())
				}
				for _, name := range names {
					if got[name] != "Distributed" {
						t.Errorf("%s: costpipe.%s is %q, want Distributed", s.TCPAddr, name, got[name])
					}
					if want := "Replicated" + ref[name]; loc[name] != want {
						t.Errorf("%s: costpipe_local.%s is %q, want %s", s.TCPAddr, name, loc[name], want)
					}
				}
				var locals []string
				for _, tb := range Tables {
					locals = append(locals, tb.InputName(), tb.MVName())
				}
				for _, tb := range SummaryTables {
					locals = append(locals, tb.ModelMVName())
				}
				for _, n := range locals {
					if loc[n] != ref[n] {
						t.Errorf("%s: costpipe_local.%s is %q, want %q", s.TCPAddr, n, loc[n], ref[n])
					}
				}
				for n, e := range ref {
					switch {
					case (strings.HasPrefix(n, "usage_1") || strings.HasPrefix(n, "usage_model_")) && (strings.Contains(n, "_v") || got[n] == "Distributed"):
						// rollups, summaries, their inputs, views and kept copies: above
					case strings.HasSuffix(e, "MergeTree"):
						if got[n] != "Replicated"+e {
							t.Errorf("%s: costpipe.%s is %q, want Replicated%s", s.TCPAddr, n, got[n], e)
						}
					default:
						if got[n] != e {
							t.Errorf("%s: costpipe.%s is %q, want %s", s.TCPAddr, n, got[n], e)
						}
					}
				}
				if _, ok := got["costpipe_costpipe_scratch"]; ok {
					t.Errorf("scratch table left behind")
				}
			}
			again, err := w.Migrate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range again {
				if r.Applied || r.ChecksumMismatch {
					t.Errorf("second run: %+v", r)
				}
			}
			if got, err := w.ClusterOf(ctx); err != nil || got != c.Name {
				t.Errorf("ClusterOf = %q, %v; want %q", got, err, c.Name)
			}
			var n uint64
			if err := w.Conn().QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = 'costpipe_costpipe_scratch'").Scan(&n); err != nil || n != 0 {
				t.Errorf("scratch database left behind: %d, %v", n, err)
			}
		})
	}
}

func openSingle(t *testing.T, s *chtest.Server, db string) *Warehouse {
	t.Helper()
	opts := DefaultOptions()
	opts.DSN = s.DSN(db)
	w, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// shardedCluster starts two shards of one replica, creates the database
// "costpipe" on them and opens a Sharded on it.
func shardedCluster(t *testing.T) (*chtest.Cluster, *Warehouse, *Sharded) {
	t.Helper()
	c := chtest.StartCluster(t, chtest.ClusterOptions{Shards: 2, Replicas: 1})
	w := openCluster(t, c, "costpipe")
	if _, err := w.MigrateCluster(t.Context(), c.Name); err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.DSN = c.DSN("costpipe")
	s, err := OpenSharded(t.Context(), opts, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return c, w, s
}

// TestShardedLanding lands rows of four partitions on two shards: each
// partition's rows are on its shard only, the marks come back per
// partition, and the Distributed table sums both shards. An insert mixing
// shards is refused.
func TestShardedLanding(t *testing.T) {
	t.Parallel()
	c, w, s := shardedCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	ts := time.Date(2026, 11, 3, 10, 7, 0, 0, time.UTC)
	for p := int32(0); p < 4; p++ {
		if err := s.InsertRollups(ctx, Minute, []Rollup{testRollup(ts, p, 100+int64(p), 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.InsertRollups(ctx, Minute, []Rollup{testRollup(ts, 0, 5, 1), testRollup(ts, 1, 5, 1)}); err == nil || !strings.Contains(err.Error(), "one shard") {
		t.Errorf("insert across shards: %v, want refused", err)
	}
	marks, err := s.LandingMarks(ctx, "costpipe.events", []int32{0, 1, 2, 3}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 4; p++ {
		if got := marks[MarkKey{Table: Minute, Month: 202611, Partition: p}]; got != 100+int64(p) {
			t.Errorf("partition %d: mark %d, want %d", p, got, 100+p)
		}
	}
	for i, sh := range c.Shards {
		var parts []int32
		rows, err := sh[0].Conn(t, "default").Query(ctx, "SELECT DISTINCT src_partition FROM costpipe_local.usage_1m ORDER BY src_partition")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var p int32
			rows.Scan(&p)
			parts = append(parts, p)
		}
		rows.Close()
		if len(parts) != 2 || int(parts[0])%2 != i || int(parts[1])%2 != i {
			t.Errorf("shard %d holds partitions %v, want those ≡ %d mod 2", i+1, parts, i)
		}
	}
	var req uint64
	if err := w.Conn().QueryRow(ctx, "SELECT sumMerge(requests) FROM costpipe.usage_1m").Scan(&req); err != nil || req != 44 {
		t.Errorf("Distributed total requests %d, %v; want 44", req, err)
	}

	// Inserts whose blocks may be identical to earlier ones (reprice
	// corrections: reprice, revert, reprice again) land with
	// NoDeduplication: both count. Replicated deduplication dropped the
	// second (11 requests where 22 were inserted).
	hour := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	for _, off := range []int64{200, 200} {
		for _, tb := range []Table{Hour, Day} {
			if err := s.InsertRollups(NoDeduplication(ctx), tb, []Rollup{testRollup(tb.Truncate(hour), 0, off, 1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	requests := func(table string) uint64 {
		t.Helper()
		var n uint64
		if err := w.Conn().QueryRow(ctx, "SELECT sumMerge(requests) FROM costpipe."+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, table := range []string{"usage_1h", "usage_model_1h", "usage_1d", "usage_model_1d", "usage_model_1w"} {
		if n := requests(table); n != 22 {
			t.Errorf("%s: %d requests; want 22 (two identical inserts of 11 without deduplication)", table, n)
		}
	}
	// The aggregator's landing keeps deduplication: a retried batch (the
	// same rows, its first insert committed after all) is dropped.
	for range 2 {
		if err := s.InsertRollups(ctx, Hour, []Rollup{testRollup(hour, 0, 400, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := requests("usage_1h"); n != 33 {
		t.Errorf("usage_1h after a batch inserted twice: %d requests; want 33 (the retry dropped)", n)
	}
}

// TestClusterRetention drops an expired month of usage_1m on both shards
// (listed through every shard's system.parts, dropped ON CLUSTER) and keeps
// the current one.
func TestClusterRetention(t *testing.T) {
	t.Parallel()
	c, w, s := shardedCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	old := time.Date(2026, 9, 10, 10, 0, 0, 0, time.UTC)
	for p := int32(0); p < 2; p++ {
		for i, ts := range []time.Time{old, now} {
			if err := s.InsertRollups(ctx, Minute, []Rollup{testRollup(ts, p, int64(i), 1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ro := DefaultRetentionOptions()
	ro.Now = func() time.Time { return now }
	got, err := w.Retention(ctx, ro)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Month != 202609 || !got[0].Dropped || got[0].Rows != 2 || got[0].Database != "costpipe_local" {
		t.Fatalf("Retention = %+v, want 202609 of costpipe_local.usage_1m dropped, 2 rows (one per shard)", got)
	}
	for i, sh := range c.Shards {
		var months []uint32
		rows, err := sh[0].Conn(t, "default").Query(ctx, "SELECT DISTINCT toYYYYMM(ts) FROM costpipe_local.usage_1m")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var m uint32
			rows.Scan(&m)
			months = append(months, m)
		}
		rows.Close()
		if len(months) != 1 || months[0] != 202612 {
			t.Errorf("shard %d keeps months %v, want [202612]", i+1, months)
		}
	}
}

// TestClusterOfDuringMigration reads ClusterOf over and over while another
// process's migration creates and drops tables on one server (aggregators
// starting at once): 18.16's system.tables fails such reads now and then
// (UNKNOWN_TABLE of a table being dropped), which must not fail the reader.
func TestClusterOfDuringMigration(t *testing.T) {
	t.Parallel()
	var reads int
	for range 4 {
		w, _, db := openTest(t)
		if err := w.Conn().Exec(t.Context(), "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := w.migrate(t.Context(), 100)
			done <- err
		}()
	loop:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				break loop
			default:
			}
			reads++
			if c, err := w.ClusterOf(t.Context()); err != nil || c != "" {
				t.Fatalf("ClusterOf during a migration = %q, %v; want \"\" (one server)", c, err)
			}
		}
	}
	t.Logf("%d reads during 4 migrations", reads)
}

// TestClusterUpgrade creates a cluster database at schema 0007 on one shard
// of two replicas, lands rows through a 0007 input table, and upgrades it
// (0008 and 0009, upgradeCluster): both replicas and the Distributed tables get the
// new columns, every measure and landing mark reads as before, the 0007
// input tables are gone, and this version lands. A second run changes
// nothing. Then a failover to a replica that lags: LandingMarks waits for
// what the other replica landed.
func TestClusterUpgrade(t *testing.T) {
	t.Parallel()
	c := chtest.StartCluster(t, chtest.ClusterOptions{Shards: 1, Replicas: 2})
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	w := openCluster(t, c, "costpipe")
	if _, err := w.migrateCluster(ctx, c.Name, 7, false); err != nil {
		t.Fatal(err)
	}
	servers := c.Servers()
	first := openSingle(t, servers[0], "costpipe_local")
	base := time.Date(2026, 1, 31, 22, 58, 0, 0, time.UTC)
	for _, tb := range Tables {
		byMonth := map[Month][]Rollup{}
		for i := 0; i < 12; i++ {
			ts := tb.Truncate(base.Add(time.Duration(i*17) * time.Minute))
			r := testRollup(ts, int32(i%3), int64(10+i), uint64(1+i))
			r.Tenant = fmt.Sprintf("t%d", i%4)
			byMonth[MonthOf(ts)] = append(byMonth[MonthOf(ts)], r)
		}
		for _, rows := range byMonth {
			if err := insertInput(first, tb.Name()+"_input_v7", rows); err != nil {
				t.Fatal(err)
			}
		}
	}
	syncAll := func(summaries bool) {
		t.Helper()
		for _, s := range servers {
			var names []string
			for _, tb := range Tables {
				names = append(names, tb.Name())
			}
			if summaries {
				for _, tb := range SummaryTables {
					names = append(names, tb.ModelName())
				}
			}
			for _, name := range names {
				if err := s.Conn(t, "default").Exec(ctx, "SYSTEM SYNC REPLICA costpipe_local."+name); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	syncAll(false)
	before := takeSnapshot(t, w)

	// Only migrate upgrades a cluster: an aggregator (MigrateCluster)
	// starting on another member at the same time would take that
	// member's lock and fill the summaries a second time.
	if _, err := w.MigrateCluster(ctx, c.Name); !errors.Is(err, ErrClusterUpgrade) || !strings.Contains(err.Error(), "0010") {
		t.Fatalf("MigrateCluster of a database lacking 0008–0010: %v, want ErrClusterUpgrade naming them", err)
	}
	res, err := w.UpgradeCluster(ctx, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	if last := res[len(res)-1]; last.Version != 10 || !last.Applied {
		t.Fatalf("last migration %+v, want 0010 applied", last)
	}
	syncAll(true)
	before.mustEqual(t, takeSnapshot(t, w))
	// 0009 and 0010 filled the summaries from the shard's rollups, once
	// although the shard has two replicas.
	summariesMatch(t, w)
	for _, s := range servers {
		local := openSingle(t, s, "costpipe_local")
		if err := local.CheckSchema(ctx); err != nil {
			t.Errorf("%s: %v", s.TCPAddr, err)
		}
		for _, db := range []string{"costpipe_local", "costpipe"} {
			var n uint64
			if err := s.Conn(t, "default").QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = 'usage_1m' AND default_kind = 'ALIAS'", db).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != uint64(len(derivedColumns)) {
				t.Errorf("%s: %s.usage_1m has %d ALIAS columns, want %d", s.TCPAddr, db, n, len(derivedColumns))
			}
		}
		if err := insertInput(local, "usage_1m_input_v7", []Rollup{testRollup(base, 0, 1000, 1)}); err == nil {
			t.Errorf("%s: an insert into usage_1m_input_v7 succeeded after the upgrade", s.TCPAddr)
		}
	}
	opts := DefaultOptions()
	opts.DSN = c.DSN("costpipe")
	sh, err := OpenSharded(ctx, opts, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	late := testRollup(time.Date(2026, 2, 1, 0, 7, 0, 0, time.UTC), 1, 500, 4)
	if err := sh.InsertRollups(ctx, Minute, []Rollup{late}); err != nil {
		t.Fatal(err)
	}

	// Failover to a replica that has not fetched what the other one
	// landed: heir reads through the second replica, whose fetches stop
	// while sh lands through the first and resume a second later.
	// LandingMarks syncs before every read, so the partition's new owner
	// waits for the part instead of reading its mark short and landing
	// the batch again.
	heir, err := OpenSharded(ctx, opts, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer heir.Close()
	if addrs := sh.shards[0].addrs; len(addrs) != 2 || addrs[0] != servers[0].TCPAddr || addrs[1] != servers[1].TCPAddr {
		t.Fatalf("shard replicas %v, want [%s %s]", addrs, servers[0].TCPAddr, servers[1].TCPAddr)
	}
	heir.shards[0].addrs = []string{servers[1].TCPAddr, servers[0].TCPAddr}
	if _, err := heir.LandingMarks(ctx, "costpipe.events", []int32{1}, 0); err != nil {
		t.Fatal(err)
	}
	lagging := servers[1].Conn(t, "default")
	fetches := func(verb string) error {
		for _, tb := range Tables {
			if err := lagging.Exec(ctx, "SYSTEM "+verb+" FETCHES costpipe_local."+tb.Name()); err != nil {
				return err
			}
		}
		return nil
	}
	if err := fetches("STOP"); err != nil {
		t.Fatal(err)
	}
	if err := sh.InsertRollups(ctx, Minute, []Rollup{testRollup(time.Date(2026, 11, 3, 10, 7, 0, 0, time.UTC), 1, 900, 1)}); err != nil {
		t.Fatal(err)
	}
	// The lag is real: the second replica does not hold the batch yet,
	// and heir reads through it (not through the first, as a failed
	// open or sync would make it).
	macro := func(conn driver.Conn) string {
		var r string
		if err := conn.QueryRow(ctx, "SELECT substitution FROM system.macros WHERE macro = 'replica'").Scan(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if got, want := macro(heir.shards[0].w.conn), macro(lagging); got != want {
		t.Fatalf("heir reads through replica %s, want the lagging %s", got, want)
	}
	var held uint64
	if err := lagging.QueryRow(ctx, "SELECT count() FROM costpipe_local.usage_1m WHERE src_partition = 1 AND toYYYYMM(ts) = 202611").Scan(&held); err != nil || held != 0 {
		t.Fatalf("the lagging replica holds %d rows of the new batch (%v), want 0", held, err)
	}
	resumed := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		resumed <- fetches("START")
	}()
	marks, err := heir.LandingMarks(ctx, "costpipe.events", []int32{1}, 0)
	if err := <-resumed; err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := marks[MarkKey{Table: Minute, Month: 202611, Partition: 1}]; got != 900 {
		t.Errorf("marks read through the lagging replica: partition 1 at %d in 2026-11, want 900 (landed through the other replica)", got)
	}
	again, err := w.MigrateCluster(ctx, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again {
		if r.Applied || r.ChecksumMismatch {
			t.Errorf("second run: %+v", r)
		}
	}

	// A summary that gained a stray row on one replica is refilled on one
	// replica of the shard, and both agree with the rollups again.
	if err := first.Conn().Exec(ctx, "INSERT INTO costpipe_local.usage_model_1d SELECT * FROM costpipe_local.usage_model_1d LIMIT 1"); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := w.RebuildSummaries(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rebuilt) == 0 || rebuilt[0].Shard != 1 {
		t.Errorf("rebuilt %+v, want months of shard 1", rebuilt)
	}
	syncAll(true)
	summariesMatch(t, w)

	// A replica down: an up-to-date database still migrates (nothing is
	// sent ON CLUSTER), while creating another database and retention
	// fail at once naming the member, instead of waiting 150 s
	// (distributed_ddl_task_timeout) and leaving the change on the live
	// members only.
	servers[1].Kill(t)
	if _, err := w.MigrateCluster(ctx, c.Name); err != nil {
		t.Errorf("migrating an up-to-date database with a replica down: %v", err)
	}
	start := time.Now()
	other := openCluster(t, c, "costpipe_other")
	_, err = other.MigrateCluster(ctx, c.Name)
	if err == nil || !strings.Contains(err.Error(), servers[1].TCPAddr+" (shard 1)") || time.Since(start) > 30*time.Second {
		t.Errorf("a new database with a replica down: %v after %s; want an error naming %s within seconds", err, time.Since(start).Round(time.Second), servers[1].TCPAddr)
	}
	ro := DefaultRetentionOptions()
	ro.KeepMinutes, ro.KeepHours = 8*24*time.Hour, 8*24*time.Hour
	if _, err := w.Retention(ctx, ro); err == nil || !strings.Contains(err.Error(), "cannot apply retention on cluster") || !strings.Contains(err.Error(), servers[1].TCPAddr) {
		t.Errorf("retention with a replica down: %v; want an error naming %s", err, servers[1].TCPAddr)
	}
}

// TestExplainKeeper: ZooKeeper's own message ("Session expired") gets a
// hint naming ZooKeeper; other errors are left as they are.
func TestExplainKeeper(t *testing.T) {
	t.Parallel()
	keeper := fmt.Errorf("cannot create database: %w", &clickhouse.Exception{Code: 999, Message: "Session expired"})
	if err := explainKeeper(keeper); !errors.Is(err, keeper) || !strings.Contains(err.Error(), "ZooKeeper or ClickHouse Keeper error") {
		t.Errorf("explainKeeper(%v) = %v", keeper, err)
	}
	other := &clickhouse.Exception{Code: 60, Message: "Table doesn't exist"}
	if err := explainKeeper(other); err != other {
		t.Errorf("explainKeeper(%v) = %v, want it unchanged", other, err)
	}
	if explainKeeper(nil) != nil {
		t.Error("explainKeeper(nil) != nil")
	}
}

func TestTopologyShape(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		shards [][]string
		want   string
	}{
		{[][]string{{"a", "b"}, {"c", "d"}}, "2 shard(s) of 2 replica(s)"},
		{[][]string{{"a", "b"}, {"c"}}, "2 shard(s) of 2, 1 replica(s)"},
		{[][]string{{"a"}}, "1 shard(s) of 1 replica(s)"},
	} {
		if got := (Topology{Shards: tc.shards}).Shape(); got != tc.want {
			t.Errorf("Shape of %v = %q, want %q", tc.shards, got, tc.want)
		}
	}
}
