package arrowcodec

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/costpipe/costpipe/schemas"
)

// Compression selects the codec applied to the body buffers of IPC messages.
type Compression uint8

const (
	// CompressionNone writes buffers as they are. It is the default: Kafka
	// producers already compress whole record batches (lz4/zstd), so
	// compressing again inside the value costs CPU twice for little gain, and
	// uncompressed buffers decode without an extra copy and allocation each.
	CompressionNone Compression = iota
	// CompressionLZ4 compresses each buffer with LZ4 frame (Arrow ≥ 1.0 readers).
	CompressionLZ4
	// CompressionZSTD compresses each buffer with Zstandard (Arrow ≥ 1.0 readers).
	CompressionZSTD
)

// String returns "none", "lz4" or "zstd".
func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionLZ4:
		return "lz4"
	case CompressionZSTD:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", uint8(c))
}

// EncoderOptions configure an Encoder.
type EncoderOptions struct {
	// Allocator provides the memory of the arrow builders and buffers.
	// Default nil, meaning memory.DefaultAllocator (Go-managed memory).
	Allocator memory.Allocator
	// Compression of the IPC body buffers. Default CompressionNone (see there
	// for why).
	Compression Compression
}

// DefaultEncoderOptions returns the defaults: default allocator, no compression.
func DefaultEncoderOptions() EncoderOptions { return EncoderOptions{} }

// Validate reports an option out of range.
func (o EncoderOptions) Validate() error {
	if o.Compression > CompressionZSTD {
		return fmt.Errorf("cannot use arrow compression %q: want none, lz4 or zstd", o.Compression)
	}
	return nil
}

// maxNanoTime is the last instant a timestamp[ns] column can hold.
var maxNanoTime = time.Unix(0, math.MaxInt64)

// Encoder turns slices of events into Arrow IPC streams. It keeps its arrow
// builders and output buffer between calls, so reuse one Encoder per
// goroutine; it is not safe for concurrent use.
type Encoder struct {
	mem     memory.Allocator
	ipcOpts []ipc.Option

	id    *array.StringBuilder
	ts    *array.TimestampBuilder
	dicts [numDictCols]dictCol
	dictV *array.StringBuilder
	toks  [numTokenCols]*array.Int64Builder
	lat   *array.Float64Builder
	ttft  *array.Float64Builder
	gpu   *array.Float64Builder
	attrs *array.MapBuilder
	keys  *array.StringBuilder
	items *array.StringBuilder

	buf     bytes.Buffer
	keysBuf []string
}

const (
	numDictCols  = 9 // tenant, provider, model, status, error_type, application, operation, region, service_tier
	numTokenCols = 6 // input, cached_input, cache_write, output, reasoning, cache_write_1h
	// dictServiceTier is the index in Encoder.dicts of service_tier, the
	// one dictionary column after the token counts in the schema.
	dictServiceTier = 8
)

// NewEncoder returns an Encoder with default options using mem for arrow
// memory (nil means memory.DefaultAllocator).
func NewEncoder(mem memory.Allocator) *Encoder {
	opts := DefaultEncoderOptions()
	opts.Allocator = mem
	enc, err := NewEncoderWithOptions(opts)
	if err != nil {
		panic(err) // unreachable: the defaults are valid
	}
	return enc
}

// NewEncoderWithOptions returns an Encoder configured by opts.
func NewEncoderWithOptions(opts EncoderOptions) (*Encoder, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	mem := opts.Allocator
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	enc := &Encoder{mem: mem, ipcOpts: []ipc.Option{ipc.WithSchema(schema), ipc.WithAllocator(mem)}}
	switch opts.Compression {
	case CompressionLZ4:
		enc.ipcOpts = append(enc.ipcOpts, ipc.WithLZ4())
	case CompressionZSTD:
		enc.ipcOpts = append(enc.ipcOpts, ipc.WithZstd())
	}
	enc.id = array.NewStringBuilder(mem)
	enc.ts = array.NewTimestampBuilder(mem, timestampType)
	for i := range enc.dicts {
		enc.dicts[i] = dictCol{index: map[string]int32{}, idx: array.NewInt32Builder(mem)}
	}
	enc.dictV = array.NewStringBuilder(mem)
	for i := range enc.toks {
		enc.toks[i] = array.NewInt64Builder(mem)
	}
	enc.lat = array.NewFloat64Builder(mem)
	enc.ttft = array.NewFloat64Builder(mem)
	enc.gpu = array.NewFloat64Builder(mem)
	enc.attrs = array.NewMapBuilderWithType(mem, attributesType)
	enc.keys = enc.attrs.KeyBuilder().(*array.StringBuilder)
	enc.items = enc.attrs.ItemBuilder().(*array.StringBuilder)
	return enc, nil
}

// Encode returns one Arrow IPC stream (schema, dictionaries, one record batch
// of len(events) rows, end-of-stream marker) in a freshly allocated slice the
// caller owns. Every event is validated first: an invalid event, or one
// whose timestamp is after 2262-04-11 (the end of timestamp[ns]), fails the
// whole call with an error naming its index and wrapping the
// *schemas.FieldError. events is only read.
func (enc *Encoder) Encode(events []schemas.Event) ([]byte, error) {
	if err := enc.encode(events); err != nil {
		return nil, err
	}
	return bytes.Clone(enc.buf.Bytes()), nil
}

// AppendEncode is Encode appending the stream to dst, for callers that reuse
// an output buffer. On error dst is returned unchanged.
func (enc *Encoder) AppendEncode(dst []byte, events []schemas.Event) ([]byte, error) {
	if err := enc.encode(events); err != nil {
		return dst, err
	}
	return append(dst, enc.buf.Bytes()...), nil
}

