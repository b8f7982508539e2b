package arrowcodec

import (
	"testing"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/costpipe/costpipe/schemas"
)

const benchBatch = 1000

// plainStream is typical events written the way a pyarrow user would:
// plain utf8 strings, no dictionaries, no version metadata.
func plainStream(tb testing.TB, evs []schemas.Event) []byte {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: ColEventID, Type: arrow.BinaryTypes.String}, {Name: ColTimestamp, Type: timestampType},
		{Name: ColTenant, Type: arrow.BinaryTypes.String}, {Name: ColProvider, Type: arrow.BinaryTypes.String},
		{Name: ColModel, Type: arrow.BinaryTypes.String}, {Name: ColStatus, Type: arrow.BinaryTypes.String},
		{Name: ColApplication, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ColInputTokens, Type: arrow.PrimitiveTypes.Int64}, {Name: ColOutputTokens, Type: arrow.PrimitiveTypes.Int64},
		{Name: ColLatencyMs, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	rows := make([]row, len(evs))
	for i, e := range evs {
		rows[i] = row{ColEventID: e.EventID, ColTimestamp: e.Timestamp.UnixNano(), ColTenant: e.Tenant,
			ColProvider: e.Provider, ColModel: e.Model, ColStatus: e.Status.String(), ColInputTokens: e.InputTokens,
			ColOutputTokens: e.OutputTokens, ColLatencyMs: e.LatencyMs}
		if e.Application != "" {
			rows[i][ColApplication] = e.Application
		}
	}
	return streamOf(tb, sc, rows, len(rows))
}

// BenchmarkArrowDecode decodes 1000-event records. "typical" is the
// reference (the encoder's output; ~20 tenants and models, 10% of events
// with two attributes); run with -cpu 1 to check the ≥ 10M events/s per
// core target.
func BenchmarkArrowDecode(b *testing.B) {
	evs := typicalEvents(benchBatch, 1)
	noAttrs := typicalEvents(benchBatch, 1)
	for i := range noAttrs {
		noAttrs[i].Attributes = nil
	}
	zstdEnc, _ := NewEncoderWithOptions(EncoderOptions{Compression: CompressionZSTD})
	zdata, err := zstdEnc.Encode(evs)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		data []byte
	}{
		{"typical", mustEncode(b, evs)},
		{"no-attributes", mustEncode(b, noAttrs)},
		{"plain-utf8", plainStream(b, evs)},
		{"zstd", zdata},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := NewDecoder()
			var sink int64
			fn := func(e schemas.Event) error {
				sink += e.InputTokens
				return nil
			}
			b.SetBytes(int64(len(bc.data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Decode(bc.data, fn, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*benchBatch/b.Elapsed().Seconds(), "events/s")
			if sink == 0 {
				b.Fatal("no events")
			}
		})
	}
}

// BenchmarkArrowEncode encodes 1000-event records of typical events
// (validation included).
func BenchmarkArrowEncode(b *testing.B) {
	evs := typicalEvents(benchBatch, 1)
	enc := NewEncoder(nil)
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = enc.AppendEncode(dst[:0], evs); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(dst)))
	b.ReportMetric(float64(b.N)*benchBatch/b.Elapsed().Seconds(), "events/s")
}
