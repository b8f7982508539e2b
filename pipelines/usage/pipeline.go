package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/costpipe/costpipe/internal/loglimit"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/schemas"
	"github.com/costpipe/costpipe/warehouse"
)

// Options configure a Pipeline.
type Options struct {
	// Topic is the Kafka topic the records come from; it is written to
	// src_topic. Default schemas.DefaultTopic.
	Topic string
	// Catalog prices events. Default pricing.Default().
	Catalog *pricing.Catalog
	// RetryMin and RetryMax bound the exponential backoff between attempts to
	// land a flush while ClickHouse fails. Defaults 200ms and 10s.
	RetryMin, RetryMax time.Duration
	// InsertTimeout bounds one insert; an insert that times out is checked
	// (did it land?) before it is sent again. Default 30s.
	InsertTimeout time.Duration
	// MaxEventAge is the oldest event the consumer hands over (its
	// --max-event-age): landing marks are read only for the months such an
	// event can fall in. Default 7 days.
	MaxEventAge time.Duration
	// Now is the clock for MaxEventAge. Default time.Now.
	Now func() time.Time
	// Logger receives retry and recovery lines. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the pipeline's metrics. Default nil: not registered.
	Registerer prometheus.Registerer
}

// DefaultInsertTimeout is Options.InsertTimeout's default. It is a constant
// so that flag defaults can name it without building DefaultOptions (which
// parses the embedded price catalog, most of a command's start-up).
const DefaultInsertTimeout = 30 * time.Second

// DefaultOptions returns Options with every default filled in.
func DefaultOptions() Options {
	return Options{Topic: schemas.DefaultTopic, Catalog: pricing.Default(), RetryMin: 200 * time.Millisecond,
		RetryMax: 10 * time.Second, InsertTimeout: DefaultInsertTimeout,
		MaxEventAge: 7 * 24 * time.Hour, Now: time.Now, Logger: slog.Default()}
}

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	switch {
	case o.Topic == "":
		return errors.New("usage pipeline: topic is empty")
	case o.Catalog == nil:
		return errors.New("usage pipeline: no price catalog")
	case o.RetryMin <= 0 || o.RetryMax < o.RetryMin:
		return fmt.Errorf("usage pipeline: retry backoff %s..%s is not a positive range", o.RetryMin, o.RetryMax)
	case o.MaxEventAge <= 0 || o.Now == nil:
		return fmt.Errorf("usage pipeline: max event age %s must be > 0, with a clock", o.MaxEventAge)
	case o.InsertTimeout < time.Second:
		return fmt.Errorf("usage pipeline: insert timeout %s is below 1s", o.InsertTimeout)
	case o.Logger == nil:
		return errors.New("usage pipeline: nil logger")
	}
	return nil
}

type winKey struct {
	Dims
	minute int64 // unix seconds of the minute start
	tables warehouse.Table
}

const cacheSlots = 512

type cacheSlot struct {
	key   winKey // strings as the event had them (identity compared)
	part  int32
	m     *Measures
	entry *pricing.Entry
}

// sameStr reports whether a and b are the same string object (which implies
// equal); different objects with equal content just miss the cache.
func sameStr(a, b string) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafe.StringData(a) == unsafe.StringData(b))
}

func slotOf(k *winKey, part int32) int {
	h := uintptr(k.minute) ^ uintptr(k.tables)<<7 ^ uintptr(part)<<11
	h ^= uintptr(k.ContextBand) << 17
	for _, s := range [...]string{k.Tenant, k.Application, k.Provider, k.Model, k.ErrorType, k.ServiceTier} {
		h = (h ^ uintptr(unsafe.Pointer(unsafe.StringData(s)))) * 0x9E3779B97F4A7C15 >> 7
		h ^= uintptr(len(s))
	}
	return int(h % cacheSlots)
}

func (p *Pipeline) clearCache() { p.cache = [cacheSlots]cacheSlot{} }

type markKey struct {
	table warehouse.Table
	month warehouse.Month
}

// partition is the state of one owned Kafka partition.
type partition struct {
	marks map[markKey]int64
	// above caches, per month, the highest mark of any table: a record
	// beyond it goes to every table without looking at the marks.
	aboveMonth warehouse.Month
	above      int64
	windows    map[winKey]*Measures
	end        int64 // highest offset added since the last landed flush; -1 none
	// since is the oldest month whose marks were read (0: all): an event
	// older than that is not expected (the consumer sends it to the DLQ).
	since warehouse.Month
}

