package chtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/shopspring/decimal"
)

func TestMain(m *testing.M) { Main(m) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestOutage starts a private server, writes rows, and checks they survive a
// graceful stop and a SIGKILL, with the same addresses after each restart.
func TestOutage(t *testing.T) {
	began := time.Now()
	s := Start(t)
	t.Logf("clickhouse %s started in %s on %s", s.Version, time.Since(began).Round(time.Millisecond), s.TCPAddr)
	ctx := ctxT(t)
	tcp, httpAddr := s.TCPAddr, s.HTTPAddr

	conn := s.Conn(t, "default")
	db := s.NewDatabase(t)
	if err := conn.Exec(ctx, fmt.Sprintf(
		"CREATE TABLE %s.t (id UInt64, name String, ts DateTime) ENGINE = MergeTree ORDER BY id", db)); err != nil {
		t.Fatal(err)
	}
	batch, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.t (id, name, ts)", db))
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, name := range []string{"a", "b", "c"} {
		if err := batch.Append(uint64(i+1), name, ts.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	check := func(when string) {
		t.Helper()
		// A fresh pool: the old one's connections died with the server.
		c := s.Conn(t, db)
		rows, err := c.Query(ctx, "SELECT id, name, ts FROM t ORDER BY id")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var (
				id   uint64
				name string
				ts   time.Time
			)
			if err := rows.Scan(&id, &name, &ts); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%d %s %s", id, name, ts.UTC().Format("15:04")))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := []string{"1 a 03:04", "2 b 03:05", "3 c 03:06"}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: rows = %q, want %q", when, got, want)
		}
		if s.TCPAddr != tcp || s.HTTPAddr != httpAddr {
			t.Fatalf("%s: addresses moved from %s/%s to %s/%s", when, tcp, httpAddr, s.TCPAddr, s.HTTPAddr)
		}
	}
	check("before stop")

	began = time.Now()
	s.Stop(t)
	t.Logf("graceful stop took %s", time.Since(began).Round(time.Millisecond))
	if s.Running() {
		t.Fatal("Running() after Stop")
	}
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("ping succeeded while the server is stopped")
	}
	s.Stop(t) // no-op

	began = time.Now()
	s.Restart(t)
	t.Logf("restart took %s", time.Since(began).Round(time.Millisecond))
	if !s.Running() {
		t.Fatal("not Running() after Restart")
	}
	check("after stop and restart")
	// The pool opened before the outage recovers by redialing.
	if err := conn.Ping(ctx); err != nil {
		t.Errorf("old connection pool after restart: %v", err)
	}

	s.Kill(t)
	if s.Running() {
		t.Fatal("Running() after Kill")
	}
	s.Kill(t) // no-op
	s.Restart(t)
	check("after kill and restart")

	// Restart of a running server stops it first.
	s.Restart(t)
	check("after restart while running")
}

func TestHTTPInterface(t *testing.T) {
	s := Shared(t)
	resp, err := http.Get("http://" + s.HTTPAddr + "/?query=" + "SELECT%201%2B1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if got := strings.TrimSpace(string(body)); resp.StatusCode != 200 || got != "2" {
		t.Fatalf("HTTP SELECT 1+1 = %d %q, want 200 \"2\"", resp.StatusCode, got)
	}
}

func TestDSN(t *testing.T) {
	s := Shared(t)
	db := s.NewDatabase(t)
	dsn := s.DSN(db)
	if want := "clickhouse://" + s.TCPAddr + "/" + db; dsn != want {
		t.Fatalf("DSN() = %q, want %q", dsn, want)
	}
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got string
	if err := conn.QueryRow(ctxT(t), "SELECT currentDatabase()").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != db {
		t.Fatalf("currentDatabase() = %q, want %q", got, db)
	}
}

func TestNewDatabaseIsolatedAndDropped(t *testing.T) {
	s := Shared(t)
	var first string
	t.Run("create", func(t *testing.T) {
		first = s.NewDatabase(t)
		second := s.NewDatabase(t)
		if first == second || !strings.HasPrefix(first, "test_") {
			t.Fatalf("NewDatabase names %q, %q", first, second)
		}
	})
	var n uint64
	if err := s.Conn(t, "default").QueryRow(ctxT(t),
		"SELECT count() FROM system.databases WHERE name = ?", first).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %q still exists after its test ended", first)
	}
}

