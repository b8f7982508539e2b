package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/whtest"
	"github.com/costpipe/costpipe/pipelines/pricing"
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

// deriveLog is a buffer safe to read while the process writes it.
type deriveLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *deriveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *deriveLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
