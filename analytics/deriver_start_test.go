package analytics

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/faultproxy"
	"github.com/costpipe/costpipe/internal/whtest"
	"github.com/costpipe/costpipe/warehouse"
)

// TestDeriverWaitsForClickHouse: a Deriver made while ClickHouse does not
// answer (its Warehouse opened lazily) has its metrics registered at once;
// its passes fail, counted as runs{result="error"}, with Ready saying it is
// starting and why; once ClickHouse answers, the next pass (within seconds,
// not the hour-long Interval) checks the schema and derives.
func TestDeriverWaitsForClickHouse(t *testing.T) {
	t.Parallel()
	w := growthDB(t)
	proxy := faultproxy.Start(t, chtest.Shared(t).TCPAddr)
	proxy.Refuse(true)
	wo := warehouse.DefaultOptions()
	wo.DSN, wo.DialTimeout = "clickhouse://"+proxy.Addr+"/"+w.Database(), time.Second
	pw, err := warehouse.OpenLazy(wo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pw.Close() })
	q := New(pw, Options{Now: func() time.Time { return time.Date(2026, 3, 11, 0, 30, 0, 0, time.UTC) }})
	reg := prometheus.NewRegistry()
	log := &logBuffer{}
	dv, err := NewDeriver(q, DeriverOptions{Backfill: 1, Interval: time.Hour, Registerer: reg, Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if v := metricValue(t, reg, "costpipe_derive_runs_total", "result", "error"); v != 0 {
		t.Fatalf(`costpipe_derive_runs_total{result="error"} %v before any pass, want 0 (registered)`, v)
	}
	if err := dv.Ready(); err == nil || err.Error() != "starting: connecting to ClickHouse and checking its schema" {
		t.Errorf("Ready before the first pass: %v", err)
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
	deadline := time.Now().Add(20 * time.Second)
	for metricValue(t, reg, "costpipe_derive_runs_total", "result", "error") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 2 failed passes in 20 s while ClickHouse is down:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := dv.Ready(); err == nil || !strings.HasPrefix(err.Error(), "starting: cannot reach clickhouse") {
		t.Errorf("Ready while ClickHouse is down: %v", err)
	}
	proxy.Refuse(false)
	up := time.Now()
	for len(log.Lines(`msg="derived growth" day=2026-03-10`)) == 0 {
		if time.Since(up) > 15*time.Second {
			t.Fatalf("not derived within 15 s of ClickHouse answering:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := dv.Ready(); err != nil {
		t.Errorf("Ready after a pass: %v", err)
	}
	if len(log.Lines(`msg="derive recovered"`)) != 1 {
		t.Errorf("no recovery line:\n%s", log.String())
	}
}

// TestDeriverNewYorkServer: on a server whose time zone is not UTC, the
// days derived and compared are UTC days: a call at 23:30 UTC belongs to
// its UTC day (18:30 in New York), and a second pass finds every day up
// to date.
func TestDeriverNewYorkServer(t *testing.T) {
	t.Parallel()
	srv := chtest.StartWithOptions(t, chtest.Options{Timezone: "America/New_York"})
	ctx := context.Background()
	w := whtest.Migrated(t, srv.DSN("costpipe"))
	landLate(t, w, time.Date(2026, 3, 10, 23, 30, 0, 0, time.UTC), "acme", 3, "1", 1)
	landLate(t, w, time.Date(2026, 3, 11, 0, 30, 0, 0, time.UTC), "acme", 5, "1", 2)
	q := New(w, Options{Now: func() time.Time { return time.Date(2026, 3, 12, 0, 30, 0, 0, time.UTC) }})
	dv, err := NewDeriver(q, DeriverOptions{Backfill: 2, Derive: DeriveOptions{Metrics: []Metric{MetricRequests}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dv.RunOnce(ctx); err != nil || derivedDays(got) != "2026-03-10:4 2026-03-11:4" {
		t.Fatalf("derived %q, %v", derivedDays(got), err)
	}
	for day, want := range map[string]float64{"2026-03-10": 3, "2026-03-11": 8} {
		if toDate, last7 := totalRow(t, w, day, MetricRequests); toDate != want || last7 != want {
			t.Errorf("%s: to_date %v, last_7d %v; want %v", day, toDate, last7, want)
		}
	}
	if got, err := dv.RunOnce(ctx); err != nil || len(got) != 0 {
		t.Errorf("second pass derived %q, %v; want nothing", derivedDays(got), err)
	}
}