// TestDecimal checks that Decimal(38,12) round-trips exactly through
// clickhouse-go with shopspring/decimal, and sums exactly.
func TestDecimal(t *testing.T) {
	s := Shared(t)
	ctx := ctxT(t)
	conn := s.Conn(t, s.NewDatabase(t))
	if err := conn.Exec(ctx, "CREATE TABLE d (k UInt8, cost Decimal(38, 12)) ENGINE = MergeTree ORDER BY k"); err != nil {
		t.Fatal(err)
	}
	vals := []string{"12345678901234567890.123456789012", "0.000000000001", "-3.5"}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO d (k, cost)")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if err := batch.Append(uint8(i), decimal.RequireFromString(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		var got decimal.Decimal
		if err := conn.QueryRow(ctx, "SELECT cost FROM d WHERE k = ?", uint8(i)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(decimal.RequireFromString(v)) {
			t.Errorf("row %d: got %s, want %s", i, got, v)
		}
	}
	var sum decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT sum(cost) FROM d").Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if want := decimal.RequireFromString("12345678901234567886.623456789013"); !sum.Equal(want) {
		t.Errorf("sum = %s, want %s", sum, want)
	}
}

func TestLowCardinality(t *testing.T) {
	s := Shared(t)
	ctx := ctxT(t)
	conn := s.Conn(t, s.NewDatabase(t))
	if err := conn.Exec(ctx, "CREATE TABLE lc (tenant LowCardinality(String), n UInt64) ENGINE = MergeTree ORDER BY tenant"); err != nil {
		t.Fatal(err)
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO lc (tenant, n)")
	if err != nil {
		t.Fatal(err)
	}
	for i, tenant := range []string{"acme", "globex", "acme"} {
		if err := batch.Append(tenant, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SELECT tenant, sum(n) FROM lc GROUP BY tenant ORDER BY tenant")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var (
			tenant string
			n      uint64
		)
		if err := rows.Scan(&tenant, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%d", tenant, n))
	}
	if want := []string{"acme=4", "globex=2"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestAggregatingPipeline checks the landing pattern the aggregator relies
// on: a batch inserted into a Null table feeds, through a materialized view,
// an AggregatingMergeTree of sumState, maxState and sumMapState columns.
func TestAggregatingPipeline(t *testing.T) {
	s := Shared(t)
	ctx := ctxT(t)
	conn := s.Conn(t, s.NewDatabase(t))
	for _, q := range []string{
		`CREATE TABLE input (
			minute DateTime,
			tenant LowCardinality(String),
			calls UInt64,
			cost Decimal(38, 12),
			max_latency_ms Float64,
			latency_idx Array(UInt16),
			latency_cnt Array(UInt64)
		) ENGINE = Null`,
		`CREATE TABLE rollup (
			minute DateTime,
			tenant LowCardinality(String),
			calls AggregateFunction(sum, UInt64),
			cost AggregateFunction(sum, Decimal(38, 12)),
			max_latency_ms AggregateFunction(max, Float64),
			latency AggregateFunction(sumMap, Array(UInt16), Array(UInt64))
		) ENGINE = AggregatingMergeTree()
		PARTITION BY toYYYYMM(minute)
		ORDER BY (tenant, minute)`,
		`CREATE MATERIALIZED VIEW rollup_mv TO rollup AS
		SELECT minute, tenant,
			sumState(calls) AS calls,
			sumState(cost) AS cost,
			maxState(max_latency_ms) AS max_latency_ms,
			sumMapState(latency_idx, latency_cnt) AS latency
		FROM input GROUP BY minute, tenant`,
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	minute := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	type row struct {
		tenant string
		calls  uint64
		cost   string
		maxLat float64
		idx    []uint16
		cnt    []uint64
	}
	insert := func(rows ...row) {
		t.Helper()
		batch, err := conn.PrepareBatch(ctx,
			"INSERT INTO input (minute, tenant, calls, cost, max_latency_ms, latency_idx, latency_cnt)")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if err := batch.Append(minute, r.tenant, r.calls, decimal.RequireFromString(r.cost), r.maxLat, r.idx, r.cnt); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
	// Two batches: two parts, merged at query time by the -Merge combinators.
	insert(
		row{"acme", 2, "0.000123456789", 120.5, []uint16{10, 20}, []uint64{1, 1}},
		row{"globex", 1, "1", 50, []uint16{5}, []uint64{1}},
	)
	insert(row{"acme", 3, "2.5", 300.25, []uint16{20, 30}, []uint64{2, 1}})

	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM input").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("Null table holds %d rows, want 0", n)
	}

	rows, err := conn.Query(ctx, `
		SELECT tenant, sumMerge(calls), sumMerge(cost), maxMerge(max_latency_ms), sumMapMerge(latency)
		FROM rollup GROUP BY tenant ORDER BY tenant`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var (
			tenant string
			calls  uint64
			cost   decimal.Decimal
			maxLat float64
			lat    []any
		)
		if err := rows.Scan(&tenant, &calls, &cost, &maxLat, &lat); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s calls=%d cost=%s max=%g latency=%v", tenant, calls, cost, maxLat, lat))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"acme calls=5 cost=2.500123456789 max=300.25 latency=[[10 20 30] [1 3 1]]",
		"globex calls=1 cost=1 max=50 latency=[[5] [1]]",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("rollup:\n got %q\nwant %q", got, want)
	}
}

// fakeTB turns Fatal into a panic so a test can observe it.
type fakeTB struct {
	testing.TB
}

type fatal string

func (fakeTB) Helper()                      {}
func (fakeTB) Fatal(args ...any)            { panic(fatal(fmt.Sprint(args...))) }
func (fakeTB) Fatalf(f string, args ...any) { panic(fatal(fmt.Sprintf(f, args...))) }

func catchFatal(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			m, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			msg = string(m)
		}
	}()
	f()
	return ""
}

func TestSharedRefusesOutages(t *testing.T) {
	s := Shared(t)
	if s2 := Shared(t); s2 != s {
		t.Fatal("Shared returned two servers")
	}
	ft := fakeTB{t}
	for name, f := range map[string]func(testing.TB){"Stop": s.Stop, "Kill": s.Kill, "Restart": s.Restart} {
		msg := catchFatal(func() { f(ft) })
		if !strings.Contains(msg, "cannot "+name+" the shared server") {
			t.Errorf("%s on the shared server: fatal %q", name, msg)
		}
	}
	if !s.Running() {
		t.Fatal("shared server is not running")
	}
}

func TestMissingBinary(t *testing.T) {
	t.Run("env points nowhere", func(t *testing.T) {
		t.Setenv(BinaryEnv, filepath.Join(t.TempDir(), "nope"))
		_, err := findBinary()
		if err == nil || !strings.Contains(err.Error(), BinaryEnv) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("findBinary() error = %v, want one naming %s and wrapping ErrNotExist", err, BinaryEnv)
		}
	})
	t.Run("nothing installed", func(t *testing.T) {
		saved := candidates
		t.Cleanup(func() { candidates = saved })
		candidates = candidates[:0:0]
		candidates = append(candidates, struct {
			name      string
			multiTool bool
		}{filepath.Join(t.TempDir(), "clickhouse-server"), false})
		t.Setenv(BinaryEnv, "")
		msg := catchFatal(func() { Start(fakeTB{t}) })
		for _, want := range []string{"clickhouse-server not found", "apt-get install -y clickhouse-server clickhouse-client"} {
			if !strings.Contains(msg, want) {
				t.Errorf("Start fatal %q does not contain %q", msg, want)
			}
		}
	})
}

func TestFindBinaryMultiTool(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "clickhouse")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(BinaryEnv, p)
	got, err := findBinary()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{p, "server"}; !slices.Equal(got, want) {
		t.Fatalf("findBinary() = %q, want %q", got, want)
	}
}

func TestWriteConfigVersions(t *testing.T) {
	for _, tt := range []struct {
		major       int
		wantLC, mem bool
	}{{0, true, false}, {18, true, false}, {24, false, true}} {
		dir := t.TempDir()
		if _, err := writeConfig(dir, 1234, 5678, tt.major, "UTC"); err != nil {
			t.Fatal(err)
		}
		config, _ := os.ReadFile(filepath.Join(dir, "config.xml"))
		users, _ := os.ReadFile(filepath.Join(dir, "users.xml"))
		if !strings.Contains(string(config), "<tcp_port>1234</tcp_port>") || !strings.Contains(string(config), "<http_port>5678</http_port>") {
			t.Errorf("major %d: ports missing from config:\n%s", tt.major, config)
		}
		if got := strings.Contains(string(users), "allow_experimental_low_cardinality_type"); got != tt.wantLC {
			t.Errorf("major %d: low cardinality setting present = %v, want %v", tt.major, got, tt.wantLC)
		}
		if got := strings.Contains(string(config), "max_server_memory_usage"); got != tt.mem {
			t.Errorf("major %d: max_server_memory_usage present = %v, want %v", tt.major, got, tt.mem)
		}
	}
}

// TestTimezone starts a server in another time zone: the server reports it,
// DateTime without a zone follows it, DateTime('UTC') does not; the shared
// server stays in UTC.
func TestTimezone(t *testing.T) {
	srv := StartWithOptions(t, Options{Timezone: "America/New_York"})
	conn := srv.Conn(t, "default")
	var tz string
	var local, utc uint32
	// 2026-02-01T00:30:00Z is still January 31st in New York.
	err := conn.QueryRow(t.Context(), "SELECT timezone(), toYYYYMMDD(toDateTime(1769905800)), toYYYYMMDD(toDateTime(1769905800, 'UTC'))").Scan(&tz, &local, &utc)
	if err != nil {
		t.Fatal(err)
	}
	if tz != "America/New_York" || local != 20260131 || utc != 20260201 {
		t.Errorf("timezone %q, local day %d, UTC day %d; want America/New_York 20260131 20260201", tz, local, utc)
	}
	if err := Shared(t).Conn(t, "default").QueryRow(t.Context(), "SELECT timezone()").Scan(&tz); err != nil || (tz != "UTC" && tz != "Etc/UTC") {
		t.Errorf("shared server time zone %q (%v), want UTC", tz, err)
	}
	if _, err := start(Options{Timezone: "UTC</timezone><x>"}); err == nil {
		t.Error("start accepted a time zone that is not a name")
	}
}

// TestWriteConfigLocal: the development server's choices (cmd/chlocal)
// reach the files, and the tests' defaults stay as they were.
func TestWriteConfigLocal(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteConfig(Config{Dir: dir, TCPPort: 9000, HTTPPort: 8123, Major: 18, MarkCacheBytes: 256 << 20,
		LogFiles: 3, ZSTD: true, WrittenBy: "scripts/clickhouse-local.sh"}); err != nil {
		t.Fatal(err)
	}
	config, _ := os.ReadFile(filepath.Join(dir, "config.xml"))
	for _, want := range []string{"<count>3</count>", "<mark_cache_size>268435456</mark_cache_size>", "<method>zstd</method>",
		"<timezone>UTC</timezone>", "Written by scripts/clickhouse-local.sh"} {
		if !strings.Contains(string(config), want) {
			t.Errorf("config lacks %q:\n%s", want, config)
		}
	}
	dir = t.TempDir()
	if _, err := writeConfig(dir, 1, 2, 24, "Europe/Berlin"); err != nil {
		t.Fatal(err)
	}
	config, _ = os.ReadFile(filepath.Join(dir, "config.xml"))
	for _, want := range []string{"<count>1</count>", "<mark_cache_size>67108864</mark_cache_size>", "<timezone>Europe/Berlin</timezone>"} {
		if !strings.Contains(string(config), want) {
			t.Errorf("test config lacks %q:\n%s", want, config)
		}
	}
	if strings.Contains(string(config), "zstd") {
		t.Error("test config compresses with zstd")
	}
}
