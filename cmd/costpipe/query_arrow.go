package main

import (
	"fmt"
	"io"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/decimal128"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/costpipe/costpipe/analytics"
)

// writeUsageArrow writes the rows as one Arrow IPC stream (one record batch):
// the group-by columns (utf8), the counters (uint64), gpu_ms (float64),
// unpriced_requests (uint64), cost_usd (decimal128(38, 12), exact), and for
// latency and TTFT p50/p90/p99/avg/min/max in ms (float64, null when no call
// reported the duration) and the count (uint64). Column names match the csv
// header.
func writeUsageArrow(w io.Writer, by []analytics.Dim, rows []analytics.UsageRow) error {
	var fields []arrow.Field
	for _, d := range by {
		fields = append(fields, arrow.Field{Name: string(d), Type: arrow.BinaryTypes.String})
	}
	for _, c := range usageCounters {
		fields = append(fields, arrow.Field{Name: c.name, Type: arrow.PrimitiveTypes.Uint64})
	}
	fields = append(fields,
		arrow.Field{Name: "gpu_ms", Type: arrow.PrimitiveTypes.Float64},
		arrow.Field{Name: "unpriced_requests", Type: arrow.PrimitiveTypes.Uint64},
		arrow.Field{Name: "cost_usd", Type: &arrow.Decimal128Type{Precision: 38, Scale: 12}})
	compare := len(rows) > 0 && rows[0].Reprice != nil // the stored values, with --compare
	if compare {
		fields = append(fields,
			arrow.Field{Name: "stored_cost_usd", Type: &arrow.Decimal128Type{Precision: 38, Scale: 12}},
			arrow.Field{Name: "stored_unpriced_requests", Type: arrow.PrimitiveTypes.Uint64},
			arrow.Field{Name: "delta_usd", Type: &arrow.Decimal128Type{Precision: 38, Scale: 12}})
	}
	stats := []string{"p50", "p90", "p99", "avg", "min", "max"}
	for _, p := range []string{"latency", "ttft"} {
		for _, s := range stats {
			fields = append(fields, arrow.Field{Name: p + "_" + s + "_ms", Type: arrow.PrimitiveTypes.Float64, Nullable: true})
		}
		fields = append(fields, arrow.Field{Name: p + "_count", Type: arrow.PrimitiveTypes.Uint64})
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range rows {
		r := &rows[i]
		col := 0
		for _, d := range by {
			b.Field(col).(*array.StringBuilder).Append(r.Group[d])
			col++
		}
		for _, c := range usageCounters {
			b.Field(col).(*array.Uint64Builder).Append(c.get(r))
			col++
		}
		b.Field(col).(*array.Float64Builder).Append(float64(r.GPUMicros) / 1000)
		b.Field(col + 1).(*array.Uint64Builder).Append(r.UnpricedRequests)
		hi, lo := r.CostUSD.Int128()
		b.Field(col + 2).(*array.Decimal128Builder).Append(decimal128.New(hi, lo))
		col += 3
		if compare {
			hi, lo := r.Reprice.CostUSD.Int128()
			b.Field(col).(*array.Decimal128Builder).Append(decimal128.New(hi, lo))
			b.Field(col + 1).(*array.Uint64Builder).Append(r.Reprice.UnpricedRequests)
			hi, lo = r.CostUSD.Sub(r.Reprice.CostUSD).Int128()
			b.Field(col + 2).(*array.Decimal128Builder).Append(decimal128.New(hi, lo))
			col += 3
		}
		for _, p := range []analytics.Percentiles{r.Latency, r.TTFT} {
			vals := []float64{p.P50, p.P90, p.P99, p.Avg, p.Min, p.Max}
			for _, v := range vals {
				fb := b.Field(col).(*array.Float64Builder)
				if p.Present() {
					fb.Append(v)
				} else {
					fb.AppendNull()
				}
				col++
			}
			b.Field(col).(*array.Uint64Builder).Append(p.Count)
			col++
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	iw := ipc.NewWriter(w, ipc.WithSchema(schema))
	if err := iw.Write(rec); err != nil {
		return fmt.Errorf("cannot write arrow stream: %w", err)
	}
	return iw.Close()
}
