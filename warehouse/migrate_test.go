package warehouse

import (
	"context"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/pipelines/sketch"
	chschema "github.com/costpipe/costpipe/schemas/clickhouse"
)

func TestMain(m *testing.M) { chtest.Main(m) }

func openTest(t *testing.T) (*Warehouse, *chtest.Server, string) {
	t.Helper()
	srv := chtest.Shared(t)
	db := "cp_" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "_")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := DefaultOptions()
	opts.DSN = srv.DSN(db)
	w, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	// A fresh database on every run: with -count=N a test's database is
	// otherwise the previous run's, already migrated.
	if err := w.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	return w, srv, db
}

func TestMigrateCreatesTablesAndIsIdempotent(t *testing.T) {
	t.Parallel()
	w, _, db := openTest(t)
	ctx := context.Background()
	ms, err := chschema.Migrations()
	if err != nil {
		t.Fatal(err)
	}

	res, err := w.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(ms) {
		t.Fatalf("first run reported %d migrations, want %d", len(res), len(ms))
	}
	for _, r := range res {
		if !r.Applied || r.Statements == 0 || len(r.Kept) != 0 {
			t.Errorf("first run: %s applied=%v statements=%d kept %v, want applied with statements, nothing kept", r.Name, r.Applied, r.Statements, r.Kept)
		}
	}

	var tables []string
	// The alerts tables (0006) are checked by package alerts.
	rows, err := w.Conn().Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND name NOT LIKE 'alerts\\_%' ORDER BY name", db)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	want := []string{"cost_by_model_daily", "growth_daily", "schema_migrations",
		// No usage_G_v1 or usage_G_v4: what an upgrade keeps of the old
		// rollups is dropped when empty, as on a new database.
		"usage_1d", "usage_1d_input_v10", "usage_1d_mv_v10",
		"usage_1h", "usage_1h_input_v10", "usage_1h_mv_v10",
		"usage_1m", "usage_1m_input_v10", "usage_1m_mv_v10",
		"usage_daily", "usage_hourly", "usage_minute",
		"usage_model_1d", "usage_model_1d_mv_v10", "usage_model_1h", "usage_model_1h_mv_v10",
		"usage_model_1w", "usage_model_1w_mv_v10",
		"usage_tiers_daily"}
	if strings.Join(tables, ",") != strings.Join(want, ",") {
		t.Errorf("tables in %s:\n got %v\nwant %v", db, tables, want)
	}

	res, err = w.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Applied || r.Statements != 0 || r.ChecksumMismatch {
			t.Errorf("second run: %s applied=%v statements=%d mismatch=%v, want untouched", r.Name, r.Applied, r.Statements, r.ChecksumMismatch)
		}
	}
	var recorded uint64
	if err := w.Conn().QueryRow(ctx, "SELECT count() FROM "+db+".schema_migrations").Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if int(recorded) != len(ms) {
		t.Errorf("schema_migrations has %d rows after two runs, want %d", recorded, len(ms))
	}
}

