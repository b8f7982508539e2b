package serve

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/warehouse"
)

// BenchmarkUsageAPI asks /api/v1/usage?since=30d&by=model from 8
// concurrent clients, with the answer cache (its default TTL) and without,
// and reports the latency percentiles and the rate. It reads the database
// of COSTPIPE_BENCH_DSN when set (docs/BENCHMARKS.md uses the 10M events of
// scripts/bench-query.sh: KEEP=1, then its ClickHouse), else the test
// fixture.
//
//	COSTPIPE_BENCH_DSN=clickhouse://127.0.0.1:19500/bench_query go test -run '^$' -bench UsageAPI -benchtime 400x ./serve/
func BenchmarkUsageAPI(b *testing.B) {
	var w *warehouse.Warehouse
	if dsn := os.Getenv("COSTPIPE_BENCH_DSN"); dsn != "" {
		o := warehouse.DefaultOptions()
		o.DSN = dsn
		var err error
		if w, err = warehouse.Open(context.Background(), o); err != nil {
			b.Fatal(err)
		}
		defer w.Close()
	} else {
		w = fixture(b)
	}
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"cache", DefaultOptions().CacheTTL}, {"nocache", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			opts := DefaultOptions()
			opts.Keys = testKeys(b)
			opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			opts.CacheTTL = tc.ttl
			s, err := New(w, analytics.New(w, analytics.DefaultOptions()), opts)
			if err != nil {
				b.Fatal(err)
			}
			hs := httptest.NewServer(s.Handler())
			defer hs.Close()
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0))) // 8 clients
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					t0 := time.Now()
					req, _ := http.NewRequest("GET", hs.URL+"/api/v1/usage?since=30d&by=model", nil)
					req.Header.Set("Authorization", "Bearer root")
					resp, err := hs.Client().Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			slices.Sort(lat)
			if len(lat) == 0 {
				return
			}
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
		})
	}
}