// Lander is where a Pipeline lands rollups and reads their landing marks:
// a *warehouse.Warehouse (one server) or a *warehouse.Sharded (a cluster).
// An insert must land whole or not at all.
type Lander interface {
	InsertRollups(ctx context.Context, t warehouse.Table, rows []warehouse.Rollup) error
	LandingMarks(ctx context.Context, topic string, partitions []int32, since warehouse.Month) (map[warehouse.MarkKey]int64, error)
}

// sharder is a Lander whose inserts may hold the rows of one shard only:
// Flush makes one insert per (table, month, shard).
type sharder interface {
	ShardOf(partition int32) int
}

// Pipeline aggregates events of the partitions it owns and lands them.
type Pipeline struct {
	opts  Options
	w     Lander
	shard sharder // w when it lands on a cluster's shards, else nil
	parts map[int32]*partition
	free  []*Measures
	names map[string]string // interned dimension values held by windows
	nwin  int
	m     *metrics
	// unlanded is set while a Flush has failed partway: its windows must be
	// landed (Flush again) or dropped before anything is added.
	unlanded bool
	// uncertain is set while an insert's outcome is unknown (it failed, timed
	// out or was interrupted, and ClickHouse has not been asked since): no
	// insert is sent before the landing marks are read again.
	uncertain bool
	// failing is the run of failed landing attempts (inserts, landed
	// checks, landing-mark reads) since the last flush that landed: its
	// warnings are rate-limited, its end logged.
	failing loglimit.Failures
	// cache maps recently used window keys, compared by string identity
	// (decoders hand out the same string for the same value), to their
	// window and price entry, skipping the map's hashing of five strings.
	cache [cacheSlots]cacheSlot
	// monthCache memoises the month of the last minute seen.
	lastMinute int64
	lastMonth  warehouse.Month
}

// New returns a Pipeline landing into w. A nil w gives a pipeline that only
// aggregates (benchmarks, dry runs): Assign must then be AssignLanded and
// Flush fails.
func New(w Lander, opts Options) (*Pipeline, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if wh, ok := w.(*warehouse.Warehouse); ok && wh == nil {
		w = nil
	}
	sh, _ := w.(sharder)
	p := &Pipeline{opts: opts, w: w, shard: sh, parts: map[int32]*partition{}, names: map[string]string{}, m: newMetrics(opts.Registerer), lastMinute: -1}
	return p, nil
}

// Assign loads the landing marks of newly owned partitions from ClickHouse.
// It must succeed before Add is called for them; on error nothing changes
// and the caller retries.
func (p *Pipeline) Assign(ctx context.Context, partitions []int32) error {
	if p.w == nil {
		return errNoWarehouse
	}
	since := p.marksSince()
	marks, err := p.w.LandingMarks(ctx, p.opts.Topic, partitions, since)
	if err != nil {
		return err
	}
	p.assign(partitions, marks, since)
	return nil
}

var errNoWarehouse = errors.New("usage pipeline has no warehouse")

// marksSince is the oldest month an event handed over now can fall in, with
// warehouse.ClockMargin (a wall clock stepping back must not make the
// consumer accept an event older than the marks read; retention keeps the
// minutes that long).
func (p *Pipeline) marksSince() warehouse.Month {
	return warehouse.MonthOf(p.opts.Now().Add(-p.opts.MaxEventAge - warehouse.ClockMargin))
}

// AssignLanded is Assign with landing marks the caller already read (see
// warehouse.LandingMarks); marks of other partitions are ignored.
func (p *Pipeline) AssignLanded(partitions []int32, marks map[warehouse.MarkKey]int64) {
	p.assign(partitions, marks, 0)
}

func (p *Pipeline) assign(partitions []int32, marks map[warehouse.MarkKey]int64, since warehouse.Month) {
	for _, id := range partitions {
		p.drop(id)
		p.parts[id] = &partition{marks: map[markKey]int64{}, windows: map[winKey]*Measures{}, end: -1, since: since}
		// aboveMonth 0 is no month: the cache starts empty.
	}
	for k, v := range marks {
		if part := p.parts[k.Partition]; part != nil {
			part.marks[markKey{k.Table, k.Month}] = v
		}
	}
}

