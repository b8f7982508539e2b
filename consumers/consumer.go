// Package consumers owns the Kafka side of aggregation: a franz-go consumer
// group on the events topic, the partition lifecycle (assignment, revocation,
// loss), offset recovery, decoding (JSON or Arrow IPC by content-type),
// validation, event-age bounds, deduplication by event_id and the dead-letter
// queue. Valid, deduplicated events go to a Sink (the usage pipeline), which
// lands them; offsets are committed to Kafka only after the Sink has landed
// everything consumed before them.
//
// One goroutine (Run's) polls, processes and flushes; rebalances are blocked
// while it works (kgo.BlockRebalanceOnPoll), so partition callbacks never run
// concurrently with processing.
package consumers

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/costpipe/costpipe/schemas"
	"github.com/costpipe/costpipe/schemas/arrowcodec"
)

// Sink receives the valid events of the partitions this consumer owns. All
// calls come from the consumer's goroutine.
type Sink interface {
	// Assign prepares newly owned partitions (loads their landing state).
	// On error the consumer retries; nothing of them is processed before.
	Assign(ctx context.Context, partitions []int32) error
	// Add takes one valid, deduplicated event read at offset of partition.
	Add(partition int32, offset int64, e *schemas.Event) bool
	// Flush lands everything added. On error the state is kept for a retry,
	// or the consumer drops the partitions and replays them.
	Flush(ctx context.Context) error
	// Drop forgets partitions and their unlanded state.
	Drop(partitions []int32)
	// Windows is the number of aggregation windows held in memory.
	Windows() int
}

// Options configure a Consumer.
type Options struct {
	// Brokers are the Kafka seed brokers. Default ["127.0.0.1:9092"].
	Brokers []string
	// Topic is the events topic. Default schemas.DefaultTopic.
	Topic string
	// DLQTopic receives invalid records. Default Topic + ".dlq"
	// (costpipe.events.dlq).
	DLQTopic string
	// Group is the consumer group. Default "costpipe-aggregator".
	Group string
	// FlushInterval is how often partial windows are landed. Default 5s.
	FlushInterval time.Duration
	// MaxEventAge sends events older than this (by the clock) to the DLQ.
	// Default 7 days.
	MaxEventAge time.Duration
	// MaxFuture sends events further than this in the future to the DLQ.
	// Default 5 minutes.
	MaxFuture time.Duration
	// DedupeWindow is how far back in event time duplicates of an event_id
	// are recognised, also across restarts (the window is warmed from Kafka
	// on assignment). 0 turns deduplication off (for producers that never
	// resend). Default 1h.
	DedupeWindow time.Duration
	// DedupeMaxIDs bounds the event_ids remembered per partition; beyond it
	// the oldest minutes are forgotten early (metric
	// costpipe_dedupe_evicted_total). Default 1,000,000.
	DedupeMaxIDs int
	// MaxWindows triggers an early flush when the Sink holds more windows.
	// Default 500,000.
	MaxWindows int
	// MaxPollRecords bounds the records processed between two flush checks.
	// Default 10,000.
	MaxPollRecords int
	// FlushTimeoutOnRebalance is how long a flush may keep retrying while a
	// rebalance waits; after it the unlanded state is dropped and replayed
	// from Kafka by the partitions' next owner. Default 20s.
	FlushTimeoutOnRebalance time.Duration
	// SessionTimeout is how long the group waits for a silent member (a
	// crashed instance) before moving its partitions. Default 45s.
	SessionTimeout time.Duration
	// Now is the clock for event-age bounds. Default time.Now.
	Now func() time.Time
	// Logger receives lifecycle lines. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the consumer's metrics. Default nil.
	Registerer prometheus.Registerer
	// ClientOpts are extra franz-go options (TLS, SASL, ...).
	ClientOpts []kgo.Opt
}

