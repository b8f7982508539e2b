package warehouse

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// nativeTestRows are rows that reach every corner of the encodings: a
// negative and a maximal cost (a reprice correction, a saturated sum),
// strings of 0, 1 and 128+ bytes (a two-byte length) with non-ASCII text,
// empty and long histograms, counts above 2^32, the last second DateTime
// holds.
func nativeTestRows() []Rollup {
	ts := time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)
	a := testRollup(ts, 0, 0, 1)
	b := testRollup(ts.Add(time.Minute), 5, 1<<40, 3)
	b.Tenant, b.Application, b.Model = "", "é", strings.Repeat("模型", 50)
	b.Cost = pricing.MustParsePico("-12.345678901234")
	b.Latency = Dist{}
	b.ContextBand = 200_000
	c := testRollup(time.Unix(1<<32-1, 0), -1, -7, 2)
	c.Cost = pricing.MustParsePico("99999999999999999999999999.999999999999")
	c.TTFT.HistIdx, c.TTFT.HistCnt = make([]int16, 600), make([]uint64, 600)
	for i := range c.TTFT.HistIdx {
		c.TTFT.HistIdx[i], c.TTFT.HistCnt[i] = int16(i-300), uint64(i)<<33
	}
	return []Rollup{a, b, c}
}

// randomRows are n rows of random values within the columns' types:
// strings of any bytes (invalid UTF-8 included) and length, costs of either
// sign over the whole 128-bit range Decimal(38, 12) holds, histograms of 0
// to 400 entries.
func randomRows(r *rand.Rand, n int) []Rollup {
	str := func() string {
		b := make([]byte, r.IntN(300))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		return string(b)
	}
	hist := func() ([]int16, []uint64) {
		k := r.IntN(401)
		idx, cnt := make([]int16, k), make([]uint64, k)
		for i := range idx {
			idx[i], cnt[i] = int16(r.UintN(1<<16)), r.Uint64()
		}
		return idx, cnt
	}
	rows := make([]Rollup, n)
	for i := range rows {
		cost, err := pricing.FromInt128(r.Int64N(1<<37)-1<<36, r.Uint64())
		if err != nil {
			panic(err)
		}
		x := Rollup{
			TS: time.Unix(r.Int64N(1<<32), 0), Tenant: str(), Application: str(), Provider: str(), Model: str(),
			ErrorType: str(), ServiceTier: str(), ContextBand: r.Uint32(), SrcTopic: str(),
			SrcPartition: r.Int32(), SrcOffset: r.Int64(), Requests: r.Uint64(), Errors: r.Uint64(),
			InputTokens: r.Uint64(), CachedInputTokens: r.Uint64(), CacheWriteTokens: r.Uint64(),
			CacheWrite1hTokens: r.Uint64(), OutputTokens: r.Uint64(), ReasoningTokens: r.Uint64(),
			GPUMicros: r.Uint64(), UnpricedRequests: r.Uint64(), Cost: cost,
		}
		x.Latency.SumMicros, x.TTFT.SumMicros = r.Uint64(), r.Uint64()
		x.Latency.HistIdx, x.Latency.HistCnt = hist()
		x.TTFT.HistIdx, x.TTFT.HistCnt = hist()
		rows[i] = x
	}
	return rows
}

// TestNativeColumnsMatchTheDriver fills each insert column twice, through
// the driver's own Append (the values a row-wise insert sends) and through
// fillColumns' Native encoding, and requires the two columns to encode to
// the same bytes: what InsertRollups sends is what the driver would have.
func TestNativeColumnsMatchTheDriver(t *testing.T) {
	t.Parallel()
	t.Run("corners", func(t *testing.T) { nativeMatchesDriver(t, nativeTestRows()) })
	r := rand.New(rand.NewPCG(7, 11))
	for i := range 20 {
		rows := randomRows(r, 1+r.IntN(50))
		t.Run(fmt.Sprintf("random %d", i), func(t *testing.T) { nativeMatchesDriver(t, rows) })
	}
}

func nativeMatchesDriver(t *testing.T, rows []Rollup) {
	t.Helper()
	sc := &column.ServerContext{Timezone: time.UTC}
	nb := new(nativeBuf) // one reader for all columns, as fillColumns decodes
	for i, c := range InputColumns() {
		want, err := column.Type(c.Type).Column(c.Name, sc)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		got, _ := column.Type(c.Type).Column(c.Name, sc)
		for r := range rows {
			if err := want.AppendRow(appendValues(&rows[r], nil)[i]); err != nil {
				t.Fatalf("%s row %d: driver: %v", c.Name, r, err)
			}
		}
		nb.buf = nativeColumns[i].encode(rows, nb.buf[:0])
		if err := nb.decode(got, len(rows)); err != nil {
			t.Fatalf("%s: decoding the Native encoding: %v", c.Name, err)
		}
		if got.Rows() != len(rows) {
			t.Fatalf("%s: %d rows decoded, want %d", c.Name, got.Rows(), len(rows))
		}
		var wb, gb proto.Buffer
		want.Encode(&wb)
		got.Encode(&gb)
		if !bytes.Equal(wb.Buf, gb.Buf) {
			t.Errorf("%s (%s): Native encoding differs from the driver's:\n got %x\nwant %x", c.Name, c.Type, gb.Buf, wb.Buf)
		}
	}
}