// LandedThrough is the highest offset the landing marks hold for an owned
// partition (its latest flush that landed), ok false when it has none.
func (p *Pipeline) LandedThrough(partition int32) (offset int64, ok bool) {
	part := p.parts[partition]
	if part == nil {
		return 0, false
	}
	for _, v := range part.marks {
		offset, ok = max(offset, v), true
	}
	return offset, ok
}

// Drop forgets partitions (revoked or lost) and their unlanded windows.
func (p *Pipeline) Drop(partitions []int32) {
	for _, id := range partitions {
		p.drop(id)
	}
	if p.nwin == 0 {
		p.unlanded = false
	}
}

func (p *Pipeline) drop(id int32) {
	part := p.parts[id]
	if part == nil {
		return
	}
	p.clearCache()
	for k, m := range part.windows {
		p.release(m)
		delete(part.windows, k)
	}
	delete(p.parts, id)
}

// Windows is the number of key-minute windows held in memory.
func (p *Pipeline) Windows() int { return p.nwin }

// Add prices e (the record at offset of partition id) and adds it to the
// windows of every table it has not landed in yet. It reports false when the
// record had landed everywhere already (a replay after a restart).
func (p *Pipeline) Add(id int32, offset int64, e *schemas.Event) bool {
	part := p.parts[id]
	if part == nil {
		panic(fmt.Sprintf("usage: Add for partition %d, which is not assigned", id))
	}
	if p.unlanded {
		panic("usage: Add after a failed Flush; retry Flush or Drop the partitions first")
	}
	minute := e.Timestamp.Unix() // ≥ 0: validated events are from 1970 on
	minute -= minute % 60
	month := p.monthOf(minute)
	if month != part.aboveMonth {
		if month < part.since {
			panic(fmt.Sprintf("usage: event %q of month %d is older than the landing marks read (from month %d): the consumer's max event age must not exceed the pipeline's", e.EventID, month, part.since))
		}
		part.aboveMonth, part.above = month, -1
		for _, t := range warehouse.Tables {
			if hwm, ok := part.marks[markKey{t, month}]; ok && hwm > part.above {
				part.above = hwm
			}
		}
	}
	tables := warehouse.AllTables
	if offset <= part.above {
		tables = 0
		for _, t := range warehouse.Tables {
			if hwm, ok := part.marks[markKey{t, month}]; !ok || offset > hwm {
				tables |= t
			}
		}
	}
	if tables == 0 {
		p.m.skipped.Inc()
		return false
	}
	key := winKey{Dims: Dims{Tenant: e.Tenant, Application: e.Application, Provider: e.Provider, Model: e.Model,
		ServiceTier: pricing.NormalizeServiceTier(e.ServiceTier), ContextBand: pricing.ContextBand(e.InputTokens)},
		minute: minute, tables: tables}
	if e.Status == schemas.StatusError {
		key.ErrorType = e.ErrorType
		if key.ErrorType == "" {
			key.ErrorType = "unknown"
		}
	}
	slot := &p.cache[slotOf(&key, id)]
	var m *Measures
	var entry *pricing.Entry
	if slot.m != nil && slot.part == id && slot.key.minute == key.minute && slot.key.tables == key.tables &&
		sameStr(slot.key.Tenant, key.Tenant) && sameStr(slot.key.Model, key.Model) && sameStr(slot.key.Provider, key.Provider) &&
		sameStr(slot.key.Application, key.Application) && sameStr(slot.key.ErrorType, key.ErrorType) &&
		sameStr(slot.key.ServiceTier, key.ServiceTier) && slot.key.ContextBand == key.ContextBand {
		m, entry = slot.m, slot.entry
	} else {
		m = part.windows[key]
		if m == nil {
			m = p.alloc()
			ik := key
			ik.Dims = p.intern(key.Dims)
			part.windows[ik] = m
			p.nwin++
		}
		entry = p.opts.Catalog.Lookup(e.Provider, e.Model)
		*slot = cacheSlot{key: key, part: id, m: m, entry: entry}
	}
	cost, priced := p.opts.Catalog.TotalEntry(entry, e)
	m.Add(e, cost, priced)
	if offset > part.end {
		part.end = offset
	}
	return true
}

