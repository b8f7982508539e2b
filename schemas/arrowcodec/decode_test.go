package arrowcodec

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/costpipe/costpipe/schemas"
)

// schemaWith returns the contract schema with some columns replaced (by
// name), removed (nil type) or added (unknown names, appended).
func schemaWith(changes map[string]arrow.DataType, md *arrow.Metadata) *arrow.Schema {
	var fields []arrow.Field
	seen := map[string]bool{}
	for _, f := range Schema().Fields() {
		seen[f.Name] = true
		if t, ok := changes[f.Name]; ok {
			if t == nil {
				continue
			}
			f.Type = t
		}
		fields = append(fields, f)
	}
	for name, t := range changes {
		if !seen[name] && t != nil {
			fields = append(fields, arrow.Field{Name: name, Type: t, Nullable: true})
		}
	}
	if md == nil {
		m := Schema().Metadata()
		md = &m
	}
	return arrow.NewSchema(fields, md)
}

func TestDecodeSchemaErrors(t *testing.T) {
	version2 := arrow.NewMetadata([]string{MetadataSchemaVersion}, []string{"2"})
	dup := arrow.NewSchema(append(Schema().Fields(), arrow.Field{Name: ColModel, Type: arrow.BinaryTypes.String}), nil)
	for _, tc := range []struct {
		name   string
		schema *arrow.Schema
		want   string
	}{
		{"wrong type", schemaWith(map[string]arrow.DataType{ColInputTokens: arrow.BinaryTypes.String}, nil),
			`cannot decode arrow batch: column "input_tokens" has type utf8, want int64`},
		{"wrong timestamp type", schemaWith(map[string]arrow.DataType{ColTimestamp: arrow.PrimitiveTypes.Int64}, nil),
			`cannot decode arrow batch: column "timestamp" has type int64, want timestamp[ns, tz=UTC]`},
		{"wrong string type", schemaWith(map[string]arrow.DataType{ColTenant: arrow.PrimitiveTypes.Int32}, nil),
			`cannot decode arrow batch: column "tenant" has type int32, want utf8 or dictionary<int32, utf8>`},
		{"wrong map type", schemaWith(map[string]arrow.DataType{ColAttributes: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64)}, nil),
			`cannot decode arrow batch: column "attributes" has type map<utf8, int64>, want map<utf8, utf8>`},
		{"missing required", schemaWith(map[string]arrow.DataType{ColTenant: nil}, nil),
			`cannot decode arrow batch: missing required column "tenant"`},
		{"duplicate", dup, `cannot decode arrow batch: column "model" appears twice`},
		{"version", schemaWith(nil, &version2), `cannot decode arrow batch: unsupported costpipe.schema_version "2", want "1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := streamOf(t, tc.schema, nil, 1)
			err := NewDecoder().Decode(data, func(schemas.Event) error { return nil }, nil)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got  %v\nwant %s", err, tc.want)
			}
			if !errors.Is(err, ErrInvalidStream) {
				t.Errorf("%v does not match ErrInvalidStream", err)
			}
		})
	}
}

func TestDecodeInvalidRows(t *testing.T) {
	long := strings.Repeat("x", schemas.MaxEventIDLen+1)
	rows := []row{
		validRow("ok-0"),
		validRow("bad-1").with(ColReasoningTokens, 51),  // > output_tokens
		validRow("bad-2").with(ColTenant, nil),          // null required
		validRow("bad-3").with(ColStatus, "maybe"),      // not a status
		validRow("bad-4").with(ColInputTokens, -1),      // negative
		validRow("bad-5").with(ColTimestamp, int64(-1)), // 1969
		validRow("bad-6").with(ColTimestamp, nil),       // null timestamp
		validRow(long), // event_id too long
		validRow("bad-8").with(ColCachedInputTokens, 96),              // cached+write > input
		validRow("bad-9").with(ColAttributes, []kv{{"k", nil}}),       // null attribute value
		validRow("bad-10").with(ColAttributes, []kv{{"", strp("v")}}), // empty key
		validRow("bad-11").with(ColOutputTokens, schemas.MaxTokens+1), // over 10^9
		validRow("bad-12").with(ColApplication, strings.Repeat("a", schemas.MaxApplicationLen+1)),
		validRow("bad-13").with(ColModel, "\xff\xfe"),                                   // not UTF-8
		validRow("ok-14").with(ColAttributes, []kv{{"a", strp("1")}, {"a", strp("2")}}), // last duplicate wins
		validRow("ok-15").with(ColLatencyMs, nil, ColTTFTMs, nil, ColErrorType, nil),
		validRow(""), // empty event_id
		validRow("bad-17").with(ColCacheWrite1hTokens, 6),                                         // > cache_write_tokens
		validRow("bad-18").with(ColCacheWrite1hTokens, -1),                                        // negative
		validRow("bad-19").with(ColServiceTier, "on demand"),                                      // not a service tier character
		validRow("bad-20").with(ColServiceTier, strings.Repeat("t", schemas.MaxServiceTierLen+1)), // too long
		validRow("ok-21").with(ColServiceTier, nil, ColCacheWrite1hTokens, nil),                   // absent
		validRow("ok-22").with(ColServiceTier, "Priority", ColCacheWrite1hTokens, 5),              // kept as sent, all writes 1-hour
		validRow("bad-23").with(ColServiceTier, "flé"),                                            // not ASCII
	}
	wantField := map[int]string{
		1: ColReasoningTokens, 2: ColTenant, 3: ColStatus, 4: ColInputTokens, 5: ColTimestamp,
		6: ColTimestamp, 7: ColEventID, 8: ColCachedInputTokens, 9: "attributes.k", 10: ColAttributes,
		11: ColOutputTokens, 12: ColApplication, 13: ColModel, 16: ColEventID,
		17: ColCacheWrite1hTokens, 18: ColCacheWrite1hTokens, 19: ColServiceTier, 20: ColServiceTier, 23: ColServiceTier,
	}
	data := streamOf(t, Schema(), rows, 5) // several record batches
	got, bad, err := decodeCollect(t, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != len(wantField) {
		t.Errorf("%d invalid rows, want %d: %v", len(bad), len(wantField), bad)
	}
	for row, field := range wantField {
		assertFieldError(t, bad[row], field)
	}
	var re *RowError
	if errors.As(bad[3], &re) && (re.Row != 3 || re.EventID != "bad-3" ||
		re.Error() != `invalid event at row 3 (event_id "bad-3"): invalid field "status" = "maybe": must be "ok" or "error"`) {
		t.Errorf("row error %+v: %v", re, re)
	}
	if len(got) != 5 || got[0].EventID != "ok-0" || got[1].EventID != "ok-14" || got[2].EventID != "ok-15" ||
		got[3].EventID != "ok-21" || got[4].EventID != "ok-22" {
		t.Fatalf("valid rows %+v", got)
	}
	if got[0].ServiceTier != "flex" || got[0].CacheWrite1hTokens != 3 || got[3].ServiceTier != "" || got[3].CacheWrite1hTokens != 0 ||
		got[4].ServiceTier != "Priority" || got[4].CacheWrite1hTokens != 5 {
		t.Errorf("service tiers and 1-hour cache writes decoded as %+v, %+v, %+v", got[0], got[3], got[4])
	}
	if re := new(RowError); errors.As(bad[19], &re) && re.Error() != `invalid event at row 19 (event_id "bad-19"): invalid field "service_tier" = "on demand": `+
		`character ' ' (U+0020) at byte 2 (only ASCII letters, digits, '_', '-' and '.' are allowed)` {
		t.Errorf("row error %v", re)
	}
	if got[1].Attributes["a"] != "2" || len(got[1].Attributes) != 1 {
		t.Errorf("duplicate attribute keys decoded as %v", got[1].Attributes)
	}
	if got[2].HasLatency || got[2].HasTTFT {
		t.Errorf("null latency decoded as present: %+v", got[2])
	}
	for i := range got {
		if err := got[i].Validate(); err != nil {
			t.Errorf("delivered an invalid event: %v", err)
		}
	}

	// Without onInvalid the first invalid row stops decoding.
	n := 0
	err = NewDecoder().Decode(data, func(schemas.Event) error { n++; return nil }, nil)
	if !errors.As(err, &re) || re.Row != 1 || n != 1 {
		t.Fatalf("strict decode: %v after %d events", err, n)
	}
	if _, err := DecodeAll(data); !errors.As(err, &re) {
		t.Fatalf("DecodeAll: %v", err)
	}
}

// TestDecodeServiceTierColumns: streams without the cache_write_1h_tokens
// and service_tier columns (older producers) decode with both zero; other
// producers may write them as plain strings and narrower integers; the
// service tier rule is checked once per distinct value of any form.
func TestDecodeServiceTierColumns(t *testing.T) {
	rows := []row{
		validRow("a").with(ColServiceTier, "batch", ColCacheWrite1hTokens, 5),
		validRow("b").with(ColServiceTier, nil, ColCacheWrite1hTokens, nil),
		validRow("c").with(ColServiceTier, "a b"),
		validRow("d").with(ColServiceTier, "batch", ColCacheWrite1hTokens, 6),
	}
	without := schemaWith(map[string]arrow.DataType{ColServiceTier: nil, ColCacheWrite1hTokens: nil}, nil)
	got, bad, err := decodeCollect(t, streamOf(t, without, rows, 3))
	if err != nil || len(bad) != 0 || len(got) != 4 {
		t.Fatalf("without the columns: %d events, invalid %v, %v", len(got), bad, err)
	}
	for _, e := range got {
		if e.ServiceTier != "" || e.CacheWrite1hTokens != 0 || e.CacheWriteTokens != 5 {
			t.Errorf("without the columns: %+v", e)
		}
	}
	for name, sc := range map[string]*arrow.Schema{
		"contract": Schema(),
		"plain": schemaWith(map[string]arrow.DataType{ColServiceTier: arrow.BinaryTypes.String,
			ColCacheWrite1hTokens: arrow.PrimitiveTypes.Int32}, nil),
		"view": schemaWith(map[string]arrow.DataType{ColServiceTier: arrow.BinaryTypes.StringView,
			ColCacheWrite1hTokens: arrow.PrimitiveTypes.Uint64}, nil),
	} {
		for _, batchSize := range []int{1, 4} {
			got, bad, err := decodeCollect(t, streamOf(t, sc, rows, batchSize))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(got) != 2 || got[0].ServiceTier != "batch" || got[0].CacheWrite1hTokens != 5 ||
				got[1].ServiceTier != "" || got[1].CacheWrite1hTokens != 0 {
				t.Fatalf("%s: valid rows %+v", name, got)
			}
			if len(bad) != 2 {
				t.Fatalf("%s: invalid rows %v", name, bad)
			}
			assertFieldError(t, bad[2], ColServiceTier)
			assertFieldError(t, bad[3], ColCacheWrite1hTokens)
		}
	}
	// A wrong type is a schema error naming the column.
	wrong := schemaWith(map[string]arrow.DataType{ColServiceTier: arrow.PrimitiveTypes.Int64}, nil)
	err = NewDecoder().Decode(streamOf(t, wrong, nil, 1), func(schemas.Event) error { return nil }, nil)
	if err == nil || err.Error() != `cannot decode arrow batch: column "service_tier" has type int64, want utf8 or dictionary<int32, utf8>` {
		t.Fatalf("service_tier as int64: %v", err)
	}
}

func TestDecodeCallbackError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := NewDecoder().Decode(mustEncode(t, typicalEvents(10, 1)), func(schemas.Event) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	}, nil)
	if err != stop || n != 3 {
		t.Fatalf("got %v after %d events, want stop after 3", err, n)
	}
}

// Streams from other producers: plain, large and view strings, narrower
// numbers, timestamps in other units without time zone, optional columns
// missing, unknown columns of many types interleaved, several batches.
func TestDecodeInterop(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "trace_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ColEventID, Type: arrow.BinaryTypes.String},
		{Name: "flags", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
		{Name: ColTimestamp, Type: &arrow.TimestampType{Unit: arrow.Millisecond}},
		{Name: ColTenant, Type: arrow.BinaryTypes.LargeString},
		{Name: "extra_dict", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.BinaryTypes.String}, Nullable: true},
		{Name: ColProvider, Type: arrow.BinaryTypes.StringView},
		{Name: ColModel, Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Uint64, ValueType: arrow.BinaryTypes.String}},
		{Name: "nested", Type: arrow.StructOf(arrow.Field{Name: "a", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
			arrow.Field{Name: "b", Type: arrow.BinaryTypes.StringView, Nullable: true}), Nullable: true},
		{Name: ColStatus, Type: arrow.BinaryTypes.String},
		{Name: ColApplication, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ColInputTokens, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: ColOutputTokens, Type: arrow.PrimitiveTypes.Uint64},
		{Name: ColLatencyMs, Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: ColTTFTMs, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: ColAttributes, Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString), Nullable: true},
		{Name: "after", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	}, nil) // no version metadata, like a pyarrow producer
	long := "a-provider-name-longer-than-twelve-bytes"
	rows := []row{
		{"trace_id": "t1", ColEventID: "i-0", "flags": []int64{1, 2}, ColTimestamp: int64(1_700_000_000_123),
			ColTenant: "acme", "extra_dict": "x", ColProvider: "openai", ColModel: "gpt-4o",
			"nested": []any{true, "nested string beyond twelve"}, ColStatus: "ok", ColApplication: "app",
			ColInputTokens: 10, ColOutputTokens: 20, ColLatencyMs: 1.5, ColTTFTMs: int64(7),
			ColAttributes: []kv{{"k", strp("v")}}, "after": true},
		{ColEventID: "i-1", ColTimestamp: int64(1_700_000_000_124), ColTenant: "beta", ColProvider: long,
			ColModel: "claude", ColStatus: "error", ColOutputTokens: 0},
		{ColEventID: "i-2", ColTimestamp: int64(1_700_000_000_125), ColTenant: "acme", ColProvider: "openai",
			ColModel: "gpt-4o", ColStatus: "ok", ColInputTokens: 3, ColOutputTokens: 1, ColLatencyMs: 2.0},
	}
	want := []schemas.Event{
		{EventID: "i-0", Timestamp: time.UnixMilli(1_700_000_000_123), Tenant: "acme", Provider: "openai",
			Model: "gpt-4o", Status: schemas.StatusOK, Application: "app", InputTokens: 10, OutputTokens: 20,
			LatencyMs: 1.5, HasLatency: true, TTFTMs: 7, HasTTFT: true, Attributes: map[string]string{"k": "v"}},
		{EventID: "i-1", Timestamp: time.UnixMilli(1_700_000_000_124), Tenant: "beta", Provider: long,
			Model: "claude", Status: schemas.StatusError},
		{EventID: "i-2", Timestamp: time.UnixMilli(1_700_000_000_125), Tenant: "acme", Provider: "openai",
			Model: "gpt-4o", Status: schemas.StatusOK, InputTokens: 3, OutputTokens: 1, LatencyMs: 2, HasLatency: true},
	}
	for _, batchSize := range []int{1, 2, 3} {
		for _, opts := range [][]ipc.Option{nil, {ipc.WithDictionaryDeltas(true)}, {ipc.WithZstd()}} {
			got, bad, err := decodeCollect(t, streamOf(t, sc, rows, batchSize, opts...))
			if err != nil || len(bad) > 0 {
				t.Fatalf("batch size %d: %v %v", batchSize, err, bad)
			}
			assertEqualEvents(t, got, want)
		}
	}
}

func TestDecodeLimits(t *testing.T) {
	data := mustEncode(t, typicalEvents(100, 1))
	d, err := NewDecoderWithOptions(DecoderOptions{MaxRows: 99, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Decode(data, func(schemas.Event) error { t.Fatal("fn called"); return nil }, nil)
	if !errors.Is(err, ErrInvalidStream) || !strings.Contains(err.Error(), "more than 99 rows") {
		t.Fatalf("MaxRows: %v", err)
	}
	// MaxRows counts across record batches.
	rows := []row{validRow("a"), validRow("b"), validRow("c")}
	d, _ = NewDecoderWithOptions(DecoderOptions{MaxRows: 2, MaxBytes: 1 << 20})
	if err := d.Decode(streamOf(t, Schema(), rows, 1), func(schemas.Event) error { return nil }, nil); !errors.Is(err, ErrInvalidStream) {
		t.Fatalf("MaxRows over batches: %v", err)
	}

	enc, _ := NewEncoderWithOptions(EncoderOptions{Compression: CompressionZSTD})
	big := typicalEvents(5000, 1)
	zdata, err := enc.Encode(big)
	if err != nil {
		t.Fatal(err)
	}
	d, _ = NewDecoderWithOptions(DecoderOptions{MaxRows: 1 << 20, MaxBytes: 16 << 10})
	err = d.Decode(zdata, func(schemas.Event) error { return nil }, nil)
	if !errors.Is(err, ErrInvalidStream) || !strings.Contains(err.Error(), "MaxBytes") {
		t.Fatalf("MaxBytes: %v", err)
	}
}

// Every prefix and many single-byte corruptions of a valid stream either
// decode or fail cleanly with ErrInvalidStream; a prefix never yields more
// rows than the stream.
func TestDecodeCorruptStreams(t *testing.T) {
	evs := variedEvents()
	data := mustEncode(t, evs)
	d := NewDecoder()
	count := func(b []byte) (int, error) {
		n := 0
		err := d.Decode(b, func(e schemas.Event) error {
			if err := e.Validate(); err != nil {
				t.Fatalf("delivered invalid event: %v", err)
			}
			n++
			return nil
		}, func(int, error) {})
		return n, err
	}
	for i := 0; i < len(data); i++ {
		n, err := count(data[:i])
		if err != nil && !errors.Is(err, ErrInvalidStream) {
			t.Fatalf("prefix %d: error %v does not match ErrInvalidStream", i, err)
		}
		if n > len(evs) || (err == nil && n != 0 && n != len(evs)) {
			t.Fatalf("prefix %d: %d events, err %v", i, n, err)
		}
	}
	if _, err := count(append(append([]byte{}, data...), 1, 2, 3)); !errors.Is(err, ErrInvalidStream) {
		t.Fatalf("trailing bytes: %v", err)
	}
	buf := make([]byte, len(data))
	for i := 0; i < len(data); i++ {
		for _, x := range []byte{0x00, 0xff, 0x80, 0x01} {
			copy(buf, data)
			buf[i] ^= x
			if _, err := count(buf); err != nil && !errors.Is(err, ErrInvalidStream) {
				t.Fatalf("byte %d ^ %#x: error %v", i, x, err)
			}
		}
	}
}

// TestDecodeControlCharacters: every string column, attribute keys and
// values reject control characters as schemas.Validate does, whether the
// column is a dictionary, plain utf8 (the event_id fast path), large_utf8
// or string_view, and the row error names the column.
func TestDecodeControlCharacters(t *testing.T) {
	plain := map[string]arrow.DataType{}
	large := map[string]arrow.DataType{}
	view := map[string]arrow.DataType{}
	for _, c := range []string{ColTenant, ColProvider, ColModel, ColErrorType, ColApplication, ColOperation, ColRegion, ColServiceTier} {
		plain[c] = arrow.BinaryTypes.String
		large[c] = arrow.BinaryTypes.LargeString
		view[c] = arrow.BinaryTypes.StringView
	}
	large[ColEventID] = arrow.BinaryTypes.LargeString
	large[ColAttributes] = arrow.MapOf(arrow.BinaryTypes.LargeString, arrow.BinaryTypes.LargeString)
	view[ColEventID] = arrow.BinaryTypes.StringView
	for _, sc := range []struct {
		name   string
		schema *arrow.Schema
	}{{"contract", Schema()}, {"plain utf8", schemaWith(plain, nil)}, {"large_utf8", schemaWith(large, nil)},
		{"string_view", schemaWith(view, nil)}} {
		t.Run(sc.name, func(t *testing.T) {
			rows := []row{validRow("ok-0").with(ColTenant, "Zürich \u2028 ok", ColAttributes, []kv{{"k", strp("v é")}})}
			wantField := map[int]string{}
			add := func(r row, field string) {
				wantField[len(rows)] = field
				rows = append(rows, r)
			}
			for i, bad := range []string{"a\x1b[31m", "\t", "x\n", "\x00", "del\x7f", "c1\u0085", "csi\u009b"} {
				id := "bad-" + strconv.Itoa(i)
				add(validRow(id+"\x01"), ColEventID)
				for _, c := range []string{ColTenant, ColProvider, ColModel, ColErrorType, ColApplication, ColOperation, ColRegion, ColServiceTier} {
					add(validRow(id).with(c, bad), c)
				}
				add(validRow(id).with(ColAttributes, []kv{{bad, strp("v")}}), ColAttributes)
				add(validRow(id).with(ColAttributes, []kv{{"k", strp(bad)}}), "attributes.k")
			}
			rows = append(rows, validRow("ok-last"))
			got, bad, err := decodeCollect(t, streamOf(t, sc.schema, rows, 7))
			if err != nil {
				t.Fatal(err)
			}
			if len(bad) != len(wantField) {
				t.Errorf("%d invalid rows, want %d", len(bad), len(wantField))
			}
			for i, field := range wantField {
				assertFieldError(t, bad[i], field)
				if bad[i] != nil && !strings.Contains(bad[i].Error(), "control character U+") {
					t.Errorf("row %d: %v does not name the control character", i, bad[i])
				}
			}
			if len(got) != 2 || got[0].Tenant != "Zürich \u2028 ok" || got[1].EventID != "ok-last" {
				t.Fatalf("valid rows %+v", got)
			}
		})
	}
}
