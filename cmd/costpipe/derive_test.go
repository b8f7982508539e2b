package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/logtest"
	"github.com/costpipe/costpipe/internal/whtest"
	"github.com/costpipe/costpipe/pipelines/pricing"
	chschema "github.com/costpipe/costpipe/schemas/clickhouse"
	"github.com/costpipe/costpipe/warehouse"
)

// deriveDB returns the DSN of a migrated database with 60 days of usage
// up to 2026-03-10: model gpt-4o doubles every 7 days, claude-sonnet is
// flat; one row per day and group in every rollup table.
func deriveDB(t *testing.T) (string, *warehouse.Warehouse) {
	t.Helper()
	srv := chtest.Shared(t)
	ctx := context.Background()
	dsn := srv.DSN(srv.NewDatabase(t))
	w := whtest.Migrated(t, dsn)
	start := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	end := time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)
	byMonth := map[warehouse.Month][]warehouse.Rollup{}
	off := int64(0)
	for ts := start; ts.Before(end); ts = ts.AddDate(0, 0, 1) {
		i := float64(ts.Sub(start).Hours() / 24)
		for _, r := range []warehouse.Rollup{
			{Tenant: "acme", Provider: "openai", Model: "gpt-4o", Requests: 10, Cost: pricing.FromPicos(int64(math.Round(math.Pow(2, i/7) * 1e12)))},
			{Tenant: "globex", Provider: "anthropic", Model: "claude-sonnet", Requests: 5, Cost: pricing.MustParsePico("12.5")},
		} {
			off++
			r.TS, r.SrcTopic, r.SrcOffset = ts, "costpipe.events", off
			byMonth[warehouse.MonthOf(ts)] = append(byMonth[warehouse.MonthOf(ts)], r)
		}
	}
	for _, rows := range byMonth {
		for _, tb := range warehouse.Tables {
			if err := w.InsertRollups(ctx, tb, rows); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dsn, w
}

// TestDeriveCommand: derive --once back-fills the missing days and says
// so, a second run has nothing to do, --day derives a day again without
// adding rows under FINAL, and the table agrees with query growth.
func TestDeriveCommand(t *testing.T) {
	t.Parallel()
	dsn, w := deriveDB(t)
	ctx := context.Background()
	now := "--now=2026-03-11T00:30:00Z"
	r := run(t, "", nil, "--clickhouse", dsn, "derive", "--once", "--backfill", "3d", now)
	if r.code != 0 {
		t.Fatalf("derive --once: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// 2 metrics × (total, 2 tenants, 2 models, 2 tenant×model) = 14 rows a day.
	for _, want := range []string{"derived 2026-03-08: 14 rows", "derived 2026-03-09: 14 rows", "derived 2026-03-10: 14 rows",
		"3 day(s) derived, 42 rows"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("derive --once output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "msg=\"derived growth\" day=2026-03-10") || !strings.Contains(r.stderr, "rows=14") {
		t.Errorf("derive --once does not log what it derived:\n%s", r.stderr)
	}
	count := func() uint64 {
		var n uint64
		if err := w.Conn().QueryRow(ctx, "SELECT count() FROM "+w.Database()+".growth_daily FINAL").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 42 {
		t.Fatalf("growth_daily has %d rows under FINAL, want 42", n)
	}
	r = run(t, "", nil, "--clickhouse", dsn, "derive", "--once", "--backfill", "3d", now)
	if r.code != 0 || !strings.Contains(r.stdout, "0 day(s) derived, 0 rows") {
		t.Errorf("second derive --once: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, "derive", "--clickhouse", dsn, "--day", "2026-03-10", now)
	if r.code != 0 || !strings.Contains(r.stdout, "derived 2026-03-10: 14 rows") {
		t.Errorf("derive --day: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := count(); n != 42 {
		t.Errorf("after deriving a day again growth_daily has %d rows under FINAL, want 42", n)
	}

	// The table holds what query growth reports as of the next midnight.
	r = run(t, "", nil, "--clickhouse", dsn, "query", "growth", "--by", "provider,model", "--at", "2026-03-11", "--format", "json")
	if r.code != 0 {
		t.Fatalf("query growth: exit %d\n%s", r.code, r.stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	for _, q := range rows {
		var dbl *float64
		var wow float64
		if err := w.Conn().QueryRow(ctx, "SELECT doubling_days, assumeNotNull(wow_pct) FROM "+w.Database()+".growth_daily FINAL "+
			"WHERE day = '2026-03-10' AND metric = 'cost' AND scope = 'model' AND provider = ? AND model = ?", q["provider"], q["model"]).
			Scan(&dbl, &wow); err != nil {
			t.Fatal(err)
		}
		if wow != q["wow_pct"] {
			t.Errorf("%v: wow_pct %v in growth_daily, %v from query growth", q["model"], wow, q["wow_pct"])
		}
		switch q["model"] {
		case "gpt-4o":
			if dbl == nil || math.Abs(*dbl-7) > 1e-6 || *dbl != q["doubling_days"] {
				t.Errorf("gpt-4o: doubling_days %v in growth_daily, %v from query growth; want 7", dbl, q["doubling_days"])
			}
		case "claude-sonnet":
			if dbl != nil || q["doubling_days"] != nil {
				t.Errorf("claude-sonnet (flat): doubling_days %v in growth_daily, %v from query growth; want null", dbl, q["doubling_days"])
			}
		}
	}

	for _, args := range [][]string{{"--backfill", "1.5d"}, {"--metrics", "dollars"}, {"--max-groups", "0"}, {"--window", "7"},
		{"--day", "2026-03-11"}, {"--day", "yesterday"}, {"--interval", "0s"}, {"extra"}} {
		r := run(t, "", nil, append([]string{"--clickhouse", dsn, "derive", now, "--once"}, args...)...)
		if r.code != 2 || r.stderr == "" {
			t.Errorf("derive %v: exit %d, stderr %q; want 2 and a reason", args, r.code, r.stderr)
		}
	}
}

// TestDeriveRunsUntilSIGTERM: without --once, derive back-fills, keeps
// checking, and exits 0 on SIGTERM.
func TestDeriveRunsUntilSIGTERM(t *testing.T) {
	t.Parallel()
	dsn, _ := deriveDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "--clickhouse", dsn, "derive", "--backfill", "2d", "--interval", "100ms",
		"--now=2026-03-11T00:30:00Z")
	var stderr deriveLog
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "day=2026-03-10") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("derive did not derive 2026-03-10 within 30 s:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a few more checks, with nothing to do
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("derive after SIGTERM: %v\n%s", err, stderr.String())
	}
	if n := strings.Count(stderr.String(), "msg=\"derived growth\""); n != 2 || !strings.Contains(stderr.String(), "derive stopped") {
		t.Errorf("derived %d days (want 2, each once) or did not stop cleanly:\n%s", n, stderr.String())
	}
}

// deriveLog is the shared concurrent log buffer.
type deriveLog = logtest.Buffer

// TestDeriveMetricsListen: derive --metrics-listen serves /metrics with its
// passes, rows and the Go and process collectors, /healthz 200 all along
// and /readyz 503 "starting" while ClickHouse is waited for, with the
// costpipe_derive_* metrics already there, the failed attempts counted as
// failed passes (the staleness alert has its series) and the last success
// 0 (a SIGTERM then exits 0); 200 once a pass completed.
func TestDeriveMetricsListen(t *testing.T) {
	t.Parallel()
	s := startServed(t, "--clickhouse", "clickhouse://127.0.0.1:1/costpipe", "derive", "--metrics-listen", "127.0.0.1:0")
	if code, body := s.get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz while waiting for ClickHouse: %d %q, want 200 ok", code, body)
	}
	s.waitFor("/metrics", 200, `(?m)^costpipe_derive_runs_total\{result="error"\} [1-9]`)
	body := s.waitFor("/metrics", 200, `(?m)^costpipe_derive_last_success_timestamp_seconds 0$`)
	for _, want := range []string{`(?m)^costpipe_derive_runs_total\{result="ok"\} 0$`, `(?m)^costpipe_derive_days_failed_total 0$`} {
		if !regexp.MustCompile(want).MatchString(body) {
			t.Errorf("/metrics while waiting for ClickHouse lacks %s:\n%s", want, body)
		}
	}
	if code, body := s.get("/readyz"); code != 503 || !strings.Contains(body, "not ready: starting: cannot reach clickhouse") {
		t.Errorf("/readyz while waiting for ClickHouse: %d %q, want 503 not ready: starting: cannot reach clickhouse …", code, body)
	}
	if err := s.stop(); err != nil {
		t.Errorf("exit after SIGTERM while waiting for ClickHouse: %v\n%s", err, s.log.String())
	}

	dsn, _ := deriveDB(t)
	s = startServed(t, "--clickhouse", dsn, "derive", "--backfill", "2d", "--interval", "100ms",
		"--now=2026-03-11T00:30:00Z", "--metrics-listen", "127.0.0.1:0")
	s.waitFor("/readyz", 200, `^ready\n$`)
	body = s.waitFor("/metrics", 200, `(?m)^costpipe_derive_runs_total\{result="ok"\} [2-9]`)
	for _, want := range []string{
		`(?m)^costpipe_derive_runs_total\{result="error"\} 0$`,
		`(?m)^costpipe_derive_rows_written_total 28$`, // 2 days × 14 rows
		`(?m)^costpipe_derive_days_derived_total 2$`,
		`(?m)^costpipe_derive_last_success_timestamp_seconds 1.773189e\+09$`, // --now
		`(?m)^costpipe_derive_run_duration_seconds_count [2-9]`,
		`(?m)^go_goroutines `, `(?m)^process_start_time_seconds `,
	} {
		if !regexp.MustCompile(want).MatchString(body) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	if code, body := s.get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if err := s.stop(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, s.log.String())
	}
}

// TestDeriveProbesDuringOutage: through derive's handler, with a real
// Deriver running on a real ClickHouse: a pass shows in /metrics and makes
// /readyz 200; with ClickHouse unreachable the failed passes rise in
// costpipe_derive_runs_total{result="error"}, /readyz stays 200 within its
// bound and answers 503 saying since when once it passed, /healthz 200
// throughout; with ClickHouse back, 200 again.
func TestDeriveProbesDuringOutage(t *testing.T) {
	t.Parallel()
	dsn, _ := deriveDB(t)
	db := newProxiedDB(t, dsn)
	reg := prometheus.NewRegistry()
	probes := &probeServer{reg: reg}
	h := probes.handler()
	o := analytics.DefaultDeriverOptions()
	o.Backfill, o.Interval, o.Registerer = 2, 20*time.Millisecond, reg
	dv, err := analytics.NewDeriver(analytics.New(db.w, analytics.Options{Now: db.now}), o)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := probe(t, h, "/readyz"); code != 503 || body != "not ready: starting (connecting to ClickHouse, waiting for its migrations)\n" {
		t.Errorf("/readyz before the deriver: %d %q", code, body)
	}
	probes.setReady(dv.Ready)
	if code, body := probe(t, h, "/readyz"); code != 503 || body != "not ready: starting: connecting to ClickHouse and checking its schema\n" {
		t.Errorf("/readyz before the first pass: %d %q", code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	// metric waits up to 20 s for the sample name to reach at least min
	// in /metrics and returns its value.
	metric := func(name string, min float64) float64 {
		t.Helper()
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`)
		deadline := time.Now().Add(20 * time.Second)
		for {
			_, body := probe(t, h, "/metrics")
			var v float64
			if m := re.FindStringSubmatch(body); m != nil {
				fmt.Sscan(m[1], &v)
				if v >= min {
					return v
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is %v after 20 s, want at least %v:\n%s", name, v, min, body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	metric(`costpipe_derive_runs_total{result="ok"}`, 1)
	if v := metric("costpipe_derive_rows_written_total", 0); v != 28 {
		t.Errorf("costpipe_derive_rows_written_total %v, want 28 (2 days × 14 rows)", v)
	}
	if v := metric("costpipe_derive_last_success_timestamp_seconds", 0); v != float64(db.now().Unix()) {
		t.Errorf("costpipe_derive_last_success_timestamp_seconds %v, want %d", v, db.now().Unix())
	}
	if code, body := probe(t, h, "/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz after a pass: %d %q", code, body)
	}

	db.down(true)
	errorsBefore := metric(`costpipe_derive_runs_total{result="error"}`, 0)
	metric(`costpipe_derive_runs_total{result="error"}`, errorsBefore+3)
	db.advance(time.Minute) // the bound: max(3 × 20ms, 1m)
	if code, body := probe(t, h, "/readyz"); code != 200 {
		t.Errorf("/readyz a minute after the last pass: %d %q, want 200", code, body)
	}
	db.advance(time.Second)
	if code, body := probe(t, h, "/readyz"); code != 503 || body != "not ready: the last complete derive pass was 1m1s ago (limit 1m0s): see the log\n" {
		t.Errorf("/readyz 61 s after the last pass: %d %q", code, body)
	}
	if code, body := probe(t, h, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz with ClickHouse unreachable: %d %q", code, body)
	}

	db.down(false)
	okBefore := metric(`costpipe_derive_runs_total{result="ok"}`, 0)
	metric(`costpipe_derive_runs_total{result="ok"}`, okBefore+1)
	if code, body := probe(t, h, "/readyz"); code != 200 {
		t.Errorf("/readyz with ClickHouse back: %d %q", code, body)
	}
}

// TestDeriveFollowsLateData: derive --once derives again the days whose
// usage changed since they were derived (calls that landed late), and
// --day takes a range.
func TestDeriveFollowsLateData(t *testing.T) {
	t.Parallel()
	dsn, w := deriveDB(t)
	now := "--now=2026-03-11T06:00:00Z"
	if r := run(t, "", nil, "--clickhouse", dsn, "derive", "--once", "--backfill", "3d", now); r.code != 0 {
		t.Fatalf("derive --once: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	late := warehouse.Rollup{TS: time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), Tenant: "acme", Provider: "openai", Model: "gpt-4o",
		SrcTopic: "costpipe.events", SrcPartition: 3, SrcOffset: 1, Requests: 1000, Cost: pricing.MustParsePico("1")}
	for _, tb := range warehouse.Tables {
		if err := w.InsertRollups(context.Background(), tb, []warehouse.Rollup{late}); err != nil {
			t.Fatal(err)
		}
	}
	r := run(t, "", nil, "--clickhouse", dsn, "derive", "--once", "--backfill", "3d", now)
	if r.code != 0 || !strings.Contains(r.stdout, "derived 2026-03-10 again (its usage changed): 14 rows") ||
		!strings.Contains(r.stdout, "1 day(s) derived, 14 rows") || !strings.Contains(r.stderr, `why="usage changed"`) {
		t.Errorf("derive --once after late calls: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var toDate float64
	if err := w.Conn().QueryRow(context.Background(), "SELECT to_date FROM "+w.Database()+".growth_daily FINAL WHERE day = '2026-03-10' AND metric = 'requests' AND scope = 'total'").
		Scan(&toDate); err != nil || toDate != 10*15+1000 {
		t.Errorf("2026-03-10 requests to_date %v, %v; want %d", toDate, err, 10*15+1000)
	}
	r = run(t, "", nil, "--clickhouse", dsn, "derive", "--day", "2026-03-07..2026-03-08", now)
	if r.code != 0 || !strings.Contains(r.stdout, "derived 2026-03-07: 14 rows") || !strings.Contains(r.stdout, "derived 2026-03-08: 14 rows") ||
		!strings.Contains(r.stdout, "2 day(s) derived, 28 rows") {
		t.Errorf("derive --day 2026-03-07..2026-03-08: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestDeriveNeedsMigrate: derive applies no migration (a new derive rolled
// out before `costpipe migrate` would fence the running aggregators): on a
// database without costpipe's tables, or lacking a migration of this
// binary, --once exits 1 saying to run costpipe migrate and creates
// nothing; the long-running derive waits, counting failed passes and
// answering /readyz 503 with the reason, and derives once migrate has run.
func TestDeriveNeedsMigrate(t *testing.T) {
	t.Parallel()
	srv := chtest.Shared(t)
	ctx := context.Background()
	db := srv.NewDatabase(t)
	conn := srv.Conn(t, "default")
	tables := func() uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ?", db).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	r := run(t, "", nil, "--clickhouse", srv.DSN(db), "derive", "--once")
	if r.code != 1 || !strings.Contains(r.stderr, "has no costpipe tables") || !strings.Contains(r.stderr, "run `costpipe migrate` first") {
		t.Errorf("derive --once on an empty database: exit %d, want 1 and run costpipe migrate\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := tables(); n != 0 {
		t.Errorf("derive --once created %d tables", n)
	}

	// A database migrated by an older costpipe: the last migration missing.
	ms, err := chschema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	old := srv.NewDatabase(t)
	if err := conn.Exec(ctx, "CREATE TABLE "+old+".schema_migrations (version UInt32, name String, checksum String, applied_at DateTime) ENGINE = MergeTree ORDER BY version"); err != nil {
		t.Fatal(err)
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+old+".schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:len(ms)-1] {
		if err := b.Append(uint32(m.Version), m.Name, "", time.Now().UTC().Truncate(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	r = run(t, "", nil, "--clickhouse", srv.DSN(old), "derive", "--day", "2026-03-01")
	if want := "lacks migration(s) " + ms[len(ms)-1].Name + ": run `costpipe migrate` with this costpipe first"; r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("derive --day on a database lacking %s: exit %d, want 1 and %q\n%s%s", ms[len(ms)-1].Name, r.code, want, r.stdout, r.stderr)
	}

	s := startServed(t, "--clickhouse", srv.DSN(db), "derive", "--interval", "100ms", "--metrics-listen", "127.0.0.1:0")
	s.waitFor("/metrics", 200, `(?m)^costpipe_derive_runs_total\{result="error"\} [2-9]`)
	if code, body := s.get("/readyz"); code != 503 || !strings.Contains(body, "not ready: starting: ") || !strings.Contains(body, "run `costpipe migrate` first") {
		t.Errorf("/readyz before migrate: %d %q", code, body)
	}
	if lines := s.log.Lines(`msg="cannot derive growth; retrying"`); len(lines) == 0 || !strings.Contains(lines[0], "costpipe migrate") {
		t.Errorf("no retry line naming costpipe migrate:\n%s", s.log.String())
	}
	if n := tables(); n != 0 {
		t.Errorf("the long-running derive created %d tables", n)
	}
	if r := run(t, "", nil, "--clickhouse", srv.DSN(db), "migrate"); r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.code, r.stderr)
	}
	s.waitFor("/readyz", 200, `^ready\n$`)
	if err := s.stop(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, s.log.String())
	}
}

// TestDeriveOneShotWaitsBounded: derive --once and --day wait up to --wait
// for a ClickHouse that does not answer, then exit 1 saying so (they
// waited forever).
func TestDeriveOneShotWaitsBounded(t *testing.T) {
	t.Parallel()
	for _, mode := range [][]string{{"--once"}, {"--day", "2026-03-01"}} {
		start := time.Now()
		r := run(t, "", nil, append([]string{"--clickhouse", "clickhouse://127.0.0.1:1/costpipe", "derive", "--wait", "2s", "--now=2026-03-11T00:30:00Z"}, mode...)...)
		if took := time.Since(start); r.code != 1 || !strings.Contains(r.stderr, "ClickHouse did not answer within --wait 2s: cannot reach clickhouse") || took > 20*time.Second {
			t.Errorf("derive %v against no ClickHouse: exit %d after %s, want 1 after about 2 s\n%s", mode, r.code, took.Round(time.Millisecond), r.stderr)
		}
	}
}

// TestDeriveContradictoryFlags: flags of one mode given to another are
// refused (exit 2), not ignored: --day with --once (--day won),
// --metrics-listen with a one-shot mode (nothing served), --wait with the
// long-running derive; and malformed --recheck and --day ranges.
func TestDeriveContradictoryFlags(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--once", "--day", "2026-03-01"}, "--once and --day are two ways of deriving once"},
		{[]string{"--once", "--metrics-listen", "127.0.0.1:0"}, "--metrics-listen (COSTPIPE_METRICS_LISTEN) serves the long-running derive"},
		{[]string{"--day", "2026-03-01", "--metrics-listen", "127.0.0.1:0"}, "not with --once or --day"},
		{[]string{"--wait", "5s"}, "--wait bounds how long --once and --day wait"},
		{[]string{"--once", "--wait", "0s"}, "invalid --wait 0s"},
		{[]string{"--once", "--recheck", "1.5d"}, "invalid --recheck"},
		{[]string{"--once", "--recheck", "400d"}, "recheck of 400 days"},
		{[]string{"--day", "2026-03-05..2026-03-01"}, "the range ends before it starts"},
		{[]string{"--day", "2026-03-01..2026-03-11"}, "invalid --day 2026-03-10: the day has not ended yet"},
	} {
		start := time.Now()
		r := run(t, "", nil, append([]string{"--clickhouse", "clickhouse://127.0.0.1:1/costpipe", "derive", "--now=2026-03-10T12:00:00Z"}, c.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || time.Since(start) > 10*time.Second {
			t.Errorf("derive %v: exit %d, stderr %q; want 2 and %q at once", c.args, r.code, r.stderr, c.want)
		}
	}
}