func checkEncodable(i int, e *schemas.Event) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("cannot encode event %d (event_id %q): %w", i, e.EventID, err)
	}
	if e.Timestamp.After(maxNanoTime) {
		return fmt.Errorf("cannot encode event %d (event_id %q): %w", i, e.EventID, &schemas.FieldError{
			Field: ColTimestamp, Value: e.Timestamp.UTC().Format(time.RFC3339Nano),
			Reason: "after 2262-04-11, the end of the arrow timestamp[ns] range",
		})
	}
	return nil
}

func (enc *Encoder) encode(events []schemas.Event) error {
	if max := DefaultDecoderOptions().MaxRows; len(events) > max {
		return fmt.Errorf("cannot encode %d events in one stream: decoders accept %d by default; split the batch", len(events), max)
	}
	for i := range events {
		if err := checkEncodable(i, &events[i]); err != nil {
			return err
		}
	}
	n := len(events)
	idBytes := 0
	for i := range events {
		idBytes += len(events[i].EventID)
	}
	enc.id.Reserve(n)
	enc.id.ReserveData(idBytes)
	enc.ts.Reserve(n)
	for _, b := range enc.toks {
		b.Reserve(n)
	}
	enc.lat.Reserve(n)
	enc.ttft.Reserve(n)
	enc.gpu.Reserve(n)
	enc.attrs.Reserve(n)
	for j := range enc.dicts {
		enc.dicts[j].idx.Reserve(n)
	}
	for i := range events {
		e := &events[i]
		enc.id.Append(e.EventID)
		enc.ts.UnsafeAppend(arrow.Timestamp(e.Timestamp.UnixNano()))
		for j, s := range [numDictCols]string{e.Tenant, e.Provider, e.Model, e.Status.String(),
			e.ErrorType, e.Application, e.Operation, e.Region, e.ServiceTier} {
			enc.dicts[j].append(s)
		}
		enc.toks[0].UnsafeAppend(e.InputTokens)
		enc.toks[1].UnsafeAppend(e.CachedInputTokens)
		enc.toks[2].UnsafeAppend(e.CacheWriteTokens)
		enc.toks[3].UnsafeAppend(e.OutputTokens)
		enc.toks[4].UnsafeAppend(e.ReasoningTokens)
		enc.toks[5].UnsafeAppend(e.CacheWrite1hTokens)
		appendOptFloat(enc.lat, e.LatencyMs, e.HasLatency)
		appendOptFloat(enc.ttft, e.TTFTMs, e.HasTTFT)
		enc.gpu.UnsafeAppend(e.GPUMs)
		if len(e.Attributes) == 0 {
			enc.attrs.AppendNull()
			continue
		}
		enc.attrs.Append(true)
		// Sorted keys make the bytes deterministic (golden files, dedupe by hash).
		enc.keysBuf = enc.keysBuf[:0]
		for k := range e.Attributes {
			enc.keysBuf = append(enc.keysBuf, k)
		}
		slices.Sort(enc.keysBuf)
		for _, k := range enc.keysBuf {
			enc.keys.Append(k)
			enc.items.Append(e.Attributes[k])
		}
	}
	clear(enc.keysBuf)

	cols := enc.newArrays()
	rec := array.NewRecord(schema, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	defer rec.Release()

	enc.buf.Reset()
	w := ipc.NewWriter(&enc.buf, enc.ipcOpts...)
	if err := w.Write(rec); err != nil {
		w.Close()
		return fmt.Errorf("cannot encode arrow batch of %d events: %w", n, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("cannot encode arrow batch of %d events: %w", n, err)
	}
	return nil
}

func appendOptFloat(b *array.Float64Builder, v float64, ok bool) {
	if !ok {
		b.AppendNull()
		return
	}
	b.UnsafeAppend(v)
}

// newArrays finishes the builders in schema order, resetting them (and the
// dictionaries, so each stream carries only its own values) for the next call.
func (enc *Encoder) newArrays() []arrow.Array {
	cols := make([]arrow.Array, 0, len(schema.Fields()))
	cols = append(cols, enc.id.NewArray(), enc.ts.NewArray())
	for j := range dictServiceTier { // tenant … region
		cols = append(cols, enc.dicts[j].newArray(enc.dictV))
	}
	for _, b := range enc.toks { // input … reasoning, cache_write_1h
		cols = append(cols, b.NewArray())
	}
	cols = append(cols, enc.dicts[dictServiceTier].newArray(enc.dictV))
	cols = append(cols, enc.lat.NewArray(), enc.ttft.NewArray(), enc.gpu.NewArray(), enc.attrs.NewArray())
	return cols
}

// dictCol builds a dictionary<int32, utf8> column: a Go map from value to
// index is cheaper than arrow's dictionary builder (which converts every
// string to []byte), and first-appearance order keeps the bytes
// deterministic.
type dictCol struct {
	index map[string]int32
	vals  []string
	idx   *array.Int32Builder
}

// append adds s; "" is null (only optional columns can be empty after
// validation). The caller reserved room in idx.
func (c *dictCol) append(s string) {
	if s == "" {
		c.idx.AppendNull()
		return
	}
	j, ok := c.index[s]
	if !ok {
		j = int32(len(c.vals))
		c.index[s] = j
		c.vals = append(c.vals, s)
	}
	c.idx.UnsafeAppend(j)
}

// newArray finishes the column and resets it for the next stream.
func (c *dictCol) newArray(values *array.StringBuilder) arrow.Array {
	indices := c.idx.NewArray()
	defer indices.Release()
	values.AppendValues(c.vals, nil)
	dict := values.NewArray()
	defer dict.Release()
	clear(c.index)
	clear(c.vals)
	c.vals = c.vals[:0]
	return array.NewDictionaryArray(dictString, indices, dict)
}