// DefaultOptions returns Options with every default filled in.
func DefaultOptions() Options {
	return Options{
		Brokers: []string{"127.0.0.1:9092"}, Topic: schemas.DefaultTopic, DLQTopic: schemas.DefaultDLQTopic,
		Group: "costpipe-aggregator", FlushInterval: 5 * time.Second, MaxEventAge: 7 * 24 * time.Hour,
		MaxFuture: 5 * time.Minute, DedupeWindow: time.Hour, DedupeMaxIDs: 1_000_000, MaxWindows: 500_000,
		MaxPollRecords: 10_000, FlushTimeoutOnRebalance: 20 * time.Second, SessionTimeout: 45 * time.Second, Now: time.Now, Logger: slog.Default(),
	}
}

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	switch {
	case len(o.Brokers) == 0:
		return errors.New("no Kafka brokers")
	case o.Topic == "":
		return errors.New("empty topic")
	case o.DLQTopic == "" || o.DLQTopic == o.Topic:
		return fmt.Errorf("DLQ topic %q must be set and differ from the events topic", o.DLQTopic)
	case o.Group == "":
		return errors.New("empty consumer group")
	case o.FlushInterval < 10*time.Millisecond:
		return fmt.Errorf("flush interval %s is below 10ms", o.FlushInterval)
	case o.MaxEventAge <= 0:
		return fmt.Errorf("max event age %s must be > 0", o.MaxEventAge)
	case o.MaxFuture < 0:
		return fmt.Errorf("max future %s must be ≥ 0", o.MaxFuture)
	case o.DedupeWindow != 0 && o.DedupeWindow < time.Minute:
		return fmt.Errorf("dedupe window %s is below 1m (0 turns dedupe off)", o.DedupeWindow)
	case o.DedupeMaxIDs < 1000:
		return fmt.Errorf("dedupe max ids %d is below 1000", o.DedupeMaxIDs)
	case o.MaxWindows < 1 || o.MaxPollRecords < 1:
		return errors.New("max windows and max poll records must be ≥ 1")
	case o.SessionTimeout < 6*time.Second:
		return fmt.Errorf("session timeout %s is below 6s (the broker minimum)", o.SessionTimeout)
	case o.FlushTimeoutOnRebalance <= 0:
		return errors.New("flush timeout on rebalance must be > 0")
	case o.Now == nil || o.Logger == nil:
		return errors.New("nil clock or logger")
	}
	return nil
}

// partState is the consumer's view of one owned partition.
type partState struct {
	assigned  bool  // the Sink has loaded its state
	warmUntil int64 // records below this offset only warm the dedupe window
	committed int64 // offset committed to Kafka (next to read), -1 unknown
	consumed  int64 // last offset processed, -1 none
	dedupe    *dedupe
	evicted   uint64 // dedupe.evicted already reported
}

// Consumer consumes the events topic into a Sink.
type Consumer struct {
	opts  Options
	sink  Sink
	log   *slog.Logger
	m     *metrics
	seeds [2]maphash.Seed

	cl    *kgo.Client
	adm   *kadm.Client
	parts map[int32]*partState
	json  *schemas.Decoder
	arrow *arrowcodec.Decoder
	ev    schemas.Event
	dlqMu sync.Mutex
	// dlqPending counts DLQ records produced and not yet resolved.
	dlqPending int
	// dlqFailed are DLQ records franz-go gave up on; waitDLQ resends them.
	dlqFailed  []dlqFailure
	dlqLastErr error

	lastFlush        atomic.Int64 // unix nanoseconds (by opts.Now) of the last flush
	rebalanceWaiting atomic.Bool
	// ready is closed once New has set cl and adm: franz-go may run the
	// group callbacks before NewClient returns.
	ready chan struct{}

	adjMu    sync.Mutex
	adjusted map[int32]startPos // from adjustOffsets, applied by prepare

	// Per-record scratch of process.
	now            time.Time
	oldest, newest int64 // age bounds in unix nanoseconds
	in             int   // events accepted from the current record
}