func (p *Pipeline) monthOf(minute int64) warehouse.Month {
	if minute != p.lastMinute {
		p.lastMinute = minute
		p.lastMonth = warehouse.MonthOf(time.Unix(minute, 0))
	}
	return p.lastMonth
}

func (p *Pipeline) alloc() *Measures {
	if n := len(p.free); n > 0 {
		m := p.free[n-1]
		p.free = p.free[:n-1]
		return m
	}
	return new(Measures)
}

func (p *Pipeline) release(m *Measures) {
	m.Reset()
	p.nwin--
	if len(p.free) < 4096 {
		p.free = append(p.free, m)
	}
}

func (p *Pipeline) intern(d Dims) Dims {
	return Dims{Tenant: p.str(d.Tenant), Application: p.str(d.Application), Provider: p.str(d.Provider),
		Model: p.str(d.Model), ErrorType: p.str(d.ErrorType), ServiceTier: p.str(d.ServiceTier), ContextBand: d.ContextBand}
}

func (p *Pipeline) str(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := p.names[s]; ok {
		return v
	}
	v := strings.Clone(s) // never keep a decoder's or a record's buffer alive
	p.names[v] = v
	return v
}

type insertKey struct {
	table warehouse.Table
	month warehouse.Month
	shard int // of a cluster (0 on one server): an insert lands on one shard
}

// shardOf is the shard partition id lands on.
func (p *Pipeline) shardOf(id int32) int {
	if p.shard == nil {
		return 0
	}
	return p.shard.ShardOf(id)
}

type rowKey struct {
	Dims
	ts        int64
	partition int32
}

// Flush lands every window of every owned partition: for each (table, month,
// and shard of a cluster) one atomic insert carrying the rows of all its
// partitions, each row stamped with its partition's end offset. It retries with backoff until everything has
// landed or ctx ends.
//
// No insert is ever repeated blindly: after an insert failed, timed out or
// was interrupted, Flush reads the landing marks from ClickHouse (retrying
// the read while it fails) and inserts again only what had not landed; this
// holds across calls, so a Flush after a failed one checks first.
//
// Cancelling ctx stops Flush between inserts but does not interrupt an
// insert in flight (a shutdown must not cut an insert that the server then
// commits); an insert ends at InsertTimeout or at ctx's deadline, whichever
// comes first. A deadline ctx could not carry when Flush began (a
// shutdown's, which starts with the shutdown) is given by ending ctx with
// the cause context.DeadlineExceeded: it ends an insert in flight too. On
// success the windows are cleared and the landing marks advanced. On error
// the windows are kept: the caller either retries Flush or drops the
// partitions and replays them from Kafka.
//
// Failed attempts (inserts, checks, landing-mark reads) are logged at once,
// then at most once a landingLogEvery with how many failed meanwhile; the
// first Flush that lands after failures logs "landing again".
func (p *Pipeline) Flush(ctx context.Context) error {
	if p.nwin == 0 {
		return nil
	}
	if p.w == nil {
		return errNoWarehouse
	}
	start := time.Now()
	if p.uncertain {
		if err := p.refreshMarks(ctx); err != nil {
			p.unlanded = true
			return err
		}
	}
	batches := p.build()
	keys := make([]insertKey, 0, len(batches))
	for k := range batches {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].month != keys[j].month {
			return keys[i].month < keys[j].month
		}
		if keys[i].table != keys[j].table {
			return keys[i].table < keys[j].table
		}
		return keys[i].shard < keys[j].shard
	})
	rows := 0
	for _, k := range keys {
		if ctx.Err() != nil {
			p.unlanded = true
			return fmt.Errorf("flush interrupted before landing %d rows into %s (month %d): %w", len(batches[k]), k.table.Name(), k.month, context.Cause(ctx))
		}
		if err := p.land(ctx, k, batches[k]); err != nil {
			p.unlanded = true
			return err
		}
		rows += len(batches[k])
		// Advance the in-memory marks as soon as the insert landed, so a later
		// failure in this flush does not re-land it when retried.
		for _, r := range batches[k] {
			if part := p.parts[r.SrcPartition]; part != nil {
				mk := markKey{k.table, k.month}
				if cur, ok := part.marks[mk]; !ok || r.SrcOffset > cur {
					part.marks[mk] = r.SrcOffset
				}
				part.aboveMonth = 0 // recompute on the next Add
			}
		}
	}
	p.clearCache()
	var events uint64
	for _, part := range p.parts {
		for k, m := range part.windows {
			events += m.Requests
			p.release(m)
			delete(part.windows, k)
		}
		part.end = -1
	}
	p.unlanded = false
	p.landingAgain(rows, events)
	if len(p.names) > 100_000 {
		p.names = map[string]string{}
	}
	p.m.flushes.Inc()
	p.m.flushRows.Observe(float64(rows))
	p.m.flushSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// build turns the windows into rows per (table, month). A minute window is
