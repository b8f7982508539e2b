package arrowcodec

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/costpipe/costpipe/schemas"
)

// fuzzDecoder is shared by the iterations of a fuzz worker, so its schema
// cache and scratch buffers see many streams in a row.
var fuzzDecoder = func() *Decoder {
	d, err := NewDecoderWithOptions(DecoderOptions{MaxRows: 1 << 16, MaxBytes: 4 << 20})
	if err != nil {
		panic(err)
	}
	return d
}()

type decodeResult struct {
	events  []schemas.Event
	invalid []int
	err     error
}

func decodeWith(d *Decoder, data []byte) decodeResult {
	var r decodeResult
	r.err = d.Decode(data, func(e schemas.Event) error {
		r.events = append(r.events, e)
		return nil
	}, func(row int, err error) { r.invalid = append(r.invalid, row) })
	return r
}

// decodeArrowSeeds are valid streams of many shapes for FuzzDecodeArrow.
func decodeArrowSeeds(f testing.TB) [][]byte {
	old, err := os.ReadFile(filepath.Join("testdata", "events_v1_before_service_tier.arrows"))
	if err != nil {
		f.Fatal(err)
	}
	seeds := [][]byte{
		old,
		mustEncode(f, variedEvents()),
		mustEncode(f, typicalEvents(20, 1)),
		mustEncode(f, nil),
	}
	for _, c := range []Compression{CompressionLZ4, CompressionZSTD} {
		enc, _ := NewEncoderWithOptions(EncoderOptions{Compression: c})
		b, _ := enc.Encode(variedEvents()[:2])
		seeds = append(seeds, b)
	}
	// A third-party stream: plain and view strings, other units, unknown
	// columns, several batches with dictionary deltas, invalid rows.
	sc := arrow.NewSchema([]arrow.Field{
		{Name: ColEventID, Type: arrow.BinaryTypes.StringView},
		{Name: "extra", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
		{Name: ColTimestamp, Type: &arrow.TimestampType{Unit: arrow.Second}},
		{Name: ColTenant, Type: arrow.BinaryTypes.String},
		{Name: ColProvider, Type: arrow.BinaryTypes.LargeString},
		{Name: ColModel, Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}},
		{Name: ColStatus, Type: dictString},
		{Name: ColInputTokens, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: ColAttributes, Type: attributesType, Nullable: true},
	}, nil)
	rows := []row{
		{ColEventID: "a-long-event-identifier", "extra": []int64{1}, ColTimestamp: int64(1_700_000_000), ColTenant: "t",
			ColProvider: "p", ColModel: "m1", ColStatus: "ok", ColInputTokens: 5, ColAttributes: []kv{{"k", strp("v")}}},
		{ColEventID: "b", ColTimestamp: int64(-5), ColTenant: "t", ColProvider: "p", ColModel: "m2", ColStatus: "nope"},
		{ColEventID: "c", ColTimestamp: int64(1), ColTenant: "t", ColProvider: "p", ColModel: "m1", ColStatus: "error",
			ColAttributes: []kv{{"k", nil}}},
	}
	return append(seeds, streamOf(f, sc, rows, 1, ipc.WithDictionaryDeltas(true)), streamOf(f, sc, rows, 3))
}

func FuzzDecodeArrow(f *testing.F) {
	for _, s := range decodeArrowSeeds(f) {
		f.Add(s)
		f.Add(s[:len(s)/2])
		f.Add(s[:len(s)-9])
		m := append([]byte(nil), s...)
		m[len(m)/3] ^= 0x5a
		f.Add(m)
	}
	f.Fuzz(checkDecodeArrow)
}