// New returns a Consumer feeding sink. Run starts it.
func New(opts Options, sink Sink) (*Consumer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &Consumer{opts: opts, sink: sink, log: opts.Logger, m: newMetrics(opts.Registerer),
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, parts: map[int32]*partState{},
		json: schemas.NewDecoder(), arrow: arrowcodec.NewDecoder(), ready: make(chan struct{}),
		adjusted: map[int32]startPos{}}
	kopts := []kgo.Opt{
		kgo.SeedBrokers(opts.Brokers...),
		kgo.ConsumerGroup(opts.Group),
		kgo.ConsumeTopics(opts.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.Balancers(kgo.StickyBalancer()), // eager: a rebalance revokes everything, which we flush first
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { c.rebalanceWaiting.Store(true) }),
		kgo.AdjustFetchOffsetsFn(c.adjustOffsets),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.SessionTimeout(opts.SessionTimeout),
		kgo.AllowAutoTopicCreation(), // the DLQ topic, where the cluster allows it
		kgo.ProducerLinger(5 * time.Millisecond),
	}
	cl, err := kgo.NewClient(append(kopts, opts.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot create kafka client for %v: %w", opts.Brokers, err)
	}
	c.cl = cl
	c.adm = kadm.NewClient(cl)
	close(c.ready)
	return c, nil
}

// onAssigned registers new partitions; the poll loop prepares them.
func (c *Consumer) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	<-c.ready
	c.rebalanceWaiting.Store(false) // the rebalance is happening
	for _, p := range assigned[c.opts.Topic] {
		if _, ok := c.parts[p]; !ok {
			st := &partState{committed: -1, consumed: -1}
			if c.opts.DedupeWindow > 0 {
				st.dedupe = newDedupe(c.opts.DedupeWindow, c.opts.DedupeMaxIDs, c.seeds)
			}
			c.parts[p] = st
		}
	}
	c.log.Info("partitions assigned", "topic", c.opts.Topic, "partitions", assigned[c.opts.Topic])
	c.m.owned.Set(float64(len(c.parts)))
}

// adjustOffsets starts each new partition early enough to warm its dedupe
// window: at the first record produced within DedupeWindow before now, when
// that is before the committed offset.
func (c *Consumer) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	<-c.ready
	// This runs on franz-go's offset-fetch goroutine, which polls do not
	// block: results go through c.adjusted and the poll goroutine applies
	// them (prepare) before it processes any record of these partitions.
	parts := offsets[c.opts.Topic]
	found := make(map[int32]startPos, len(parts))
	for p, off := range parts {
		if committed := off.EpochOffset().Offset; committed >= 0 {
			found[p] = startPos{committed: committed}
		}
	}
	defer func() {
		c.adjMu.Lock()
		for p, sp := range found {
			c.adjusted[p] = sp
		}
		c.adjMu.Unlock()
	}()
	if len(parts) == 0 || c.opts.DedupeWindow == 0 {
		return offsets, nil
	}
	since := c.opts.Now().Add(-c.opts.DedupeWindow).UnixMilli()
	listed, err := c.adm.ListOffsetsAfterMilli(ctx, since, c.opts.Topic)
	if err != nil {
		c.log.Warn("cannot list offsets to warm the dedupe window; starting at the committed offsets", "err", err)
		return offsets, nil
	}
	for p, sp := range found {
		lo, ok := listed.Lookup(c.opts.Topic, p)
		if !ok || lo.Err != nil || lo.Offset < 0 || lo.Offset >= sp.committed {
			continue
		}
		found[p] = startPos{committed: sp.committed, warmUntil: sp.committed}
		parts[p] = kgo.NewOffset().At(lo.Offset)
		c.log.Info("warming dedupe window", "partition", p, "from", lo.Offset, "committed", sp.committed)
	}
	return offsets, nil
}

// startPos is where adjustOffsets started a partition.
type startPos struct {
	committed int64 // offset committed to Kafka for the group
	warmUntil int64 // records below only warm the dedupe window (0: none)
}

// onRevoked lands everything (eager rebalancing revokes every partition) and
// commits, then forgets the partitions. If landing does not finish in time the
// state is dropped: the next owner replays from the committed offsets, and the
// landing marks keep that exact.
func (c *Consumer) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	<-c.ready
	c.rebalanceWaiting.Store(false) // the rebalance is happening
	ids := revoked[c.opts.Topic]
	if len(ids) == 0 {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, c.opts.FlushTimeoutOnRebalance)
	defer cancel()
	if err := c.flush(fctx); err != nil {
		c.log.Warn("partitions revoked before their state landed; dropping it for the next owner to replay", "partitions", ids, "err", err)
		c.m.abandoned.Inc()
	}
	c.forget(ids)
	c.log.Info("partitions revoked", "partitions", ids)
}