// one minute row as it is; hour and day rows merge the windows of their
// bucket first. It counts the rows of each (table, month) and the histogram
// buckets of all rows before making any, so each batch is one allocation of
// its exact size and the histogram arrays of all rows share two arenas, also
// exactly sized (no slice grows and copies itself while a flush is built).
func (p *Pipeline) build() map[insertKey][]warehouse.Rollup {
	type group struct {
		id    int32
		end   int64
		table warehouse.Table
		rows  map[rowKey]*Measures
	}
	var groups []group
	count := map[insertKey]int{}
	cells := 0
	for id, part := range p.parts {
		if len(part.windows) == 0 {
			continue
		}
		for _, t := range warehouse.Tables {
			if t == warehouse.Minute {
				for k, m := range part.windows {
					if k.tables&t == 0 || p.landedIn(part, t, k.minute) {
						continue
					}
					count[insertKey{table: t, month: p.monthOf(k.minute), shard: p.shardOf(id)}]++
					cells += m.Latency.Hist.Len() + m.TTFT.Hist.Len()
				}
				continue
			}
			grouped := map[rowKey]*Measures{}
			for k, m := range part.windows {
				if k.tables&t == 0 || p.landedIn(part, t, k.minute) {
					continue
				}
				ts := t.Truncate(time.Unix(k.minute, 0)).Unix()
				rk := rowKey{Dims: k.Dims, ts: ts, partition: id}
				g := grouped[rk]
				if g == nil {
					g = p.alloc()
					grouped[rk] = g
				}
				g.Merge(m)
			}
			for rk, m := range grouped {
				count[insertKey{table: t, month: p.monthOf(rk.ts), shard: p.shardOf(id)}]++
				cells += m.Latency.Hist.Len() + m.TTFT.Hist.Len()
			}
			groups = append(groups, group{id: id, end: part.end, table: t, rows: grouped})
		}
	}
	out := make(map[insertKey][]warehouse.Rollup, len(count))
	for ik, n := range count {
		out[ik] = make([]warehouse.Rollup, 0, n)
	}
	rb := rowBuilder{idx: make([]int16, 0, cells), cnt: make([]uint64, 0, cells)}
	for id, part := range p.parts {
		for k, m := range part.windows {
			if k.tables&warehouse.Minute == 0 || p.landedIn(part, warehouse.Minute, k.minute) {
				continue
			}
			ik := insertKey{table: warehouse.Minute, month: p.monthOf(k.minute), shard: p.shardOf(id)}
			out[ik] = append(out[ik], rb.row(time.Unix(k.minute, 0).UTC(), &k.Dims, p.opts.Topic, id, part.end, m))
		}
	}
	for _, g := range groups {
		for rk, m := range g.rows {
			ik := insertKey{table: g.table, month: p.monthOf(rk.ts), shard: p.shardOf(g.id)}
			out[ik] = append(out[ik], rb.row(time.Unix(rk.ts, 0).UTC(), &rk.Dims, p.opts.Topic, g.id, g.end, m))
			// The row holds copies of the sums and histogram arrays: the
			// merged window goes back to the free list.
			m.Reset()
			if len(p.free) < 4096 {
				p.free = append(p.free, m)
			}
		}
	}
	return out
}

// landedIn reports whether table t of part's window at minute landed already,
// by an earlier attempt of this flush.
func (p *Pipeline) landedIn(part *partition, t warehouse.Table, minute int64) bool {
	hwm, ok := part.marks[markKey{t, p.monthOf(minute)}]
	return ok && hwm >= part.end
}

// rowBuilder makes rollup rows, their histogram arrays cut from two arenas
// that build sizes for all rows of a flush.
type rowBuilder struct {
	idx []int16
	cnt []uint64
}