// TestRollupAcceptsInput checks the migration's Null → MV → AggregatingMergeTree
// chain end to end on the real server: values inserted into usage_1m_input_v3 come
// back merged, including the Decimal(38,12) cost and the histogram sumMap.
func TestRollupAcceptsInput(t *testing.T) {
	t.Parallel()
	w, _, db := openTest(t)
	ctx := context.Background()
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	insert := "INSERT INTO " + db + "." + Minute.InputName() + " (ts, tenant, application, provider, model, error_type, src_topic, src_partition, src_offset, requests, cost_usd, latency_hist_idx, latency_hist_cnt) VALUES"
	ts := time.Date(2026, 1, 31, 23, 59, 0, 0, time.UTC)
	for i, off := range []int64{41, 97} {
		b, err := w.Conn().PrepareBatch(ctx, insert)
		if err != nil {
			t.Fatal(err)
		}
		cost := []string{"0.000000000001", "2.500000000002"}[i]
		if err := b.Append(ts, "acme", "", "openai", "gpt-4o", "", "costpipe.events", int32(3), off, uint64(2), mustDecimal(t, cost),
			[]int16{5, 7}, []uint64{1, 1}); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	var (
		offset   int64
		requests uint64
		cost     string
		min, max float64
		idx      []int16
		cnt      []uint64
	)
	err := w.Conn().QueryRow(ctx, "SELECT maxMerge(src_offset), sumMerge(requests), toString(sumMerge(cost_usd)), minMerge(latency_min_ms), maxMerge(latency_max_ms), sumMap(latency_histMap.idx, latency_histMap.cnt).1, arrayMap(x -> toUInt64(x), sumMap(latency_histMap.idx, latency_histMap.cnt).2) FROM "+db+".usage_1m").
		Scan(&offset, &requests, &cost, &min, &max, &idx, &cnt)
	if err != nil {
		t.Fatal(err)
	}
	// min and max are the ALIAS columns of 0008: the extreme buckets' values.
	wmin, wmax := sketch.Value(5), sketch.Value(7)
	if offset != 97 || requests != 4 || cost != "2.500000000003" || math.Abs(min-wmin) > 1e-12 || math.Abs(max-wmax) > 1e-12 {
		t.Errorf("merged: offset=%d requests=%d cost=%s min=%v max=%v; want 97 4 2.500000000003 %v %v", offset, requests, cost, min, max, wmin, wmax)
	}
	if len(idx) != 2 || idx[0] != 5 || idx[1] != 7 || cnt[0] != 2 || cnt[1] != 2 {
		t.Errorf("merged histogram = %v %v, want [5 7] [2 2]", idx, cnt)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		dsn, want string
	}{
		{"", "DSN is empty"},
		{"clickhouse://127.0.0.1:9000/bad-name", `database name "bad-name"`},
		{"clickhouse://u:secret@127.0.0.1:9000/x y", `database name "x y"`},
		{"clickhouse://u:secret@127.0.0.1:9000/db?dial_timeout=soon", "cannot parse clickhouse DSN"},
		{"http://u:secret@127.0.0.1:8123/costpipe", "want clickhouse://HOST:9000/DATABASE"},
		{"HTTPS://127.0.0.1:8443/costpipe", "is an HTTP address"},
	} {
		o := DefaultOptions()
		o.DSN = tc.dsn
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%q) = %v, want error containing %q", tc.dsn, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Validate(%q) leaks the password: %v", tc.dsn, err)
		}
	}
}

// TestValidDBName: the hand-written check accepts exactly what the
// regexp it replaces does.
func TestValidDBName(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	long := strings.Repeat("a", 64)
	for _, db := range []string{"", "costpipe", "_x", "x_1", "1x", "9", "a-b", "a b", "é", "Ab_Z9", long, long + "a", "_" + long[1:], "a.b", "a\x00"} {
		if got, want := validDBName(db), re.MatchString(db); got != want {
			t.Errorf("validDBName(%q) = %v, want %v", db, got, want)
		}
	}
}

// TestAlterSettings: ALTERs wait for their mutation on servers that run
// them asynchronously (20 and later), and nothing is set on 18.16, which
// does not know mutations_sync.
func TestAlterSettings(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		version, q string
		want       bool
	}{
		{"18.16.1", "ALTER TABLE db.usage_1m DROP COLUMN latency_count", false},
		{"19.17.6.36", "ALTER TABLE db.usage_1m DROP COLUMN latency_count", false},
		{"20.3.21.2", "ALTER TABLE db.usage_1m DROP COLUMN latency_count", true},
		{"24.8.4.13", "\\n  ALTER TABLE db.usage_1m ADD COLUMN x UInt8 ALIAS 1", true},
		{"25.3.1.1", "CREATE TABLE db.t (x UInt8) ENGINE = Null", false},
		{"25.3.1.1", "DROP TABLE IF EXISTS db.usage_1m_mv_v7", false},
		{"", "ALTER TABLE db.t DROP COLUMN x", false},
	} {
		got := alterSettings(c.version, strings.ReplaceAll(c.q, "\\n", "\n"))
		if (got != nil) != c.want || (c.want && (got["mutations_sync"] != 2 || got["replication_alter_partitions_sync"] != 2)) {
			t.Errorf("alterSettings(%q, %q) = %v, want mutations_sync=2 and replication_alter_partitions_sync=2: %v", c.version, c.q, got, c.want)
		}
	}
}
