package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

// TestRetentionCommand: the query fixture has one row per table on
// 2026-01-15; 35 days after January usage_1m's January goes, the rest stays.
func TestRetentionCommand(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	now := "--now=2026-03-08T00:00:00Z"
	r := run(t, "", nil, "--clickhouse", dsn, "retention", now, "--dry-run")
	if r.code != 0 {
		t.Fatalf("dry run: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"would drop usage_1m partition 202601 (ends 2026-02-01): 4 rows", "would drop (dry run) 1 partition(s), 4 rows"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = run(t, "", nil, "--clickhouse", dsn, "retention", now)
	if r.code != 0 || !strings.Contains(r.stdout, "dropped    usage_1m partition 202601") || !strings.Contains(r.stdout, "dropped 1 partition(s)") {
		t.Fatalf("retention: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Minutes are gone; the query layer still answers the day from usage_1d.
	if r := run(t, "", nil, "--clickhouse", dsn, "retention", now); r.code != 0 || !strings.Contains(r.stdout, "dropped 0 partition(s)") {
		t.Errorf("second run: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--from", "2026-01-15", "--to", "2026-01-16", "--format", "csv")
	if r.code != 0 || !strings.Contains(r.stdout, "\n5,1,") {
		t.Errorf("query after retention: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A range starting inside an hour whose minutes are gone is answered
	// from the whole hour, and says so (it counted none of its calls).
	r = run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--from", "2026-01-15T10:30:00Z", "--to", "2026-01-15T12:00:00Z")
	for _, want := range []string{"usage in [2026-01-15T10:00:00Z, 2026-01-15T12:00:00Z)",
		"the range starts at 2026-01-15T10:00:00Z, not 2026-01-15T10:30:00Z: the minute rows of that hour are no longer kept"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("query usage over dropped minutes: exit %d, output lacks %q:\n%s%s", r.code, want, r.stdout, r.stderr)
		}
	}
	r = run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--from", "2026-01-15T10:30:00Z", "--to", "2026-01-15T12:00:00Z", "--format", "csv")
	if r.code != 0 || !strings.Contains(r.stdout, "\n5,1,") {
		t.Errorf("query usage over dropped minutes: exit %d, want its 5 calls:\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A series of its minutes reads zeros there, and says so.
	r = run(t, "", nil, "--clickhouse", dsn, "query", "series", "--step", "1m", "--from", "2026-01-15T10:30:00Z", "--to", "2026-01-15T11:00:00Z")
	if want := "the steps of 2026-01 read as zero: usage_1m no longer holds them"; r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Errorf("query series --step 1m over dropped minutes: exit %d, output lacks %q:\n%s%s", r.code, want, r.stdout, r.stderr)
	}

	// So does a latency series of minutes: a minute's rows or nothing.
	r = run(t, "", nil, "--clickhouse", dsn, "query", "latency", "--step", "1m", "--from", "2026-01-15T10:40:00Z", "--to", "2026-01-15T10:45:00Z")
	if want := "usage_1m no longer holds 2026-01"; r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("query latency --step 1m over dropped minutes: exit %d, stderr lacks %q:\n%s%s", r.code, want, r.stdout, r.stderr)
	}

	// With the hours' limit short enough, the summary of hours goes too,
	// and is listed with its size.
	r = run(t, "", nil, "--clickhouse", dsn, "retention", "--now=2026-03-20T00:00:00Z", "--keep-hours", "45d", "--dry-run")
	for _, want := range []string{"would drop usage_model_1h partition 202601 (ends 2026-02-01): 3 rows", "would drop usage_1h partition 202601 (ends 2026-02-01): 4 rows",
		"would drop (dry run) 2 partition(s), 7 rows"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("dry run with --keep-hours 45d: exit %d, output lacks %q:\n%s%s", r.code, want, r.stdout, r.stderr)
		}
	}

	// Minutes must outlive the largest max event age by the day of margin
	// the aggregators read landing marks for.
	for _, args := range [][]string{{"--keep-minutes", "3d"}, {"--keep-hours", "20d"}, {"--keep-minutes", "soon"},
		{"--keep-minutes", "7d"}, {"--keep-minutes", "35d", "--max-event-age", "35d"}} {
		r := run(t, "", nil, append([]string{"--clickhouse", dsn, "retention"}, args...)...)
		if r.code != 2 || r.stderr == "" {
			t.Errorf("retention %v: exit %d, stderr %q; want 2 and a reason", args, r.code, r.stderr)
		}
	}
}

// TestRetentionFailures: a partition the server refuses to drop (larger
// than its max_partition_size_to_drop) fails the run, exit status 1,
// naming it and how to proceed, after every other expired partition was
// dropped; copies an upgrade kept are pointed out.
func TestRetentionFailures(t *testing.T) {
	t.Parallel()
	srv := chtest.Start(t)
	ctx := context.Background()
	dsn := srv.DSN("costpipe")
	if r := run(t, "", nil, "--clickhouse", dsn, "migrate"); r.code != 0 {
		t.Fatalf("migrate: exit %d: %s", r.code, r.stderr)
	}
	opts := warehouse.DefaultOptions()
	opts.DSN = dsn
	w, err := warehouse.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i, ts := range []time.Time{time.Date(2025, 12, 15, 10, 0, 0, 0, time.UTC), time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)} {
		for _, tb := range warehouse.Tables {
			r := warehouse.Rollup{TS: tb.Truncate(ts), Tenant: "acme", Provider: "openai", Model: "gpt-4o", SrcTopic: "costpipe.events",
				SrcPartition: 0, SrcOffset: int64(i), Requests: 3, Cost: pricing.MustParsePico("1")}
			if err := w.InsertRollups(ctx, tb, []warehouse.Rollup{r}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, q := range []string{
		"CREATE TABLE costpipe.usage_1h_v4 (ts DateTime, n UInt64) ENGINE = MergeTree ORDER BY ts",
		"INSERT INTO costpipe.usage_1h_v4 SELECT toDateTime(1700000000), 1",
	} {
		if err := w.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	// Every partition is larger than a byte: the server refuses each drop.
	conf := "<yandex><max_partition_size_to_drop>1</max_partition_size_to_drop></yandex>\n"
	if err := os.MkdirAll(filepath.Join(srv.Dir, "config.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(srv.Dir, "config.d", "drop-limit.xml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)

	r := run(t, "", nil, "--clickhouse", dsn, "retention", "--now=2026-03-20T00:00:00Z", "--keep-hours", "45d")
	if r.code != 1 {
		t.Fatalf("retention: exit %d, want 1:\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"FAILED     usage_1m partition 202512", "FAILED     usage_1m partition 202601",
		"FAILED     usage_model_1h partition 202512", "FAILED     usage_1h partition 202601", "dropped 0 partition(s)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, want := range []string{"could not drop 6 of 6 expired partition(s), dropped the other 0:\n  costpipe.usage_1m partition 202512: refused by the server: ",
		"\n  costpipe.usage_1h partition 202601: refused by the server: ", "is more than its max_partition_size_to_drop, 1.00 B",
		"raise that limit in the server's config", filepath.Join(srv.Dir, "data", "flags", "force_drop_table"), "run costpipe retention again",
		"warning: costpipe.usage_1h_v4 holds 1 rows"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// TestRetentionClusterHeader: on a cluster, retention says it drops from
// the shard-local database on every shard, not from the Distributed
// tables' database the DSN names.
func TestRetentionClusterHeader(t *testing.T) {
	t.Parallel()
	c := chtest.StartCluster(t, chtest.ClusterOptions{Shards: 2, Replicas: 1})
	dsn := c.DSN("costpipe")
	if r := run(t, "", nil, "--clickhouse", dsn, "migrate", "--cluster", c.Name); r.code != 0 {
		t.Fatalf("migrate --cluster: exit %d: %s", r.code, r.stderr)
	}
	r := run(t, "", nil, "--clickhouse", dsn, "retention", "--dry-run")
	want := fmt.Sprintf("database costpipe_local (the shard-local tables behind costpipe) on every shard of cluster %s, now ", c.Name)
	if r.code != 0 || !strings.HasPrefix(r.stdout, want) {
		t.Errorf("retention on a cluster: exit %d, want output starting %q:\n%s%s", r.code, want, r.stdout, r.stderr)
	}
}

func TestParseDays(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]float64{"35d": 35 * 24, "0.5d": 12, "840h": 840} {
		if d, err := parseDays(in); err != nil || d.Hours() != want {
			t.Errorf("parseDays(%q) = %v, %v; want %vh", in, d, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "0h", "35 days", "NaNd"} {
		if _, err := parseDays(in); err == nil {
			t.Errorf("parseDays(%q) accepted", in)
		}
	}
	// A number out of range says so, not that it cannot be parsed.
	if _, err := parseDays("99999d"); err == nil || err.Error() != `"99999d" is out of range: want more than 0 and at most 36500d` {
		t.Errorf("parseDays(99999d): %v", err)
	}
}
