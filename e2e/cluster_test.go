package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/kafkatest"
)

// chTarget is the ClickHouse an end-to-end run lands on: one server, or a
// cluster read through its Distributed tables.
type chTarget struct {
	dsn   string      // the aggregator's --clickhouse
	db    string      // the database queries read
	conn  driver.Conn // a connection for the test's own queries
	flags []string    // extra aggregator flags
	// stop and restart take ClickHouse (or a member of the cluster) down
	// and bring it back; what names it in the test's log.
	stop, restart func(t testing.TB)
	what          string
}

// singleServer is a private server of the test's own.
func singleServer(t *testing.T) chTarget {
	srv := chtest.Start(t)
	db := srv.NewDatabase(t)
	return chTarget{dsn: srv.DSN(db), db: db, conn: srv.Conn(t, db), stop: srv.Stop, restart: srv.Restart, what: "ClickHouse"}
}

// twoShards is a cluster of two shards of one replica each; the
// aggregators land with --cluster, and stop/restart take shard 2's server
// down and back while shard 1 goes on.
func twoShards(t *testing.T) chTarget {
	c := chtest.StartCluster(t, chtest.ClusterOptions{Shards: 2, Replicas: 1})
	const db = "costpipe"
	down := c.Shards[1][0]
	return chTarget{
		dsn: c.DSN(db), db: db, conn: c.Shards[0][0].Conn(t, db),
		flags: []string{"--cluster", c.Name},
		stop:  down.Stop, restart: down.Restart, what: "shard 2's server",
	}
}

// TestKcatClientEndToEndCluster is the rollup core's acceptance run
// (kcatClientEndToEnd) unchanged, against a two-shard cluster.
func TestKcatClientEndToEndCluster(t *testing.T) {
	t.Parallel()
	kcatClientEndToEnd(t, twoShards(t))
}

// localRequests sums the requests landed in a member's shard-local
// usage_1m (0 when it cannot answer).
func localRequests(t *testing.T, s *chtest.Server) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn := s.Conn(t, "default")
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT sumMerge(requests) FROM costpipe_local.usage_1m").Scan(&n); err != nil {
		return 0
	}
	return n
}