// onLost forgets partitions without committing: another member owns them.
func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	<-c.ready
	ids := lost[c.opts.Topic]
	if len(ids) == 0 {
		return
	}
	c.log.Warn("partitions lost; dropping unlanded state for the next owner to replay", "partitions", ids)
	c.forget(ids)
}

func (c *Consumer) forget(ids []int32) {
	c.sink.Drop(ids)
	for _, p := range ids {
		delete(c.parts, p)
		c.m.lag.DeleteLabelValues(strconv.Itoa(int(p)))
	}
	c.m.owned.Set(float64(len(c.parts)))
}

// Run consumes until ctx ends, then lands what it holds, commits and leaves
// the group. It returns nil on a clean shutdown.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.cl.Close()
	c.lastFlush.Store(c.opts.Now().UnixNano())
	for {
		// Poll no longer than until the next flush is due, so windows land
		// on time even when no record arrives.
		wait := c.opts.FlushInterval - c.sinceFlush()
		pctx, pcancel := context.WithTimeout(ctx, max(wait, 10*time.Millisecond))
		fetches := c.cl.PollRecords(pctx, c.opts.MaxPollRecords)
		pcancel()
		// From here until AllowRebalance no partition callback runs. Every
		// exit keeps it that way through the shutdown flush below.
		if ctx.Err() != nil {
			break
		}
		if err := c.prepare(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			// A rebalance waits and ClickHouse does not answer: let it
			// happen. The records of unprepared partitions are not
			// processed; the rebalance hands them out again from the
			// committed offsets.
			c.log.Warn("letting a rebalance proceed before the landing state of new partitions could be loaded", "err", err)
		}
		if n := fetches.NumRecords(); n > 0 {
			c.log.Debug("polled", "records", n)
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				c.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			st := c.parts[fp.Partition]
			if st == nil || !st.assigned {
				return // revoked meanwhile, or not prepared: read again after the rebalance
			}
			for _, r := range fp.Records {
				c.process(st, r)
			}
			if len(fp.Records) > 0 {
				c.m.lag.WithLabelValues(strconv.Itoa(int(fp.Partition))).Set(float64(fp.HighWatermark - 1 - st.consumed))
			}
		})
		if c.sinceFlush() >= c.opts.FlushInterval || c.sink.Windows() >= c.opts.MaxWindows || c.rebalanceWaiting.Load() {
			if err := c.flushOrAbandon(ctx); err != nil && ctx.Err() != nil {
				break
			}
		}
		c.cl.AllowRebalance()
	}
	// Rebalances are still blocked (the last poll was not released), so the
	// revoke callback cannot flush concurrently with this one.
	defer c.cl.AllowRebalance()
	// Shutdown: land and commit with a fresh deadline, then leave the group.
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.flush(sctx); err != nil {
		c.log.Error("shutdown: cannot land the last windows; they will be replayed from Kafka on restart", "err", err)
		return fmt.Errorf("cannot land the last windows on shutdown: %w", err)
	}
	c.log.Info("shutdown: landed and committed")
	return nil
}

