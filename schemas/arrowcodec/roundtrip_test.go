package arrowcodec

import (
	"bytes"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/costpipe/costpipe/schemas"
)

func TestRoundTripVaried(t *testing.T) {
	want := variedEvents()
	got, bad, err := decodeCollect(t, mustEncode(t, want))
	if err != nil || len(bad) != 0 {
		t.Fatalf("Decode: %v, invalid rows %v", err, bad)
	}
	assertEqualEvents(t, got, want)
	// Spot checks that do not rely on Equal.
	if got[2].EventID != "é-3-日本語" || got[2].Attributes["ключ"] != "значение" || got[2].GPUMs != 1234.5678 {
		t.Errorf("unicode event decoded as %+v", got[2])
	}
	if got[1].HasLatency || got[1].HasTTFT || got[1].Attributes != nil || got[1].Application != "" {
		t.Errorf("absent optionals decoded as present: %+v", got[1])
	}
	if !got[3].HasTTFT || got[3].HasLatency {
		t.Errorf("ttft without latency decoded as %+v", got[3])
	}
	if got[2].Timestamp.Nanosecond() != 854775807 || got[2].Timestamp.Location() != time.UTC {
		t.Errorf("timestamp %v lost its nanoseconds or UTC", got[2].Timestamp)
	}
}

func TestRoundTripTypical(t *testing.T) {
	want := typicalEvents(3000, 7)
	got, err := DecodeAll(mustEncode(t, want))
	if err != nil {
		t.Fatal(err)
	}
	assertEqualEvents(t, got, want)
}

// Kafka record values start anywhere in a fetch buffer: buffers read in
// place may be unaligned.
func TestDecodeUnaligned(t *testing.T) {
	want := typicalEvents(100, 4)
	data := mustEncode(t, want)
	for shift := 1; shift < 8; shift++ {
		buf := make([]byte, len(data)+shift)
		copy(buf[shift:], data)
		got, err := DecodeAll(buf[shift:])
		if err != nil {
			t.Fatalf("shift %d: %v", shift, err)
		}
		assertEqualEvents(t, got, want)
	}
}

func TestRoundTripEmpty(t *testing.T) {
	got, err := DecodeAll(mustEncode(t, nil))
	if err != nil || len(got) != 0 {
		t.Fatalf("empty batch: %d events, %v", len(got), err)
	}
}