// TestClusterAggregators: on two shards of two replicas, `migrate --cluster`
// creates the schema and two aggregators (which find the cluster from the
// database) land a stream of events. Mid-run a replica is stopped and
// restarted and an aggregator SIGKILLed and replaced; then the replica the
// aggregators write shard 1 through is stopped, and landing fails over to
// the other one. Totals end exact, and both replicas of each shard hold the
// same rollups.
func TestClusterAggregators(t *testing.T) {
	t.Parallel()
	c := chtest.StartCluster(t, chtest.ClusterOptions{Shards: 2, Replicas: 2})
	const db = "costpipe"
	reader := c.Shards[1][0] // never stopped
	conn := reader.Conn(t, db)
	dsn := reader.DSN(db)
	phase := phaser(t)

	out, err := exec.Command(binPath, "--clickhouse", dsn, "migrate", "--cluster", c.Name).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "2 shard(s) of 2 replica(s)") {
		t.Fatalf("migrate --cluster: %v\n%s", err, out)
	}
	phase("migrate --cluster: %s", strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; "))

	b := kafkatest.Start(t, 8)
	pr := newProducer(t, b.Addr(), "cl", 11)
	const group = "e2e-cluster"
	flags := []string{"--flush-interval", "300ms"}
	a1 := startAggregator(t, "A1", b.Addr(), dsn, group, flags...)
	a2 := startAggregator(t, "A2", b.Addr(), dsn, group, flags...)
	// Serving metrics comes before looking at the database: wait for the line.
	deadline := time.Now().Add(30 * time.Second)
	for !a1.logContains("landing on a cluster") {
		if time.Now().After(deadline) || !a1.running() {
			t.Fatalf("A1 did not find the cluster from the database:\n%s", a1.log(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	bg := produceInBackground(pr, 100)
	defer bg.stop()
	waitFor(t, 60*time.Second, "both aggregators to land", func() bool {
		return a1.metric("costpipe_flushes_total") >= 2 && a2.metric("costpipe_flushes_total") >= 2
	})
	phase("A1 owns %v, A2 owns %v; %d events landed", a1.assigned(), a2.assigned(), landedRequests(conn, db))

	// A replica the aggregators do not write through goes down; an
	// aggregator dies and is replaced while it is down.
	r12 := c.Shards[0][1]
	r12.Stop(t)
	phase("stopped replica s01r02")
	time.Sleep(time.Second)
	admin := adminClient(t, b.Addr())
	dead := memberOf(t, admin, group, a1)
	a1.kill()
	phase("SIGKILLed A1 mid-stream (%d valid events produced)", pr.validCount())
	evict(t, admin, group, dead)
	a3 := startAggregator(t, "A3", b.Addr(), dsn, group, flags...)
	waitFor(t, 60*time.Second, "A2 and A3 to own the 8 partitions", func() bool {
		return a2.metric("costpipe_partitions_owned")+a3.metric("costpipe_partitions_owned") == 8 && a3.metric("costpipe_flushes_total") >= 1
	})
	time.Sleep(2 * time.Second)
	r12.Restart(t)
	phase("restarted replica s01r02; A2 owns %v, A3 owns %v", a2.assigned(), a3.assigned())

	// The replica shard 1 is written through goes down once its peer has
	// every part: the aggregators fail over to s01r02.
	bg.stop()
	valid, _, _, _ := pr.snapshot()
	waitTotals(t, conn, db, valid, 90*time.Second)
	if err := r12.Conn(t, "default").Exec(t.Context(), "SYSTEM SYNC REPLICA costpipe_local.usage_1m"); err != nil {
		t.Fatal(err)
	}
	r11 := c.Shards[0][0]
	r11.Stop(t)
	before := localRequests(t, r12)
	phase("stopped replica s01r01 (shard 1 holds %d requests)", before)
	bg = produceInBackground(pr, 100)
	defer bg.stop()
	waitFor(t, 60*time.Second, "shard 1 to land through s01r02 while s01r01 is down", func() bool {
		return localRequests(t, r12) > before
	})
	phase("shard 1 lands through s01r02: %d requests", localRequests(t, r12))
	r11.Restart(t)
	phase("restarted replica s01r01")
	time.Sleep(2 * time.Second)
	bg.stop()

	valid, invalid, _, dups := pr.snapshot()
	phase("stopped producing: %d valid events, %d duplicates, %d invalid records", len(valid), dups, len(invalid))
	waitTotals(t, conn, db, valid, 90*time.Second)
	for _, a := range []*aggregator{a2, a3} {
		phase("%s: %.0f flushes, %.0f ClickHouse errors, %.0f replayed records skipped as landed", a.name,
			a.metric("costpipe_flushes_total"), a.metric("costpipe_clickhouse_errors_total"), a.metric("costpipe_records_already_landed_total"))
		a.mustTerm()
	}
	checkExact(t, conn, db, valid)
	checkDLQ(t, b.Addr(), invalid)
	for i, sh := range c.Shards {
		var got []uint64
		for _, r := range sh {
			if err := r.Conn(t, "default").Exec(t.Context(), "SYSTEM SYNC REPLICA costpipe_local.usage_1m"); err != nil {
				t.Fatal(err)
			}
			got = append(got, localRequests(t, r))
		}
		if got[0] != got[1] || got[0] == 0 {
			t.Errorf("shard %d: replicas hold %v requests, want equal and > 0", i+1, got)
		}
	}
	queriesOnCluster(t, dsn, uint64(len(valid)))
	repriceOnCluster(t, c, dsn)
	phase("done: %s", fmt.Sprint(len(valid), " events exact"))
}

// repriceOnCluster corrects the stored cost of openai's calls with a
// catalog that prices them differently, through the binary: the
// corrections land through the shards (into the Distributed database they
// failed: "usage_1m_input_v9 doesn't exist"), the cost query usage then
// reads is the one reprice printed, and a second pass finds nothing left.
func repriceOnCluster(t *testing.T, c *chtest.Cluster, dsn string) {
	t.Helper()
	cat := filepath.Join(t.TempDir(), "corrected.yaml")
	if err := os.WriteFile(cat, []byte("models:\n  - provider: openai\n    match: \".*\"\n    prices:\n      - {from: 2020-01-01, input: \"7\", output: \"11\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	from, to := today.AddDate(0, 0, -9).Format(time.DateOnly), today.AddDate(0, 0, 2).Format(time.DateOnly)
	reprice := func(extra ...string) string {
		t.Helper()
		args := append([]string{"--clickhouse", dsn, "--prices", cat, "reprice", "--from", from, "--to", to}, extra...)
		out, err := exec.Command(binPath, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("costpipe %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		// Reads go through the Distributed tables: let every replica fetch
		// the corrections first.
		for _, sh := range c.Shards {
			for _, r := range sh {
				for _, tb := range []string{"usage_1m", "usage_1h", "usage_1d"} {
					if err := r.Conn(t, "default").Exec(t.Context(), "SYSTEM SYNC REPLICA costpipe_local."+tb); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		return string(out)
	}
	out := reprice()
	m := regexp.MustCompile(`usage_1d +([0-9,]+) of [0-9,]+ groups corrected; cost [0-9.]+ → ([0-9.]+) USD`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Fatalf("reprice on the cluster corrected nothing in usage_1d:\n%s", out)
	}
	usage, err := exec.Command(binPath, "--clickhouse", dsn, "query", "usage", "--from", from, "--to", to, "--format", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Cost json.Number `json:"cost_usd"`
	}
	if err := json.Unmarshal(usage, &rows); err != nil || len(rows) != 1 {
		t.Fatalf("query usage after reprice: %v\n%s", err, usage)
	}
	if got, want := strings.TrimRight(strings.TrimRight(rows[0].Cost.String(), "0"), "."), strings.TrimRight(strings.TrimRight(m[2], "0"), "."); got != want {
		t.Errorf("after reprice on the cluster, query usage costs %s USD; reprice printed %s", got, want)
	}
	if again := reprice("--dry-run"); !regexp.MustCompile(`usage_1d +0 of`).MatchString(again) {
		t.Errorf("a second pass would correct more:\n%s", again)
	}
}

// queriesOnCluster runs the reading commands against a cluster database as
// against one server: query usage sums every event, latency and growth
// answer, derive writes growth_daily (replicated on every member).
func queriesOnCluster(t *testing.T, dsn string, events uint64) {
	t.Helper()
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(binPath, append([]string{"--clickhouse", dsn}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("costpipe %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	var rows []struct {
		Requests uint64 `json:"requests"`
	}
	out := run("query", "usage", "--since", "3d", "--by", "model", "--format", "json")
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("query usage: %v\n%s", err, out)
	}
	var sum uint64
	for _, r := range rows {
		sum += r.Requests
	}
	if sum != events {
		t.Errorf("query usage on the cluster sums %d requests, want %d", sum, events)
	}
	for _, args := range [][]string{
		{"query", "latency", "--since", "3d", "--by", "model", "--format", "json"},
		{"query", "growth", "--by", "model", "--format", "json"},
		{"derive", "--once", "--backfill", "2d"},
	} {
		if out := run(args...); len(out) == 0 {
			t.Errorf("costpipe %s printed nothing", strings.Join(args, " "))
		}
	}
}