// prepare has the Sink load the state of partitions assigned since the last
// poll, retrying while ClickHouse fails.
func (c *Consumer) prepare(ctx context.Context) error {
	c.adjMu.Lock()
	for p, sp := range c.adjusted {
		if st := c.parts[p]; st != nil {
			st.committed, st.warmUntil = sp.committed, sp.warmUntil
		}
		delete(c.adjusted, p)
	}
	c.adjMu.Unlock()
	var ids []int32
	for p, st := range c.parts {
		if !st.assigned {
			ids = append(ids, p)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	backoff := 200 * time.Millisecond
	for {
		err := c.sink.Assign(ctx, ids)
		if err == nil {
			break
		}
		if c.rebalanceWaiting.Load() {
			return fmt.Errorf("cannot load landing state of partitions %v: %w", ids, err)
		}
		c.log.Warn("cannot load landing state of assigned partitions; retrying", "partitions", ids, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	for _, p := range ids {
		c.parts[p].assigned = true
	}
	return nil
}

// flushOrAbandon flushes; if a rebalance is waiting and landing does not
// finish within FlushTimeoutOnRebalance, it drops the unlanded state and
// rewinds the partitions to their committed offsets so nothing is lost.
func (c *Consumer) flushOrAbandon(ctx context.Context) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		var since time.Time
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if c.rebalanceWaiting.Load() {
					if since.IsZero() {
						since = time.Now()
					} else if time.Since(since) > c.opts.FlushTimeoutOnRebalance {
						cancel()
						return
					}
				}
			}
		}
	}()
	err := c.flush(fctx)
	close(done)
	c.rebalanceWaiting.Store(false)
	if err == nil || ctx.Err() != nil {
		return err
	}
	c.log.Warn("cannot land while a rebalance waits: dropping unlanded state and rewinding to the committed offsets", "err", err)
	c.m.abandoned.Inc()
	ids := make([]int32, 0, len(c.parts))
	rewind := map[int32]kgo.EpochOffset{}
	for p, st := range c.parts {
		ids = append(ids, p)
		off := st.committed
		if off < 0 {
			off = 0
		}
		rewind[p] = kgo.EpochOffset{Epoch: -1, Offset: off}
		st.assigned = false
		st.consumed = -1
		st.warmUntil = 0
		if st.dedupe != nil {
			// The replay re-reads records this window already holds: a
			// stale window would drop them as duplicates. Duplicates of
			// records before the committed offset are not recognised
			// after such a rewind (a rare path: see docs/design.md).
			st.dedupe = newDedupe(c.opts.DedupeWindow, c.opts.DedupeMaxIDs, c.seeds)
		}
	}
	c.sink.Drop(ids)
	c.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{c.opts.Topic: rewind})
	return err
}

// flush lands the Sink's windows, waits for the DLQ records, then commits
// the consumed offsets.
func (c *Consumer) sinceFlush() time.Duration {
	return c.opts.Now().Sub(time.Unix(0, c.lastFlush.Load()))
}

func (c *Consumer) flush(ctx context.Context) error {
	c.lastFlush.Store(c.opts.Now().UnixNano())
	c.m.windows.Set(float64(c.sink.Windows()))
	ids := 0
	for _, st := range c.parts {
		if st.dedupe == nil {
			continue
		}
		ids += st.dedupe.size()
		if d := st.dedupe.evicted - st.evicted; d > 0 {
			c.m.dedupeEvict.Add(float64(d))
			st.evicted = st.dedupe.evicted
		}
	}
	c.m.dedupeIDs.Set(float64(ids))
	if err := c.sink.Flush(ctx); err != nil {
		return err
	}
	if err := c.waitDLQ(ctx); err != nil {
		return err
	}
	commit := map[int32]kgo.EpochOffset{}
	for p, st := range c.parts {
		if st.consumed < 0 || st.consumed+1 <= st.committed {
			continue
		}
		commit[p] = kgo.EpochOffset{Epoch: -1, Offset: st.consumed + 1}
	}
	if len(commit) == 0 {
		return nil
	}
	var cerr error
	c.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{c.opts.Topic: commit},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
						cerr = fmt.Errorf("partition %d: %w", p.Partition, e)
					}
				}
			}
		})
	if cerr != nil {
		// Not fatal: the data landed; a later commit or the landing marks
		// cover these records on replay.
		c.log.Warn("cannot commit offsets (landed data is safe; replay will skip it)", "err", cerr)
		c.m.commitErrors.Inc()
		return nil
	}
	for p, eo := range commit {
		if st := c.parts[p]; st != nil {
			st.committed = eo.Offset
		}
	}
	return nil
}