func TestRoundTripCompressed(t *testing.T) {
	want := typicalEvents(500, 3)
	for _, c := range []Compression{CompressionLZ4, CompressionZSTD} {
		enc, err := NewEncoderWithOptions(EncoderOptions{Compression: c})
		if err != nil {
			t.Fatal(err)
		}
		data, err := enc.Encode(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeAll(data)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		assertEqualEvents(t, got, want)
	}
}

// The decoder keeps the last schema; streams with other schemas in between
// must not confuse it, nor must a reused encoder carry dictionary values
// from one stream to the next.
func TestDecoderAndEncoderReuse(t *testing.T) {
	enc, d := NewEncoder(nil), NewDecoder()
	plain := arrow.NewSchema([]arrow.Field{
		{Name: ColEventID, Type: arrow.BinaryTypes.String}, {Name: ColTimestamp, Type: timestampType},
		{Name: ColTenant, Type: arrow.BinaryTypes.String}, {Name: ColProvider, Type: arrow.BinaryTypes.String},
		{Name: ColModel, Type: arrow.BinaryTypes.String}, {Name: ColStatus, Type: arrow.BinaryTypes.String},
	}, nil)
	for i, batch := range [][]schemas.Event{typicalEvents(10, 1), variedEvents(), nil, typicalEvents(7, 2)} {
		data, err := enc.Encode(batch)
		if err != nil {
			t.Fatal(err)
		}
		var got []schemas.Event
		if err := d.Decode(data, func(e schemas.Event) error { got = append(got, e); return nil }, nil); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		assertEqualEvents(t, got, batch)

		other := streamOf(t, plain, []row{validRow("p-1")}, 10)
		n := 0
		if err := d.Decode(other, func(e schemas.Event) error { n++; return nil }, nil); err != nil || n != 1 {
			t.Fatalf("plain stream after batch %d: %d events, %v", i, n, err)
		}
	}
	// A stream's dictionary holds only its own values.
	one, _ := enc.Encode(typicalEvents(1, 9))
	if bytes.Count(one, []byte("tenant-")) != 1 {
		t.Errorf("dictionary of a 1-event stream holds %d tenants", bytes.Count(one, []byte("tenant-")))
	}
}

func TestEncodeRejectsInvalidEvents(t *testing.T) {
	evs := typicalEvents(3, 1)
	evs[1].ReasoningTokens = evs[1].OutputTokens + 1
	_, err := NewEncoder(nil).Encode(evs)
	var fe *schemas.FieldError
	if !errors.As(err, &fe) || fe.Field != ColReasoningTokens || !strings.Contains(err.Error(), "cannot encode event 1") {
		t.Fatalf("got %v, want a FieldError on reasoning_tokens for event 1", err)
	}

	evs = typicalEvents(2, 1)
	evs[0].Timestamp = time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC)
	if _, err := NewEncoder(nil).Encode(evs); !errors.As(err, &fe) || fe.Field != ColTimestamp {
		t.Fatalf("timestamp after 2262: got %v, want a FieldError on timestamp", err)
	}
	// The failed calls left nothing behind in the builders.
	enc := NewEncoder(nil)
	_, _ = enc.Encode(evs)
	want := typicalEvents(4, 5)
	data, err := enc.Encode(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAll(data)
	if err != nil {
		t.Fatal(err)
	}
	assertEqualEvents(t, got, want)
}

func TestEncoderOptionsValidate(t *testing.T) {
	if err := DefaultEncoderOptions().Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewEncoderWithOptions(EncoderOptions{Compression: 9}); err == nil {
		t.Fatal("compression 9 accepted")
	}
	if err := DefaultDecoderOptions().Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDecoderWithOptions(DecoderOptions{MaxRows: 0, MaxBytes: 1 << 20}); err == nil {
		t.Fatal("MaxRows 0 accepted")
	}
}

// The encoder's streams are ordinary Arrow: the arrow library reads them
// back with the documented schema.
func TestEncodedStreamReadByArrow(t *testing.T) {
	evs := variedEvents()
	r, err := ipc.NewReader(bytes.NewReader(mustEncode(t, evs)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Schema().Equal(Schema()) {
		t.Fatalf("schema\n%v\nwant\n%v", r.Schema(), Schema())
	}
	if v, ok := r.Schema().Metadata().GetValue(MetadataSchemaVersion); !ok || v != "1" {
		t.Fatalf("schema version metadata %q, %v", v, ok)
	}
	if !r.Next() {
		t.Fatalf("no record: %v", r.Err())
	}
	rec := r.Record()
	if rec.NumRows() != int64(len(evs)) {
		t.Fatalf("%d rows, want %d", rec.NumRows(), len(evs))
	}
	if got := rec.Column(1).ValueStr(0); got != "2025-03-14 15:09:26.535897932Z" {
		t.Errorf("timestamp column renders %q", got)
	}
}

func TestSchemaDocumented(t *testing.T) {
	doc, err := os.ReadFile("../event.arrow.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Schema().Fields() {
		if !bytes.Contains(doc, []byte("`"+f.Name+"`")) {
			t.Errorf("column %q is not described in schemas/event.arrow.md", f.Name)
		}
	}
	if got := len(Schema().Fields()); got != numSlots {
		t.Errorf("schema has %d columns, the decoder knows %d", got, numSlots)
	}
	for i, f := range Schema().Fields() {
		if specs[slotByName[f.Name]].name != f.Name {
			t.Errorf("column %d %q unknown to the decoder", i, f.Name)
		}
	}
}

// Decode must not be fooled by NaN/Inf and other float edge cases that
// Encode refuses: build them with the arrow writer directly.
func TestDecodeFloatEdges(t *testing.T) {
	rows := []row{
		validRow("nan").with(ColLatencyMs, math.NaN()),
		validRow("inf").with(ColTTFTMs, math.Inf(1)),
		validRow("neg").with(ColGPUMs, -1.0),
		validRow("big").with(ColGPUMs, float64(schemas.MaxDurationMs)+0.001),
		validRow("negzero").with(ColLatencyMs, math.Copysign(0, -1)),
		validRow("max").with(ColLatencyMs, float64(schemas.MaxDurationMs)),
	}
	got, bad, err := decodeCollect(t, streamOf(t, Schema(), rows, 100))
	if err != nil {
		t.Fatal(err)
	}
	wantField := map[int]string{0: ColLatencyMs, 1: ColTTFTMs, 2: ColGPUMs, 3: ColGPUMs}
	for row, field := range wantField {
		assertFieldError(t, bad[row], field)
	}
	if len(got) != 2 || got[0].EventID != "negzero" || got[1].EventID != "max" {
		t.Errorf("valid rows: %+v", got)
	}
}

func assertFieldError(t *testing.T, err error, field string) {
	t.Helper()
	var fe *schemas.FieldError
	if !errors.As(err, &fe) || fe.Field != field {
		t.Errorf("got %v, want a FieldError on %q", err, field)
		return
	}
	var re *RowError
	if !errors.As(err, &re) {
		t.Errorf("%v is not a *RowError", err)
	}
}

func TestDecodeReentrantPanics(t *testing.T) {
	d := NewDecoder()
	data := mustEncode(t, typicalEvents(2, 1))
	defer func() {
		if recover() == nil {
			t.Fatal("nested Decode did not panic")
		}
		// The Decoder is usable again after the panic.
		if _, err := DecodeAll(data); err != nil {
			t.Fatal(err)
		}
		if err := d.Decode(data, func(schemas.Event) error { return nil }, nil); err != nil {
			t.Fatal(err)
		}
	}()
	_ = d.Decode(data, func(schemas.Event) error {
		return d.Decode(data, func(schemas.Event) error { return nil }, nil)
	}, nil)
}
