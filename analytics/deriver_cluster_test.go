package analytics

import (
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

// TestDeriveOnACluster derives through the Distributed tables of two
// shards with --max-groups 1: the group kept is the biggest over the whole
// cluster (acme, half of its calls on each shard), not the biggest of one
// shard (globex, all on one), and its numbers are those of query growth.
func TestDeriveOnACluster(t *testing.T) {
	t.Parallel()
	ctx, w, s := migratedCluster(t)
	// 20 days: acme 60 calls a day on each shard (partitions 0 and 1),
	// globex 100 on shard 0 only.
	var rows []warehouse.Rollup
	off := int64(0)
	for ts := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC); ts.Before(time.Date(2026, 3, 21, 0, 0, 0, 0, time.UTC)); ts = ts.AddDate(0, 0, 1) {
		for _, r := range []warehouse.Rollup{{Tenant: "acme", SrcPartition: 0, Requests: 60}, {Tenant: "acme", SrcPartition: 1, Requests: 60},
			{Tenant: "globex", SrcPartition: 0, Requests: 100}} {
			off++
			r.TS, r.Provider, r.Model, r.SrcTopic, r.SrcOffset, r.Cost = ts, "openai", "gpt-4o", "costpipe.events", off, pricing.MustParsePico("1")
			rows = append(rows, r)
		}
	}
	if s.ShardOf(0) == s.ShardOf(1) {
		t.Fatal("partitions 0 and 1 land on one shard; the test needs two")
	}
	for _, tb := range warehouse.Tables {
		if err := (byShard{s}).InsertRollups(ctx, tb, rows); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 3, 21, 0, 30, 0, 0, time.UTC)
	q := New(w, Options{Now: func() time.Time { return now }})
	day := time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)
	got, res, err := q.DeriveRows(ctx, day, DeriveOptions{Metrics: []Metric{MetricRequests}, MaxGroups: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || res.Dropped != 2 { // total, then 1 of 2 tenants, 1 model, 1 of 2 tenant × model
		t.Fatalf("%d rows, %d dropped; want 4 and 2: %+v", len(got), res.Dropped, got)
	}
	gs, err := q.Growth(ctx, GrowthQuery{At: day.AddDate(0, 0, 1), By: ScopeTenant.Dims(), Metric: MetricRequests})
	if err != nil || len(gs) != 2 || gs[0].Group[DimTenant] != "acme" {
		t.Fatalf("Growth by tenant: %+v, %v", gs, err)
	}
	if r := got[1]; r.Scope != ScopeTenant || r.Tenant != "acme" || *r.Growth.Last7d != *gs[0].Last7d || r.ToDate != 20*120 {
		t.Errorf("tenant row %+v, want acme (the biggest over both shards), last_7d %v, to_date %v", r, *gs[0].Last7d, 20*120)
	}
	if r := got[3]; r.Scope != ScopeTenantModel || r.Tenant != "acme" {
		t.Errorf("tenant × model row %+v, want acme's", r)
	}

	// A Deriver checks the cluster database's migrations and derives
	// the missing days; calls landing late on one shard are followed.
	dv, err := NewDeriver(q, DeriverOptions{Backfill: 2, Derive: DeriveOptions{Metrics: []Metric{MetricRequests}}})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := dv.RunOnce(ctx); err != nil || derivedDays(res) != "2026-03-19:6 2026-03-20:6" {
		t.Fatalf("RunOnce on the cluster derived %q, %v", derivedDays(res), err)
	}
	late := warehouse.Rollup{TS: time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC), Tenant: "acme", Provider: "openai", Model: "gpt-4o",
		SrcTopic: "costpipe.events", SrcPartition: 1, SrcOffset: off + 1, Requests: 5, Cost: pricing.MustParsePico("1")}
	for _, tb := range warehouse.Tables {
		if err := s.InsertRollups(ctx, tb, []warehouse.Rollup{late}); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := dv.RunOnce(ctx); err != nil || derivedDays(res) != "2026-03-20:6" || !res[0].Again {
		t.Errorf("RunOnce after late calls derived %+v, %v; want 2026-03-20 again", res, err)
	}
}