func (rb *rowBuilder) row(ts time.Time, d *Dims, topic string, part int32, end int64, m *Measures) warehouse.Rollup {
	return warehouse.Rollup{
		TS: ts, Tenant: d.Tenant, Application: d.Application, Provider: d.Provider, Model: d.Model,
		ErrorType: d.ErrorType, ServiceTier: d.ServiceTier, ContextBand: d.ContextBand,
		SrcTopic: topic, SrcPartition: part, SrcOffset: end,
		Requests: m.Requests, Errors: m.Errors, InputTokens: m.InputTokens, CachedInputTokens: m.CachedInputTokens,
		CacheWriteTokens: m.CacheWriteTokens, CacheWrite1hTokens: m.CacheWrite1hTokens, OutputTokens: m.OutputTokens, ReasoningTokens: m.ReasoningTokens,
		GPUMicros: m.GPUMicros, UnpricedRequests: m.Unpriced, Cost: m.Cost,
		Latency: rb.dist(&m.Latency), TTFT: rb.dist(&m.TTFT),
	}
}

func (rb *rowBuilder) dist(d *Dist) warehouse.Dist {
	out := warehouse.Dist{Count: d.Count, SumMicros: d.SumMicros}
	if d.Count == 0 {
		return out
	}
	a := len(rb.idx)
	rb.idx, rb.cnt = d.Hist.AppendArrays(rb.idx, rb.cnt)
	b := len(rb.idx)
	// Full slice expressions: a later append never writes into this row's
	// arrays (it reallocates instead).
	out.HistIdx, out.HistCnt = rb.idx[a:b:b], rb.cnt[a:b:b]
	return out
}

// land inserts one (table, month) batch, retrying until it has landed. After
// a failed attempt it inserts again only once ClickHouse has said the batch is
// not there.
func (p *Pipeline) land(ctx context.Context, k insertKey, rows []warehouse.Rollup) error {
	backoff := p.opts.RetryMin
	for attempt := 1; ; attempt++ {
		err := p.insert(ctx, k, rows)
		if err == nil {
			return nil
		}
		// The insert may have landed (the connection broke or the deadline
		// passed after the server committed it): until ClickHouse says
		// otherwise, its outcome is unknown.
		p.uncertain = true
		p.m.chErrors.Inc()
		p.failed("cannot land rollups in clickhouse; checking whether the insert landed before retrying (Kafka keeps the data meanwhile)",
			"table", k.table.Name(), "month", k.month, "rows", len(rows), "attempt", attempt, "err", err)
		for check := 1; ; check++ {
			if err := sleepCtx(ctx, backoff); err != nil {
				return fmt.Errorf("cannot land %d rows into %s (month %d), outcome of the last insert unknown: %w", len(rows), k.table.Name(), k.month, err)
			}
			backoff = min(backoff*2, p.opts.RetryMax)
			landed, lerr := p.landed(ctx, k, rows)
			if lerr != nil {
				p.m.chErrors.Inc()
				p.failed("cannot check whether an insert landed; checking again", "table", k.table.Name(), "month", k.month,
					"check", check, "retry_in", backoff, "err", lerr)
				continue
			}
			p.uncertain = false
			if landed {
				p.m.landedAfterError.Inc()
				p.opts.Logger.Info("a failed insert had landed; not inserting it again", "table", k.table.Name(), "month", k.month)
				return nil
			}
			break
		}
	}
}

// insert sends one batch with its own deadline: InsertTimeout, or ctx's
// deadline when sooner. Cancelling ctx does not interrupt it, unless the
// cause is context.DeadlineExceeded (a deadline set after the insert began,
// such as a shutdown's).
func (p *Pipeline) insert(ctx context.Context, k insertKey, rows []warehouse.Rollup) error {
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.InsertTimeout)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		var cancelDL context.CancelFunc
		ictx, cancelDL = context.WithDeadline(ictx, dl)
		defer cancelDL()
	}
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			cancel()
		}
	})
	defer stop()
	return p.w.InsertRollups(ictx, k.table, rows)
}

