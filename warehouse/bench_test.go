package warehouse

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
)

// cpuTime is the process's user + system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRows are n minute rows of one month with 36-entry latency and
// 20-entry TTFT histograms, as a catch-up flush holds.
func benchRows(n int) []Rollup {
	rows := make([]Rollup, n)
	ts := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		r := testRollup(ts.Add(time.Duration(i%1440)*time.Minute), int32(i%6), int64(i), 1)
		r.Tenant = fmt.Sprintf("tenant-%d", i/1440)
		r.Latency.HistIdx, r.Latency.HistCnt = make([]int16, 36), make([]uint64, 36)
		for j := range r.Latency.HistIdx {
			r.Latency.HistIdx[j], r.Latency.HistCnt[j] = int16(150+2*j), uint64(1+j%3)
		}
		r.TTFT.HistIdx, r.TTFT.HistCnt = r.Latency.HistIdx[:20], r.Latency.HistCnt[:20]
		rows[i] = r
	}
	return rows
}

// BenchmarkInsertRollups lands 10,000 minute rows per op through the
// production path (columnar: each column encoded in Native format and
// decoded by the driver's column, native.go) and, for
// comparison, row by row through the driver's Append. cpu-µs/row is this
// process's CPU (the client side of a flush), rows/s the wall rate
// including the server.
func BenchmarkInsertRollups(b *testing.B) {
	srv := chtest.Shared(b)
	ctx := context.Background()
	rows := benchRows(10_000)
	for _, mode := range []string{"columnar", "rowwise"} {
		b.Run(mode, func(b *testing.B) {
			opts := DefaultOptions()
			opts.DSN = srv.DSN("cp_bench_insert_" + mode)
			w, err := Open(ctx, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			if _, err := w.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			cpu0, start := cpuTime(b), time.Now()
			for i := 0; i < b.N; i++ {
				var err error
				if mode == "columnar" {
					err = w.InsertRollups(ctx, Minute, rows)
				} else {
					err = insertInput(w, Minute.InputName(), rows)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			n := float64(b.N * len(rows))
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/n, "cpu-µs/row")
			b.ReportMetric(n/time.Since(start).Seconds(), "rows/s")
		})
	}
}
