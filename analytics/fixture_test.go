package analytics

import (
	"context"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/whtest"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/sketch"
	"github.com/costpipe/costpipe/warehouse"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// migratedDB returns a new, migrated database of the shared server, closed
// when the test ends.
func migratedDB(t *testing.T) *warehouse.Warehouse {
	t.Helper()
	srv := chtest.Shared(t)
	return whtest.Migrated(t, srv.DSN(srv.NewDatabase(t)))
}

// event is one synthetic inference call. The fixture lands events the way
// the aggregator does (partial rows per table, key, bucket, Kafka partition
// and flush) and the tests compute every expected answer from the events
// themselves.
type event struct {
	ts                                            time.Time
	tenant, application, provider, model, errType string
	partition                                     int32
	flush                                         int
	input, cachedInput, cacheWrite                uint64
	output, reasoning, gpuUs                      uint64
	unpriced                                      bool
	cost                                          pricing.Pico
	latency, ttft                                 float64 // ms; < 0: not reported
}

// Tenants include SQL metacharacters: filters must bind, not splice.
const (
	tenantAcme  = "acme"
	tenantQuote = `o'hare \ ? corp`
)

var fixtureModels = []struct{ provider, model string }{
	{"openai", "gpt-4o"},
	{"anthropic", "claude-sonnet"},
	{"openai", "text-embedding-3-small"}, // never reports TTFT
	{"self-hosted", "llama-local"},       // unpriced, GPU time
}

// fixtureStart is two days before a month boundary: events span
// [2026-01-30 00:00, 2026-02-02 00:00).
var fixtureStart = time.Date(2026, 1, 30, 0, 0, 0, 0, time.UTC)

// genEvents returns the deterministic event set: dense around the month
// boundary, sparse elsewhere.
func genEvents() []event {
	r := rand.New(rand.NewPCG(1, 2))
	boundary := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	var evs []event
	for i := range 3000 {
		var ts time.Time
		if i%2 == 0 {
			// ±3 hours around the boundary, to the second.
			ts = boundary.Add(time.Duration(r.IntN(6*3600)-3*3600) * time.Second)
		} else {
			ts = fixtureStart.Add(time.Duration(r.IntN(3*24*3600)) * time.Second)
		}
		m := fixtureModels[r.IntN(len(fixtureModels))]
		e := event{
			ts:          ts,
			tenant:      []string{tenantAcme, tenantQuote}[r.IntN(2)],
			application: []string{"", "chat"}[r.IntN(2)],
			provider:    m.provider,
			model:       m.model,
			flush:       r.IntN(2),
			input:       uint64(r.IntN(5000)),
			output:      uint64(r.IntN(2000)),
			latency:     -1,
			ttft:        -1,
		}
		e.partition = int32(len(e.tenant)+len(e.model)) % 2
		e.cachedInput = e.input / 3
		e.cacheWrite = e.input / 5
		e.reasoning = e.output / 4
		if r.IntN(10) == 0 {
			e.errType = []string{"rate_limited", "timeout"}[r.IntN(2)]
		}
		if m.model == "llama-local" {
			e.unpriced = true
			e.gpuUs = uint64(r.IntN(900_000_000))
		} else {
			e.cost = pricing.FromPicos(1 + r.Int64N(90_000_000_000)) // up to 0.09 USD, all 12 digits
		}
		if r.IntN(10) != 0 {
			// Log-uniform 5 ms .. 60 s, to the microsecond.
			e.latency = math.Round(5*math.Pow(12000, r.Float64())*1000) / 1000
			if m.model != "text-embedding-3-small" && r.IntN(3) != 0 {
				e.ttft = math.Round(e.latency*r.Float64()*1000) / 1000
			}
		}
		if i == 7 {
			e.latency = 0 // the zero bucket
		}
		evs = append(evs, e)
	}
	return evs
}

// dist is a test-side partial duration.
type dist struct {
	count, sumUs uint64
	min, max     float64
	hist         sketch.Histogram
}

func (d *dist) add(ms float64) {
	if ms < 0 {
		return
	}
	if d.count == 0 || ms < d.min {
		d.min = ms
	}
	d.max = math.Max(d.max, ms)
	d.count++
	d.sumUs += uint64(math.Round(ms * 1000))
	d.hist.Add(ms)
}

// sentinels are the min/max written for a row: +Inf / 0 without samples.
func (d *dist) sentinels() (float64, float64) {
	if d.count == 0 {
		return math.Inf(1), 0
	}
	return d.min, d.max
}

// partial is one row of a *_input table.
type partial struct {
	ts                                               time.Time
	tenant, application, provider, model, errType    string
	partition                                        int32
	offset                                           int64
	requests, errors, input, cachedInput, cacheWrite uint64
	output, reasoning, gpuUs, unpriced               uint64
	cost                                             pricing.Pico
	latency, ttft                                    dist
}

// rollup groups events into partial rows of one table (bucket size unit):
// one per (bucket, key, Kafka partition, flush), as several flushes and
// partitions of one aggregator produce.
func rollup(evs []event, unit time.Duration) []*partial {
	type key struct {
		ts                                            time.Time
		tenant, application, provider, model, errType string
		partition                                     int32
		flush                                         int
	}
	m := map[key]*partial{}
	var order []key
	for i, e := range evs {
		k := key{e.ts.Truncate(unit), e.tenant, e.application, e.provider, e.model, e.errType, e.partition, e.flush}
		p := m[k]
		if p == nil {
			p = &partial{ts: k.ts, tenant: e.tenant, application: e.application, provider: e.provider, model: e.model,
				errType: e.errType, partition: e.partition}
			m[k] = p
			order = append(order, k)
		}
		p.offset = max(p.offset, int64(i))
		p.requests++
		if e.errType != "" {
			p.errors++
		}
		p.input += e.input
		p.cachedInput += e.cachedInput
		p.cacheWrite += e.cacheWrite
		p.output += e.output
		p.reasoning += e.reasoning
		p.gpuUs += e.gpuUs
		if e.unpriced {
			p.unpriced++
		}
		p.cost = p.cost.Add(e.cost)
		p.latency.add(e.latency)
		p.ttft.add(e.ttft)
	}
	out := make([]*partial, len(order))
	for i, k := range order {
		out[i] = m[k]
	}
	return out
}

// land inserts rows into table through warehouse.InsertRollups, one insert
// per month as the aggregator does.
// inserter is what land writes through: a Warehouse, or byShard over a
// cluster's Sharded.
type inserter interface {
	InsertRollups(ctx context.Context, t warehouse.Table, rows []warehouse.Rollup) error
}

// byShard inserts rows into a cluster, one insert per shard (Sharded takes
// only one shard's partitions in an insert).
type byShard struct{ s *warehouse.Sharded }

func (b byShard) InsertRollups(ctx context.Context, t warehouse.Table, rows []warehouse.Rollup) error {
	per := map[int][]warehouse.Rollup{}
	for _, r := range rows {
		i := b.s.ShardOf(r.SrcPartition)
		per[i] = append(per[i], r)
	}
	for i := range len(b.s.Topology().Shards) {
		if err := b.s.InsertRollups(ctx, t, per[i]); err != nil {
			return err
		}
	}
	return nil
}

func land(w inserter, table warehouse.Table, rows []*partial) error {
	ctx := context.Background()
	byMonth := map[warehouse.Month][]warehouse.Rollup{}
	var months []warehouse.Month
	for _, p := range rows {
		m := warehouse.MonthOf(p.ts)
		if byMonth[m] == nil {
			months = append(months, m)
		}
		lmin, lmax := p.latency.sentinels()
		tmin, tmax := p.ttft.sentinels()
		lidx, lcnt := p.latency.hist.AppendArrays([]int16{}, []uint64{})
		tidx, tcnt := p.ttft.hist.AppendArrays([]int16{}, []uint64{})
		byMonth[m] = append(byMonth[m], warehouse.Rollup{
			TS: p.ts, Tenant: p.tenant, Application: p.application, Provider: p.provider, Model: p.model, ErrorType: p.errType,
			SrcTopic: "costpipe.events", SrcPartition: p.partition, SrcOffset: p.offset,
			Requests: p.requests, Errors: p.errors, InputTokens: p.input, CachedInputTokens: p.cachedInput, CacheWriteTokens: p.cacheWrite,
			OutputTokens: p.output, ReasoningTokens: p.reasoning, GPUMicros: p.gpuUs, UnpricedRequests: p.unpriced, Cost: p.cost,
			Latency: warehouse.Dist{Count: p.latency.count, SumMicros: p.latency.sumUs, MinMs: lmin, MaxMs: lmax, HistIdx: lidx, HistCnt: lcnt},
			TTFT:    warehouse.Dist{Count: p.ttft.count, SumMicros: p.ttft.sumUs, MinMs: tmin, MaxMs: tmax, HistIdx: tidx, HistCnt: tcnt},
		})
	}
	sort.Slice(months, func(i, j int) bool { return months[i] < months[j] })
	for _, m := range months {
		if err := w.InsertRollups(ctx, table, byMonth[m]); err != nil {
			return err
		}
	}
	return nil
}

// fixture is a migrated database holding the landed events.
type fixture struct {
	w      *warehouse.Warehouse
	events []event
}

var (
	fixtureOnce sync.Once
	fixtureVal  *fixture
	fixtureErr  string
)

// loadFixture returns the package's shared read-only fixture, creating it
// on first use in its own database on the shared server.
func loadFixture(t *testing.T) *fixture {
	t.Helper()
	srv := chtest.Shared(t)
	fixtureOnce.Do(func() {
		// Not srv.NewDatabase: the fixture outlives the first test; the
		// server is removed with the test binary.
		opts := warehouse.DefaultOptions()
		opts.DSN = srv.DSN("analytics_fixture")
		w, err := warehouse.Open(context.Background(), opts)
		if err != nil {
			fixtureErr = err.Error()
			return
		}
		if _, err := w.Migrate(context.Background()); err != nil {
			fixtureErr = err.Error()
			return
		}
		evs := genEvents()
		if err := landAll(w, evs); err != nil {
			fixtureErr = err.Error()
			return
		}
		fixtureVal = &fixture{w: w, events: evs}
	})
	if fixtureVal == nil {
		t.Fatalf("cannot build the analytics fixture: %s", fixtureErr)
	}
	return fixtureVal
}

// landAll lands evs into the three rollup tables, as the aggregator would.
func landAll(w inserter, evs []event) error {
	for _, tb := range []struct {
		table warehouse.Table
		unit  time.Duration
	}{{warehouse.Minute, time.Minute}, {warehouse.Hour, time.Hour}, {warehouse.Day, day}} {
		if err := land(w, tb.table, rollup(evs, tb.unit)); err != nil {
			return err
		}
	}
	return nil
}

func (fx *fixture) querier(now time.Time) *Querier {
	return New(fx.w, Options{Now: func() time.Time { return now }})
}
