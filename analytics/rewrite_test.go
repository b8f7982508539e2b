package analytics

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

// TestRewriteCosts corrects the stored cost of two days after a catalog
// correction: every table and granularity then sums to the re-priced cost,
// a second run lands nothing, the aggregators' landing marks are untouched,
// and a dry run writes nothing.
func TestRewriteCosts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := migratedDB(t)
	wrong, err := pricing.Parse("wrong.yaml", []byte("models:\n  - provider: p\n    model: m\n    prices:\n      - {from: 2026-01-01, input: \"1\", output: \"2\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	fixed, err := pricing.Parse("fixed.yaml", []byte(`
models:
  - provider: p
    model: m
    prices:
      - from: 2026-01-01
        input: "1.5"
        output: "2"
        tiers:
          - above: 200000
            input: "3"
        service_tiers:
          batch: { multiplier: "0.5" }
tenants:
  acme: { discount: "0.1" }
`))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	var rows [3][]warehouse.Rollup
	var want pricing.Pico
	off := int64(0)
	for h := 0; h < 48; h++ {
		ts := start.Add(time.Duration(h)*time.Hour + 7*time.Minute)
		r := warehouse.Rollup{TS: ts, Tenant: []string{"acme", "globex"}[h%2], Provider: "p", Model: "m", SrcTopic: "costpipe.events",
			SrcPartition: int32(h % 3), Requests: 2, InputTokens: 1000 + uint64(h), OutputTokens: 100}
		if h%3 == 0 {
			r.ServiceTier = "batch"
		}
		if h%5 == 0 {
			r.InputTokens, r.ContextBand = 400_000, 272_000
		}
		k := pricing.SumsKey{Tenant: r.Tenant, Provider: "p", Model: "m", ServiceTier: r.ServiceTier, ContextBand: r.ContextBand, At: ts}
		s := pricing.Sums{Requests: r.Requests, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens}
		r.Cost, _, _ = wrong.CostOfSums(k, s)
		c, _, _ := fixed.CostOfSums(k, s)
		want = want.Add(c)
		for i, tb := range warehouse.Tables {
			x := r
			x.TS = tb.Truncate(ts)
			off++
			x.SrcOffset = off
			rows[i] = append(rows[i], x)
		}
	}
	for i, tb := range warehouse.Tables {
		if err := w.InsertRollups(ctx, tb, rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	marks, err := w.LandingMarks(ctx, "costpipe.events", []int32{0, 1, 2}, 0)
	if err != nil {
		t.Fatal(err)
	}
	q := New(w, Options{Now: func() time.Time { return time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC) }})
	end := start.Add(48 * time.Hour)
	costIn := func(g Granularity) pricing.Pico {
		t.Helper()
		u, err := q.Usage(ctx, UsageQuery{From: start, To: end, Granularity: g})
		if err != nil || len(u) != 1 {
			t.Fatalf("usage %s: %v %v", g, u, err)
		}
		return u[0].CostUSD
	}
	before := costIn(GranularityDay)

	dry, err := q.RewriteCosts(ctx, RewriteQuery{From: start, To: end, Catalog: fixed, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range dry.Tables {
		if rt.Before != before || rt.After != want || rt.Corrected == 0 {
			t.Errorf("dry run %s: before %s after %s corrected %d; want %s → %s", rt.Table.Name(), rt.Before, rt.After, rt.Corrected, before, want)
		}
	}
	if got := costIn(GranularityMinute); got != before {
		t.Fatalf("the dry run wrote: %s, want %s", got, before)
	}

	// Another reprice holds the lock (a cron job and a person, a retried
	// job): this one refuses, rather than land the difference a second
	// time; the dry run above took no lock.
	lock := w.Database() + ".reprice_lock"
	if err := w.Conn().Exec(ctx, "CREATE TABLE "+lock+" ENGINE = Log AS SELECT 'host-b pid 9' AS owner, toDateTime(now(), 'UTC') AS since, toUInt8(1) AS beat"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.RewriteCosts(ctx, RewriteQuery{From: start, To: end, Catalog: fixed}); !errors.Is(err, warehouse.ErrRepriceRunning) || !strings.Contains(err.Error(), "host-b pid 9") {
		t.Fatalf("reprice while another holds the lock: %v, want ErrRepriceRunning naming it", err)
	}
	if got := costIn(GranularityMinute); got != before {
		t.Fatalf("the refused reprice wrote: %s, want %s", got, before)
	}
	if err := w.Conn().Exec(ctx, "DROP TABLE "+lock); err != nil {
		t.Fatal(err)
	}
	var progress []RewriteProgress
	res, err := q.RewriteCosts(ctx, RewriteQuery{From: start, To: end, Catalog: fixed, Progress: func(p RewriteProgress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	// Progress: each table once read, then each block of corrections.
	blocks := 0
	for _, rt := range res.Tables {
		blocks += len(rt.Months)
	}
	var read []string
	landed := 0
	for _, p := range progress {
		switch {
		case p.Blocks > 0:
			if landed++; p.Landed != landed || p.Blocks != blocks {
				t.Errorf("progress %+v: want block %d of %d", p, landed, blocks)
			}
		case p.TableRead:
			read = append(read, p.Table.Name())
			if landed > 0 || p.Read != res.Tables[len(read)-1].Groups {
				t.Errorf("progress %+v after %d blocks landed; want %d groups read first", p, landed, res.Tables[len(read)-1].Groups)
			}
		}
	}
	if len(read) != len(warehouse.Tables) || landed != blocks || blocks == 0 {
		t.Errorf("progress: tables read %v, %d of %d blocks landed; want every table, then every block", read, landed, blocks)
	}
	var locks uint8
	if err := w.Conn().QueryRow(ctx, "EXISTS TABLE "+lock).Scan(&locks); err != nil || locks != 0 {
		t.Errorf("reprice left its lock: exists=%d, %v", locks, err)
	}
	for _, g := range []Granularity{GranularityMinute, GranularityHour, GranularityDay, GranularityAuto} {
		if got := costIn(g); got != want {
			t.Errorf("after the rewrite, %s tables: %s, want %s", g, got, want)
		}
	}
	again, err := q.RewriteCosts(ctx, RewriteQuery{From: start, To: end, Catalog: fixed})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range again.Tables {
		if rt.Corrected != 0 || rt.Before != want {
			t.Errorf("second run %s: corrected %d, before %s; want 0 and %s", rt.Table.Name(), rt.Corrected, rt.Before, want)
		}
	}
	after, err := w.LandingMarks(ctx, "costpipe.events", []int32{0, 1, 2}, 0)
	if err != nil || !reflect.DeepEqual(after, marks) {
		t.Errorf("landing marks changed: %v → %v (%v)", marks, after, err)
	}
	// Requests and tokens are untouched.
	u, _ := q.Usage(ctx, UsageQuery{From: start, To: end})
	if u[0].Requests != 96 {
		t.Errorf("requests %d after the rewrite, want 96", u[0].Requests)
	}

	if _, err := q.RewriteCosts(ctx, RewriteQuery{From: start.Add(time.Hour), To: end, Catalog: fixed}); err == nil || !strings.Contains(err.Error(), "whole UTC days") {
		t.Errorf("range not on days: %v", err)
	}
	midday, _ := pricing.Parse("midday.yaml", []byte("models:\n  - provider: p\n    model: m\n    prices:\n      - {from: 2026-01-01, input: \"1\", output: \"1\"}\n      - {from: \"2026-03-09T12:00:00Z\", input: \"2\", output: \"2\"}\n"))
	if _, err := q.RewriteCosts(ctx, RewriteQuery{From: start, To: end, Catalog: midday}); err == nil || !strings.Contains(err.Error(), "inside a day") {
		t.Errorf("price change at noon: %v", err)
	}
}

// TestRewriteCostsPricesTheUnpricedAllOrNothing: calls unpriced at ingest
// that the corrected catalog prices lose their unpriced count with their
// cost correction; a group within the stored costs' per-call rounding of
// the catalog's cost is not "corrected" (a rerun with the aggregators' own
// catalog lands nothing); an error in a later table writes nothing.
func TestRewriteCostsPricesTheUnpricedAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := migratedDB(t)
	cat, err := pricing.Parse("fixed.yaml", []byte("models:\n  - provider: p\n    model: m\n    prices:\n      - {from: 2026-01-01, input: \"1\", output: \"2\"}\n"+
		"  - provider: p\n    model: new\n    prices:\n      - {from: 2026-01-01, input: \"4\", output: \"8\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	var rows [3][]warehouse.Rollup
	var wantNew pricing.Pico
	for h := range 4 {
		ts := start.Add(time.Duration(h)*time.Hour + 7*time.Minute)
		m := warehouse.Rollup{TS: ts, Tenant: "acme", Provider: "p", Model: "m", SrcTopic: "costpipe.events", Requests: 2, InputTokens: 1000, OutputTokens: 100}
		c, _, _ := cat.CostOfSums(pricing.SumsKey{Tenant: "acme", Provider: "p", Model: "m", At: ts}, pricing.Sums{Requests: 2, InputTokens: 1000, OutputTokens: 100})
		m.Cost = c.Add(pricing.FromPicos(1)) // each call rounded on its own: within half a pico a call
		n := warehouse.Rollup{TS: ts, Tenant: "acme", Provider: "p", Model: "new", SrcTopic: "costpipe.events", Requests: 3, UnpricedRequests: 3, InputTokens: 300, OutputTokens: 30}
		c, _, _ = cat.CostOfSums(pricing.SumsKey{Tenant: "acme", Provider: "p", Model: "new", At: ts}, pricing.Sums{Requests: 3, InputTokens: 300, OutputTokens: 30})
		wantNew = wantNew.Add(c)
		for i, tb := range warehouse.Tables {
			for _, r := range []warehouse.Rollup{m, n} {
				r.TS = tb.Truncate(ts)
				rows[i] = append(rows[i], r)
			}
		}
	}
	// A group only the daily table holds, whose sums the catalog refuses.
	rows[2] = append(rows[2], warehouse.Rollup{TS: start, Tenant: "bad", Provider: "p", Model: "m", SrcTopic: "costpipe.events", Requests: 1, InputTokens: 1, CachedInputTokens: 2})
	for i, tb := range warehouse.Tables {
		if err := w.InsertRollups(ctx, tb, rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	q := New(w, Options{Now: func() time.Time { return time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC) }})
	end := start.Add(24 * time.Hour)
	byModel := func(g Granularity) map[string]UsageRow {
		t.Helper()
		u, err := q.Usage(ctx, UsageQuery{From: start, To: end, Granularity: g, By: []Dim{DimModel}, Where: map[Dim][]string{DimTenant: {"acme"}}})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]UsageRow{}
		for _, r := range u {
			out[r.Group[DimModel]] = r
		}
		return out
	}
	if _, err := q.RewriteCosts(ctx, RewriteQuery{From: start, To: end, Catalog: cat}); err == nil ||
		!strings.Contains(err.Error(), "usage_1d") || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("a catalog error in usage_1d: %v", err)
	}
	if got := byModel(GranularityMinute)["new"]; got.UnpricedRequests != 12 || !got.CostUSD.IsZero() {
		t.Fatalf("usage_1m was written before usage_1d failed: %+v", got)
	}
	acme := map[Dim][]string{DimTenant: {"acme"}}
	res, err := q.RewriteCosts(ctx, RewriteQuery{From: start, To: end, Catalog: cat, Where: acme})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range res.Tables {
		want := 4 // the four rows of "new"; m is within rounding
		if rt.Table == warehouse.Day {
			want = 1
		}
		if rt.Corrected != want || rt.NowPriced != 12 {
			t.Errorf("%s: corrected %d, now priced %d; want %d and 12", rt.Table.Name(), rt.Corrected, rt.NowPriced, want)
		}
	}
	for _, g := range []Granularity{GranularityMinute, GranularityHour, GranularityDay} {
		got := byModel(g)
		if n := got["new"]; n.UnpricedRequests != 0 || n.CostUSD != wantNew || n.Requests != 12 {
			t.Errorf("%s: new %+v; want 0 unpriced of 12 calls, cost %s", g, n, wantNew)
		}
		if m := got["m"]; m.UnpricedRequests != 0 || m.Requests != 8 {
			t.Errorf("%s: m %+v", g, m)
		}
	}
	// The per-model summaries, fed from the same inserts, agree.
	u, err := q.Usage(ctx, UsageQuery{From: start, To: end, By: []Dim{DimProvider, DimModel}, Where: map[Dim][]string{DimModel: {"new"}}})
	if err != nil || len(u) != 1 || u[0].UnpricedRequests != 0 || u[0].CostUSD != wantNew {
		t.Errorf("per-model summary of new: %+v %v; want 0 unpriced, cost %s", u, err, wantNew)
	}
	again, err := q.RewriteCosts(ctx, RewriteQuery{From: start, To: end, Catalog: cat, Where: acme})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range again.Tables {
		if rt.Corrected != 0 || rt.NowPriced != 0 {
			t.Errorf("second run %s: corrected %d, now priced %d; want nothing", rt.Table.Name(), rt.Corrected, rt.NowPriced)
		}
	}
}