// process handles one record.
func (c *Consumer) process(st *partState, r *kgo.Record) {
	if r.Offset <= st.consumed {
		return
	}
	warm := r.Offset < st.warmUntil
	c.setAgeBounds()
	defer c.countIn()
	ct := contentType(r)
	if !warm {
		c.m.record(ct)
	}
	switch ct {
	case schemas.ContentTypeJSON:
		if err := c.json.Decode(r.Value, &c.ev); err != nil {
			if !warm {
				c.dlq(r, reasonInvalid, err.Error(), nil)
			}
			break
		}
		if reason, msg := c.checkAge(&c.ev); reason != "" {
			if !warm {
				c.dlq(r, reason, msg, nil)
			}
			break
		}
		c.accept(st, r, &c.ev, warm)
	case schemas.ContentTypeArrow:
		var bad []string
		var badRows []string
		next := 0 // index of the row fn or onInvalid sees next (each row once, in order)
		err := c.arrow.Decode(r.Value, func(e schemas.Event) error {
			row := next
			next++
			// Copy into the Consumer's event: taking &e would move every
			// row to the heap (the Sink is an interface).
			c.ev = e
			if reason, msg := c.checkAge(&c.ev); reason != "" {
				bad = append(bad, "row "+strconv.Itoa(row)+": "+reason+": "+msg)
				badRows = append(badRows, strconv.Itoa(row))
				return nil
			}
			c.accept(st, r, &c.ev, warm)
			return nil
		}, func(row int, err error) {
			next = row + 1
			bad = append(bad, err.Error())
			badRows = append(badRows, strconv.Itoa(row))
		})
		if warm {
			break
		}
		if err != nil {
			c.dlq(r, reasonInvalid, err.Error(), nil)
		} else if len(bad) > 0 {
			c.dlq(r, reasonInvalidRows, strings.Join(bad, "; "), badRows)
		}
	default:
		if !warm {
			c.dlq(r, reasonContentType, fmt.Sprintf("unsupported content-type %q: want %q or %q", ct, schemas.ContentTypeJSON, schemas.ContentTypeArrow), nil)
		}
	}
	st.consumed = r.Offset
}

// accept dedupes e and hands it to the Sink.
func (c *Consumer) accept(st *partState, r *kgo.Record, e *schemas.Event, warm bool) {
	if st.dedupe != nil && st.dedupe.seen(e.EventID, e.Timestamp) {
		if !warm {
			c.m.duplicates.Inc()
		}
		return
	}
	if warm {
		return
	}
	c.in++
	c.sink.Add(r.Partition, r.Offset, e)
}

// countIn moves the events accepted from one record to the metric (one
// atomic add per record, not per event).
func (c *Consumer) countIn() {
	if c.in > 0 {
		c.m.eventsIn.Add(float64(c.in))
		c.in = 0
	}
}

// setAgeBounds reads the clock once per record: events must fall within
// [now − MaxEventAge, now + MaxFuture].
func (c *Consumer) setAgeBounds() {
	c.now = c.opts.Now()
	c.oldest = c.now.Add(-c.opts.MaxEventAge).UnixNano()
	c.newest = c.now.Add(c.opts.MaxFuture).UnixNano()
}

func (c *Consumer) checkAge(e *schemas.Event) (reason, msg string) {
	if ts := e.Timestamp.UnixNano(); ts >= c.oldest && ts <= c.newest {
		return "", ""
	}
	now := c.now
	if age := now.Sub(e.Timestamp); age > c.opts.MaxEventAge {
		return reasonTooOld, fmt.Sprintf("event %q at %s is %s old, beyond --max-event-age %s",
			e.EventID, e.Timestamp.Format(time.RFC3339), age.Truncate(time.Second), c.opts.MaxEventAge)
	}
	if ahead := e.Timestamp.Sub(now); ahead > c.opts.MaxFuture {
		return reasonFuture, fmt.Sprintf("event %q at %s is %s in the future, beyond --max-future %s",
			e.EventID, e.Timestamp.Format(time.RFC3339), ahead.Truncate(time.Second), c.opts.MaxFuture)
	}
	return "", ""
}

func contentType(r *kgo.Record) string {
	for _, h := range r.Headers {
		if strings.EqualFold(h.Key, schemas.HeaderContentType) {
			// The exact spellings producers send: compared without
			// converting (no allocation per record).
			switch string(h.Value) {
			case schemas.ContentTypeJSON:
				return schemas.ContentTypeJSON
			case schemas.ContentTypeArrow:
				return schemas.ContentTypeArrow
			}
			v := strings.TrimSpace(string(h.Value))
			if i := strings.IndexByte(v, ';'); i >= 0 {
				v = strings.TrimSpace(v[:i])
			}
			if v == "" {
				return schemas.ContentTypeJSON
			}
			return strings.ToLower(v)
		}
	}
	return schemas.ContentTypeJSON
}