// readMarks reads the landing marks of partitions since month after a
// failed insert, within InsertTimeout: a server that stops answering fails
// the read, which is counted, logged and tried again, rather than holding
// it with no sign of the outage. The driver bounds a new connection's
// handshake by its dial timeout, not by the context, so a read that
// outlives the deadline is left to end on its own.
func (p *Pipeline) readMarks(ctx context.Context, partitions []int32, since warehouse.Month) (map[warehouse.MarkKey]int64, error) {
	rctx, cancel := context.WithTimeout(ctx, p.opts.InsertTimeout)
	defer cancel()
	type result struct {
		marks map[warehouse.MarkKey]int64
		err   error
	}
	done := make(chan result, 1)
	go func() {
		m, err := p.w.LandingMarks(rctx, p.opts.Topic, partitions, since)
		done <- result{m, err}
	}()
	select {
	case r := <-done:
		return r.marks, r.err
	case <-rctx.Done(): // the deadline, or ctx: never the read itself
		select {
		case r := <-done: // it answered just in time
			return r.marks, r.err
		default:
		}
		return nil, fmt.Errorf("cannot read the landing marks: no answer within the insert timeout %s: %w", p.opts.InsertTimeout, context.Cause(rctx))
	}
}

// refreshMarks reads the landing marks of every owned partition again after
// an insert whose outcome is unknown, retrying while ClickHouse fails, and
// raises the in-memory marks to them: build then leaves out what landed.
func (p *Pipeline) refreshMarks(ctx context.Context) error {
	ids := make([]int32, 0, len(p.parts))
	for id := range p.parts {
		ids = append(ids, id)
	}
	backoff := p.opts.RetryMin
	for {
		marks, err := p.readMarks(ctx, ids, p.marksSince())
		if err == nil {
			for k, v := range marks {
				part := p.parts[k.Partition]
				if part == nil {
					continue
				}
				mk := markKey{k.Table, k.Month}
				if cur, ok := part.marks[mk]; !ok || v > cur {
					part.marks[mk] = v
				}
				part.aboveMonth = 0
			}
			p.uncertain = false
			return nil
		}
		p.m.chErrors.Inc()
		p.failed("cannot read landing marks after an insert of unknown outcome; retrying before inserting anything", "retry_in", backoff, "err", err)
		if err := sleepCtx(ctx, backoff); err != nil {
			return fmt.Errorf("cannot read landing marks after an insert of unknown outcome: %w", err)
		}
		backoff = min(backoff*2, p.opts.RetryMax)
	}
}

// landingLogEvery is how often at most the failed landing attempts of one
// outage are logged: the first at once, then one line with how many failed
// since the line before (the retries' backoff alone allowed one line every
// RetryMax, 360 an hour).
const landingLogEvery = time.Minute

// failed counts a failed landing attempt and logs it at WARN (msg, attrs,
// with failures: the attempts failed since the last warning, this one
// included, and failing_for) when it is the outage's first failure or the
// last warning is landingLogEvery old.
func (p *Pipeline) failed(msg string, attrs ...any) {
	now := time.Now()
	n, since, due := p.failing.Fail(now, landingLogEvery)
	if !due {
		return
	}
	attrs = append(attrs, "failures", n, "failing_for", now.Sub(since).Round(time.Millisecond))
	p.opts.Logger.Warn(msg, attrs...)
}

// landingAgain ends a run of failed landing attempts with a flush that
// landed rows rollup rows of events events: logged at INFO, once.
func (p *Pipeline) landingAgain(rows int, events uint64) {
	since, attempts, failing := p.failing.Succeed()
	if !failing {
		return
	}
	p.opts.Logger.Info("landing again", "failing_for", time.Since(since).Round(time.Millisecond),
		"failed_attempts", attempts, "rows", rows, "events", int64(events))
}

// sleepCtx sleeps for d, or until ctx ends (its cause returned).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// landed reports whether the insert of rows into k had landed: the rows of a
// partition carry its end offset, so the insert landed iff HWM(k, p) ≥ that
// offset for the partitions in it (an insert is atomic: checking one suffices,
// all are checked for safety).
func (p *Pipeline) landed(ctx context.Context, k insertKey, rows []warehouse.Rollup) (bool, error) {
	want := map[int32]int64{}
	for _, r := range rows {
		want[r.SrcPartition] = r.SrcOffset
	}
	ids := make([]int32, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	marks, err := p.readMarks(ctx, ids, k.month)
	if err != nil {
		return false, err
	}
	all := true
	for id, off := range want {
		if m, ok := marks[warehouse.MarkKey{Table: k.table, Month: k.month, Partition: id}]; !ok || m < off {
			all = false // no mark at all is "nothing landed", even for offset 0
		}
	}
	return all, nil
}