// checkDecodeArrow is the property FuzzDecodeArrow checks on any bytes.
func checkDecodeArrow(t *testing.T, data []byte) {
	{
		fresh, _ := NewDecoderWithOptions(DecoderOptions{MaxRows: 1 << 16, MaxBytes: 4 << 20})
		a := decodeWith(fuzzDecoder, data)
		b := decodeWith(fresh, data)
		if a.err != nil {
			if !errors.Is(a.err, ErrInvalidStream) {
				t.Fatalf("error %v does not match ErrInvalidStream", a.err)
			}
			if len(a.events) > 0 || len(a.invalid) > 0 {
				t.Fatalf("rows delivered (%d valid, %d invalid) before the stream error %v", len(a.events), len(a.invalid), a.err)
			}
		}
		if (a.err == nil) != (b.err == nil) || len(a.events) != len(b.events) || len(a.invalid) != len(b.invalid) {
			t.Fatalf("a reused decoder disagrees with a fresh one: %v/%d/%d vs %v/%d/%d",
				a.err, len(a.events), len(a.invalid), b.err, len(b.events), len(b.invalid))
		}
		for i := range a.events {
			if err := a.events[i].Validate(); err != nil {
				t.Fatalf("delivered event %d is invalid: %v", i, err)
			}
			if !a.events[i].Equal(&b.events[i]) {
				t.Fatalf("event %d differs between decoders", i)
			}
		}
		// What decodes re-encodes and decodes the same (timestamps after
		// 2262 aside, which timestamp[ns] cannot hold).
		if a.err == nil && len(a.events) > 0 {
			data2, err := NewEncoder(nil).Encode(a.events)
			if err != nil {
				for i := range a.events {
					if a.events[i].Timestamp.After(maxNanoTime) {
						return
					}
				}
				t.Fatalf("re-encode: %v", err)
			}
			c := decodeWith(fresh, data2)
			if c.err != nil || len(c.events) != len(a.events) {
				t.Fatalf("re-decode: %v, %d events, want %d", c.err, len(c.events), len(a.events))
			}
			for i := range c.events {
				if !c.events[i].Equal(&a.events[i]) {
					t.Fatalf("re-decoded event %d:\n%+v\nwant\n%+v", i, c.events[i], a.events[i])
				}
			}
		}
	}
}

func FuzzArrowRoundTrip(f *testing.F) {
	f.Add("e-1", int64(1741964966535897932), "acme", "openai", "gpt-4o", true, "", "search", "chat", "us-east-1", "priority",
		int64(100), int64(10), int64(5), int64(3), int64(50), int64(20), 120.5, true, 30.25, true, 0.0, "k", "v", uint8(1))
	f.Add("é-日本", int64(0), "Zürich", "self-hosted", "llama", false, "timeout", "", "", "", "",
		int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), 0.0, false, 0.0, false, 86400000.0, "", "", uint8(0))
	f.Add("x", int64(math.MaxInt64), "t", "p", "m", true, "\xff", "a", "o", "r", "on demand",
		int64(1e9), int64(1e9), int64(0), int64(1), int64(1e9), int64(1e9), math.NaN(), true, -1.0, true, 1.5, "key", "\x00", uint8(3))
	f.Fuzz(func(t *testing.T, id string, tsNanos int64, tenant, provider, model string, ok bool,
		errType, app, op, region, tier string, in, cached, cw, cw1h, out, reasoning int64,
		lat float64, hasLat bool, ttft float64, hasTTFT bool, gpu float64, ak, av string, copies uint8) {
		e := schemas.Event{
			EventID: id, Timestamp: time.Unix(0, tsNanos).UTC(), Tenant: tenant, Provider: provider, Model: model,
			Status: schemas.StatusError, ErrorType: errType, Application: app, Operation: op, Region: region,
			ServiceTier: tier, InputTokens: in, CachedInputTokens: cached, CacheWriteTokens: cw, CacheWrite1hTokens: cw1h,
			OutputTokens: out, ReasoningTokens: reasoning, LatencyMs: lat, HasLatency: hasLat, TTFTMs: ttft, HasTTFT: hasTTFT,
			GPUMs: gpu,
		}
		if ok {
			e.Status = schemas.StatusOK
		}
		if ak != "" || av != "" {
			e.Attributes = map[string]string{ak: av, ak + "2": av}
		}
		// A batch of variants: copies of e with distinct ids and one
		// attribute-less copy, so dictionaries hold repeated values.
		evs := []schemas.Event{e}
		for i := 0; i < int(copies%4); i++ {
			c := e
			c.EventID = e.EventID + string(rune('a'+i))
			c.Attributes = nil
			evs = append(evs, c)
		}
		valid := true
		for i := range evs {
			if evs[i].Validate() != nil {
				valid = false
			}
		}
		data, err := NewEncoder(nil).Encode(evs)
		if !valid {
			var fe *schemas.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Encode of an invalid event: %v, want a FieldError", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Encode of valid events: %v", err)
		}
		got, err := DecodeAll(data)
		if err != nil {
			t.Fatalf("DecodeAll: %v", err)
		}
		if len(got) != len(evs) {
			t.Fatalf("%d events, want %d", len(got), len(evs))
		}
		for i := range evs {
			if !got[i].Equal(&evs[i]) {
				t.Fatalf("event %d:\n got  %+v\n want %+v", i, got[i], evs[i])
			}
		}
	})
}
