package alerts

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/warehouse"
)

// BenchmarkBacktest reads the history of docs/alerts-example.yaml over
// 30 days and replays it, from the database of COSTPIPE_BENCH_DSN
// (docs/BENCHMARKS.md, "Alerts": the 10M events of scripts/bench-query.sh
// with KEEP=1, from 2026-11-03 to 2026-12-03). Skipped without it.
//
//	COSTPIPE_BENCH_DSN=clickhouse://127.0.0.1:19500/bench_query go test -run '^$' -bench Backtest -benchtime 1x ./alerts/
func BenchmarkBacktest(b *testing.B) {
	dsn := os.Getenv("COSTPIPE_BENCH_DSN")
	if dsn == "" {
		b.Skip("COSTPIPE_BENCH_DSN not set")
	}
	ctx := context.Background()
	o := warehouse.DefaultOptions()
	o.DSN = dsn
	w, err := warehouse.Open(ctx, o)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	q := analytics.New(w, analytics.DefaultOptions())
	data, err := os.ReadFile("../docs/alerts-example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := ParseConfig("alerts-example.yaml", data)
	if err != nil {
		b.Fatal(err)
	}
	from, to := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	var load, replay time.Duration
	for range b.N {
		start := time.Now()
		hist, err := LoadHistory(ctx, q, cfg, from, to)
		if err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if _, err := Backtest(ctx, cfg, hist, BacktestOptions{From: from, To: to, Step: time.Hour}); err != nil {
			b.Fatal(err)
		}
		load, replay = load+mid.Sub(start), replay+time.Since(mid)
	}
	b.ReportMetric(load.Seconds()/float64(b.N), "load-s/op")
	b.ReportMetric(replay.Seconds()/float64(b.N), "replay-s/op")
}