// TestNativeEncodersSizeTheirColumnOnce: every encoder knows its column's
// exact size before writing it, so encode grows the buffer once, however
// long the strings (lengths of one to three varint bytes) or the histograms;
// growing value by value would copy the column into fresh memory again at
// every quarter (native.go).
func TestNativeEncodersSizeTheirColumnOnce(t *testing.T) {
	t.Parallel()
	rows := append(nativeTestRows(), randomRows(rand.New(rand.NewPCG(3, 5)), 200)...)
	rows[0].Model = strings.Repeat("m", 1<<14) // a three-byte length
	rows[1].Tenant = strings.Repeat("t", 1<<14-1)
	for i, c := range InputColumns() {
		n := nativeColumns[i]
		want := len(n.put(rows, nil))
		if got := n.size(rows); got != want {
			t.Errorf("%s: size %d, encoding %d bytes", c.Name, got, want)
		}
		if got := cap(n.encode(rows, nil)); got < want || got > want+want/8+8192 { // size classes, pages
			t.Errorf("%s: capacity %d for %d bytes: not grown once to the column's size", c.Name, got, want)
		}
		if !raceEnabled { // the race detector's instrumentation allocates more
			if got := testing.AllocsPerRun(3, func() { n.encode(rows, nil) }); got != 1 {
				t.Errorf("%s: %v allocations to encode %d rows, want 1", c.Name, got, len(rows))
			}
		}
	}
	for _, v := range []uint64{0, 1, 127, 128, 1<<14 - 1, 1 << 14, 1<<21 - 1, 1 << 21, 1 << 63, 1<<64 - 1} {
		if got, want := uvarintLen(v), len(binary.AppendUvarint(nil, v)); got != want {
			t.Errorf("uvarintLen(%d) = %d, want %d", v, got, want)
		}
	}
}

// TestInsertRollupsRefusesTimesOutsideDateTime: a bucket start DateTime
// cannot hold is an error naming it, not a wrapped timestamp.
func TestInsertRollupsRefusesTimesOutsideDateTime(t *testing.T) {
	t.Parallel()
	for _, ts := range []time.Time{time.Unix(-60, 0), time.Unix(1<<32, 0)} {
		r := testRollup(ts, 0, 1, 1)
		if err := checkTime(&r); err == nil || !strings.Contains(err.Error(), "DateTime") {
			t.Errorf("%s: err = %v, want an error about DateTime's range", ts, err)
		}
	}
	r := testRollup(time.Unix(1<<32-1, 0), 0, 1, 1)
	if err := checkTime(&r); err != nil {
		t.Errorf("last DateTime second refused: %v", err)
	}
}

// TestFillColumnsRefusesOtherTypes: a server column whose type differs from
// the list's (a table changed behind costpipe's back) is an error naming
// it, never bytes read as another type.
func TestFillColumnsRefusesOtherTypes(t *testing.T) {
	t.Parallel()
	sc := &column.ServerContext{Timezone: time.UTC}
	var cols []column.Interface
	for _, c := range InputColumns() {
		typ := c.Type
		if c.Name == "cost_usd" {
			typ = "Decimal(18, 6)"
		}
		col, err := column.Type(typ).Column(c.Name, sc)
		if err != nil {
			t.Fatal(err)
		}
		cols = append(cols, col)
	}
	w := &Warehouse{enc: new(nativeBuf)}
	err := w.fillColumns(cols, nativeTestRows())
	if err == nil || !strings.Contains(err.Error(), "cost_usd Decimal(18, 6) on the server") {
		t.Fatalf("err = %v, want the cost column's type named", err)
	}
	if err := w.fillColumns(cols[:3], nativeTestRows()); err == nil {
		t.Fatal("3 server columns accepted")
	}
}

// TestNativeDecodeRefusesLeftovers: an encoding longer than the column
// decodes is an error, and the reader decodes the next column cleanly.
func TestNativeDecodeRefusesLeftovers(t *testing.T) {
	t.Parallel()
	sc := &column.ServerContext{Timezone: time.UTC}
	nb := new(nativeBuf)
	col, _ := column.Type("UInt64").Column("requests", sc)
	nb.buf = []byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 9}
	if err := nb.decode(col, 2); err == nil {
		t.Fatal("a trailing byte was accepted")
	}
	col, _ = column.Type("UInt64").Column("requests", sc)
	nb.buf = []byte{7, 0, 0, 0, 0, 0, 0, 0}
	if err := nb.decode(col, 1); err != nil {
		t.Fatal(err)
	}
	if v := col.Row(0, false); v != uint64(7) {
		t.Fatalf("decoded %v after the error, want 7", v)
	}
}
