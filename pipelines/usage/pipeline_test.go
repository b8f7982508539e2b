package usage

import (
	"context"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/whtest"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/schemas"
	"github.com/costpipe/costpipe/warehouse"
)

func TestMain(m *testing.M) { chtest.Main(m) }

func newPipeline(t *testing.T) (*Pipeline, *warehouse.Warehouse, string) {
	t.Helper()
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	w := whtest.Migrated(t, srv.DSN(db))
	opts := DefaultOptions()
	opts.MaxEventAge = 20 * 365 * 24 * time.Hour // the tests' events are from fixed dates
	p, err := New(w, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p, w, db
}

func ev(id string, ts time.Time, tenant string, in int64) *schemas.Event {
	return &schemas.Event{EventID: id, Timestamp: ts, Tenant: tenant, Provider: "openai", Model: "gpt-4o",
		Status: schemas.StatusOK, InputTokens: in, OutputTokens: 10, LatencyMs: 120, HasLatency: true}
}

func count(t *testing.T, w *warehouse.Warehouse, db, table string, month int) (requests, input uint64) {
	t.Helper()
	err := w.Conn().QueryRow(context.Background(),
		"SELECT sumMerge(requests), sumMerge(input_tokens) FROM "+db+"."+table+" WHERE toYYYYMM(ts) = ?", month).Scan(&requests, &input)
	if err != nil {
		t.Fatal(err)
	}
	return
}

// TestLandingMarksMakeReplayExact lands a flush spanning a month boundary, then
// replays the same offsets into a fresh pipeline (as after a crash): nothing is
// added twice, and only records above the marks are added.
func TestLandingMarksMakeReplayExact(t *testing.T) {
	p, w, db := newPipeline(t)
	ctx := context.Background()
	oct := time.Date(2026, 10, 31, 23, 59, 59, 900_000_000, time.UTC)
	nov := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if err := p.Assign(ctx, []int32{0, 1}); err != nil {
		t.Fatal(err)
	}
	p.Add(0, 10, ev("a", oct, "acme", 100))
	p.Add(0, 11, ev("b", nov, "acme", 200))
	p.Add(1, 5, ev("c", nov, "beta", 300))
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"usage_1m", "usage_1h", "usage_1d"} {
		if r, in := count(t, w, db, tbl, 202610); r != 1 || in != 100 {
			t.Errorf("%s October: %d requests, %d input; want 1, 100", tbl, r, in)
		}
		if r, in := count(t, w, db, tbl, 202611); r != 2 || in != 500 {
			t.Errorf("%s November: %d requests, %d input; want 2, 500", tbl, r, in)
		}
	}
	marks, err := w.LandingMarks(ctx, DefaultOptions().Topic, []int32{0, 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := marks[warehouse.MarkKey{Table: warehouse.Hour, Month: 202610, Partition: 0}]; got != 11 {
		t.Errorf("HWM(1h, 202610, p0) = %d, want 11 (the flush's end offset)", got)
	}
	if got := marks[warehouse.MarkKey{Table: warehouse.Day, Month: 202611, Partition: 1}]; got != 5 {
		t.Errorf("HWM(1d, 202611, p1) = %d, want 5", got)
	}

	// Replay after a "crash": a new pipeline reads the marks.
	q, err := New(w, p.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Assign(ctx, []int32{0, 1}); err != nil {
		t.Fatal(err)
	}
	if q.Add(0, 10, ev("a", oct, "acme", 100)) || q.Add(0, 11, ev("b", nov, "acme", 200)) || q.Add(1, 5, ev("c", nov, "beta", 300)) {
		t.Error("a landed record was added again on replay")
	}
	if !q.Add(0, 12, ev("d", oct, "acme", 1000)) {
		t.Error("a new record (offset above the mark) was not added")
	}
	if err := q.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"usage_1m", "usage_1h", "usage_1d"} {
		if r, in := count(t, w, db, tbl, 202610); r != 2 || in != 1100 {
			t.Errorf("%s October after replay: %d requests, %d input; want 2, 1100", tbl, r, in)
		}
		if r, _ := count(t, w, db, tbl, 202611); r != 2 {
			t.Errorf("%s November after replay: %d requests; want 2", tbl, r)
		}
	}
}

// TestPartialFlushLandsTheRestOnly simulates a crash between the inserts of
// one flush: the minute table of a month landed, the hour and day did not. The
// replay adds the records to the hour and day tables only.
func TestPartialFlushLandsTheRestOnly(t *testing.T) {
	p, w, db := newPipeline(t)
	ctx := context.Background()
	ts := time.Date(2026, 11, 2, 10, 30, 0, 0, time.UTC)
	if err := p.Assign(ctx, []int32{3}); err != nil {
		t.Fatal(err)
	}
	p.Add(3, 7, ev("a", ts, "acme", 100))
	p.Add(3, 8, ev("b", ts, "acme", 50))
	// Land only the minute rows, as an interrupted flush would have.
	batches := p.build()
	if err := w.InsertRollups(ctx, warehouse.Minute, batches[insertKey{table: warehouse.Minute, month: 202611}]); err != nil {
		t.Fatal(err)
	}
	q, _ := New(w, p.opts)
	if err := q.Assign(ctx, []int32{3}); err != nil {
		t.Fatal(err)
	}
	q.Add(3, 7, ev("a", ts, "acme", 100))
	q.Add(3, 8, ev("b", ts, "acme", 50))
	if err := q.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"usage_1m", "usage_1h", "usage_1d"} {
		if r, in := count(t, w, db, tbl, 202611); r != 2 || in != 150 {
			t.Errorf("%s: %d requests, %d input; want exactly 2, 150", tbl, r, in)
		}
	}
}

// TestMeasuresCost checks the window sums cost exactly as the catalog prices
// each event, and counts unpriced calls separately.
func TestMeasuresCost(t *testing.T) {
	var m Measures
	cat := pricing.Default()
	a := ev("a", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "acme", 1_000_000)
	c, ok := cat.Total(a)
	if !ok {
		t.Fatal("gpt-4o unpriced in the default catalog")
	}
	m.Add(a, c, true)
	m.Add(a, c, true)
	u := *a
	u.Model = "no-such-model"
	m.Add(&u, pricing.Pico{}, false)
	if want := c.Add(c); m.Cost != want || m.Requests != 3 || m.Unpriced != 1 || m.Latency.Count != 3 {
		t.Errorf("cost %s requests %d unpriced %d latency count %d; want %s 3 1 3", m.Cost, m.Requests, m.Unpriced, m.Latency.Count, want)
	}
}

// Assign reads the landing marks only from the oldest month an event may
// still come from (now − MaxEventAge): older months are neither read nor
// expected, and an event from them is refused loudly.
func TestAssignReadsMarksOfRecentMonthsOnly(t *testing.T) {
	p, _, _ := newPipeline(t)
	ctx := context.Background()
	if err := p.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	p.Add(0, 5, ev("old", time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC), "acme", 1))
	p.Add(0, 6, ev("new", time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC), "acme", 1))
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	opts := p.opts
	opts.Now = func() time.Time { return time.Date(2026, 11, 12, 0, 0, 0, 0, time.UTC) }
	opts.MaxEventAge = 7 * 24 * time.Hour
	q, err := New(p.w, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	got := map[warehouse.Month]bool{}
	for k := range q.parts[0].marks {
		got[k.month] = true
	}
	if !got[202611] || got[202606] || len(got) != 1 {
		t.Errorf("months of the marks read: %v, want only 202611", got)
	}
	defer func() {
		if r := recover(); r == nil {
			t.Error("an event older than the marks read was accepted")
		}
	}()
	q.Add(0, 7, ev("too-old", time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC), "acme", 1))
}
