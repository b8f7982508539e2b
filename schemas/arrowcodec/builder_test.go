package arrowcodec

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// row is one row for streamOf: column name → value; a missing column or a
// nil value is a null.
type row map[string]any

// kv is one attributes entry; a nil V is a null item.
type kv struct {
	K string
	V *string
}

func strp(s string) *string { return &s }

// streamOf writes rows as an Arrow IPC stream with the given schema, using
// the arrow library's builders and writer (the way a third-party producer
// would), batchSize rows per record batch.
func streamOf(t testing.TB, sc *arrow.Schema, rows []row, batchSize int, opts ...ipc.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, append([]ipc.Option{ipc.WithSchema(sc)}, opts...)...)
	rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer rb.Release()
	flush := func() {
		rec := rb.NewRecord()
		defer rec.Release()
		if err := w.Write(rec); err != nil {
			t.Fatalf("write record: %v", err)
		}
	}
	for i, r := range rows {
		for fi, f := range sc.Fields() {
			appendAny(t, rb.Field(fi), r[f.Name])
		}
		if (i+1)%batchSize == 0 {
			flush()
		}
	}
	if len(rows) == 0 || len(rows)%batchSize != 0 {
		flush()
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
	return buf.Bytes()
}

func appendAny(t testing.TB, b array.Builder, v any) {
	t.Helper()
	if v == nil {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.StringBuilder:
		b.Append(v.(string))
	case *array.LargeStringBuilder:
		b.Append(v.(string))
	case *array.StringViewBuilder:
		b.Append(v.(string))
	case *array.BinaryDictionaryBuilder:
		if err := b.AppendString(v.(string)); err != nil {
			t.Fatal(err)
		}
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(v.(int64)))
	case *array.Int64Builder:
		b.Append(toInt64(v))
	case *array.Int32Builder:
		b.Append(int32(toInt64(v)))
	case *array.Uint64Builder:
		b.Append(uint64(toInt64(v)))
	case *array.Float64Builder:
		b.Append(v.(float64))
	case *array.Float32Builder:
		b.Append(float32(v.(float64)))
	case *array.BooleanBuilder:
		b.Append(v.(bool))
	case *array.ListBuilder:
		b.Append(true)
		for _, x := range v.([]int64) {
			b.ValueBuilder().(*array.Int64Builder).Append(x)
		}
	case *array.StructBuilder:
		b.Append(true)
		for i := 0; i < b.NumField(); i++ {
			appendAny(t, b.FieldBuilder(i), v.([]any)[i])
		}
	case *array.MapBuilder:
		b.Append(true)
		for _, e := range v.([]kv) {
			appendAny(t, b.KeyBuilder(), e.K)
			if e.V == nil {
				b.ItemBuilder().AppendNull()
			} else {
				appendAny(t, b.ItemBuilder(), *e.V)
			}
		}
	default:
		t.Fatalf("appendAny: unsupported builder %T", b)
	}
}

func toInt64(v any) int64 {
	switch v := v.(type) {
	case int:
		return int64(v)
	case int64:
		return v
	}
	panic(fmt.Sprintf("not an integer: %T", v))
}

// validRow is a row of the contract schema that passes Validate.
func validRow(id string) row {
	return row{
		ColEventID: id, ColTimestamp: t0.UnixNano(), ColTenant: "acme", ColProvider: "openai",
		ColModel: "gpt-4o", ColStatus: "ok", ColInputTokens: 100, ColCachedInputTokens: 10,
		ColCacheWriteTokens: 5, ColOutputTokens: 50, ColReasoningTokens: 20, ColCacheWrite1hTokens: 3,
		ColServiceTier: "flex", ColLatencyMs: 120.5, ColTTFTMs: 30.25, ColGPUMs: 0.0,
	}
}

func (r row) with(kvs ...any) row {
	c := row{}
	for k, v := range r {
		c[k] = v
	}
	for i := 0; i < len(kvs); i += 2 {
		c[kvs[i].(string)] = kvs[i+1]
	}
	return c
}
