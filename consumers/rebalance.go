package consumers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startPos is where adjustOffsets started a partition.
type startPos struct {
	committed int64 // offset committed to Kafka for the group
	warmUntil int64 // records below only warm the dedupe window (0: none)
	reuse     *retainedWindow
}

// retainedWindow is the dedupe window of a partition revoked with everything
// it read landed and committed.
type retainedWindow struct {
	next     int64 // the committed offset when it was revoked
	lastTime int64 // Kafka timestamp (unix ms) of the record before next
	dedupe   *dedupe
	evicted  uint64
}

// onCallbackBlocked records when a rebalance began waiting for the poll
// loop: every wait that blocks it counts from there.
func (c *Consumer) onCallbackBlocked(context.Context, *kgo.Client) {
	c.rebalanceSince.CompareAndSwap(0, c.opts.Now().UnixNano())
}

// rebalanceBegan returns when the current rebalance began (now if the poll
// loop did not block it) and marks it as handled.
func (c *Consumer) rebalanceBegan() time.Time {
	if since := c.rebalanceSince.Swap(0); since != 0 {
		return time.Unix(0, since)
	}
	return c.opts.Now()
}

// onAssigned registers new partitions; the poll loop prepares them.
func (c *Consumer) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	<-c.ready
	c.rebalanceBegan() // the rebalance is happening
	c.health.join(c.opts.Now())
	c.last.set(assigned)
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
	c.m.setAssigned(len(c.parts))
}

// adjustOffsets starts each new partition early enough to warm its dedupe
// window: at the first record that arrived within DedupeWindow before the
// last committed record (Kafka timestamps, read from the commit's metadata),
// so a group that lags far behind warms the window it will need, not the one
// before now. A partition that comes back with the window it was revoked
// with (same committed offset) keeps that window and reads nothing twice.
func (c *Consumer) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	<-c.ready
	// This runs on franz-go's offset-fetch goroutine, which polls do not
	// block: results go through c.adjusted and the poll goroutine applies
	// them (prepare) before it processes any record of these partitions.
	parts := offsets[c.opts.Topic]
	found := make(map[int32]startPos, len(parts))
	need := map[int32]int64{} // partition → committed offset, for warm-up
	c.adjMu.Lock()
	for p, off := range parts {
		committed := off.EpochOffset().Offset
		r, kept := c.retained[p]
		delete(c.retained, p)
		switch {
		case committed < 0:
			continue
		case kept && r.next == committed:
			found[p] = startPos{committed: committed, reuse: &r}
			c.log.Info("partition came back with its dedupe window", "partition", p, "committed", committed)
		default:
			found[p] = startPos{committed: committed}
			if committed > 0 && c.opts.DedupeWindow > 0 {
				need[p] = committed
			}
		}
	}
	c.adjMu.Unlock()
	defer func() {
		c.adjMu.Lock()
		for p, sp := range found {
			c.adjusted[p] = sp
		}
		c.adjMu.Unlock()
	}()
	if len(need) == 0 {
		return offsets, nil
	}
	// ctx ends when the next rebalance begins; the bound keeps a slow
	// broker from holding these partitions unread.
	wctx, cancel := context.WithTimeout(ctx, warmLookupTimeout)
	defer cancel()
	starts, err := c.warmStarts(wctx, need)
	if err != nil {
		c.m.warmErrors.Inc()
		c.log.Warn("cannot find where to warm the dedupe window; starting at the committed offsets (duplicates of records before them are not recognised)", "err", err)
		return offsets, nil
	}
	for p, from := range starts {
		committed := need[p]
		if from < 0 || from >= committed {
			continue
		}
		found[p] = startPos{committed: committed, warmUntil: committed}
		parts[p] = kgo.NewOffset().At(from)
		c.log.Info("warming dedupe window", "partition", p, "from", from, "committed", committed)
	}
	return offsets, nil
}

// warmLookupTimeout bounds adjustOffsets' Kafka calls (the group's
// committed offsets and ListOffsets by time); past it the partitions start at
// their committed offsets without warming.
const warmLookupTimeout = 10 * time.Second

// commitMetaPrefix starts the metadata of costpipe's offset commits; the
// rest is the Kafka timestamp (unix ms) of the last committed record.
const commitMetaPrefix = "costpipe/1 t="

func commitMeta(lastTime int64) string { return commitMetaPrefix + strconv.FormatInt(lastTime, 10) }

func parseCommitMeta(s string) (int64, bool) {
	rest, ok := strings.CutPrefix(s, commitMetaPrefix)
	if !ok {
		return 0, false
	}
	ms, err := strconv.ParseInt(rest, 10, 64)
	return ms, err == nil && ms >= 0
}

// warmStarts returns, per partition, the first offset whose record arrived
// within DedupeWindow before the record preceding the committed offset. The
// time of that record comes from the commit's metadata; commits without it
// (another tool, an older costpipe) fall back to the clock.
func (c *Consumer) warmStarts(ctx context.Context, committed map[int32]int64) (map[int32]int64, error) {
	fetched, err := c.adm.FetchOffsets(ctx, c.opts.Group)
	if err == nil {
		err = fetched.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("cannot fetch the group's committed offsets: %w", err)
	}
	window := c.opts.DedupeWindow.Milliseconds()
	since := make(map[int32]int64, len(committed))
	for p, off := range committed {
		o, ok := fetched.Lookup(c.opts.Topic, p)
		ms, known := parseCommitMeta(o.Metadata)
		if !ok || o.At != off || !known {
			ms = c.opts.Now().UnixMilli()
			c.log.Info("committed offset carries no record time; warming the dedupe window from the clock", "partition", p, "committed", off)
		}
		since[p] = ms - window
	}
	return c.listOffsetsAfter(ctx, since)
}

// listOffsetsAfter asks Kafka, per partition, for the first offset whose
// timestamp is at or after the given unix milliseconds (-1: none).
func (c *Consumer) listOffsetsAfter(ctx context.Context, since map[int32]int64) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = c.opts.Topic
	for p, ms := range since {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = max(ms, 0)
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	out := make(map[int32]int64, len(since))
	for _, shard := range c.cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			return nil, fmt.Errorf("cannot list offsets by time: %w", shard.Err)
		}
		resp := shard.Resp.(*kmsg.ListOffsetsResponse)
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("cannot list offsets by time of partition %d: %w", p.Partition, err)
				}
				out[p.Partition] = p.Offset
			}
		}
	}
	return out, nil
}

// onRevoked lands everything (eager rebalancing revokes every partition) and
// commits, keeps the dedupe windows of fully committed partitions in case
// they come back, then forgets the partitions. Landing gets until
// FlushTimeoutOnRebalance after the rebalance began; after that, or if the
// member is out of the group, the state is dropped: the next owner replays
// from the committed offsets, and the landing marks keep that exact.
func (c *Consumer) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	<-c.ready
	began := c.rebalanceBegan()
	c.health.leave(c.opts.Now()) // eager: every rebalance revokes, so this is where one begins
	ids := revoked[c.opts.Topic]
	if len(ids) == 0 {
		return
	}
	waited := c.opts.Now().Sub(began)
	if waited >= c.opts.RebalanceTimeout {
		c.log.Warn("partitions revoked after the rebalance timeout: the group has moved on, dropping unlanded state for the next owner to replay",
			"partitions", ids, "waited", waited.Round(time.Millisecond))
		c.m.abandoned.Inc()
		c.forget(ids)
		return
	}
	// During the shutdown, landing shares the shutdown's budget, and a
	// landing the shutdown could not do is not tried again here: it would
	// only hold the stop up (ClickHouse unreachable). Nothing is lost: the
	// offsets of what did not land are not committed.
	var sd *stopClock
	if sd = c.stop.Load(); sd != nil && sd.isStopping() {
		if err := sd.failure(); err != nil {
			c.log.Info("partitions revoked without landing: the shutdown could not land them; their events are read again from Kafka at the next start",
				"partitions", ids)
			c.forget(ids)
			return
		}
		ctx = sd.land
	} else {
		sd = nil
	}
	fctx, cancel := context.WithTimeout(ctx, c.opts.FlushTimeoutOnRebalance-waited)
	defer cancel()
	err := c.flush(fctx)
	if err != nil && !errors.Is(err, errFenced) && sd != nil {
		sd.fail(err)
	}
	if errors.Is(err, errFenced) {
		// Landed, but the group had moved on: the next owner's replay skips
		// what landed (the landing marks), nothing is retained.
		c.log.Warn("partitions revoked after the group moved on; their state landed but the commit was refused", "partitions", ids, "err", err)
		c.m.fenced.Inc()
		c.forget(ids)
		return
	} else if errors.As(err, new(*dlqHeldError)) {
		// Landed, committed up to the first DLQ record neither Kafka nor
		// the spool took: the next owner reads from there and makes the
		// DLQ copies; this member forgets its own.
		c.log.Warn("partitions revoked with DLQ records not confirmed; the next owner reads them again from the last commit", "partitions", ids, "err", err)
		c.dropHeld(ids)
		c.forget(ids)
		return
	} else if err != nil {
		c.log.Warn("partitions revoked before their state landed; dropping it for the next owner to replay", "partitions", ids, "err", err)
		c.m.abandoned.Inc()
		c.forget(ids)
		return
	}
	c.retain(ids)
	c.forget(ids)
	c.log.Info("partitions revoked", "partitions", ids)
}

// retain keeps the dedupe windows of partitions whose every read record is
// landed and committed.
func (c *Consumer) retain(ids []int32) {
	c.adjMu.Lock()
	defer c.adjMu.Unlock()
	for _, p := range ids {
		st := c.parts[p]
		if st == nil || !st.assigned || st.dedupe == nil || st.consumed < 0 || st.consumed+1 != st.committed {
			delete(c.retained, p)
			continue
		}
		c.retained[p] = retainedWindow{next: st.committed, lastTime: st.lastTime, dedupe: st.dedupe, evicted: st.evicted}
	}
}

// onLost forgets partitions without committing: another member owns them.
func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	<-c.ready
	c.rebalanceBegan()
	c.health.leave(c.opts.Now())
	c.last.clear() // another member owns them in a newer generation
	ids := lost[c.opts.Topic]
	if len(ids) == 0 {
		return
	}
	c.log.Warn("partitions lost; dropping unlanded state for the next owner to replay", "partitions", ids)
	c.m.lost.Inc()
	c.forget(ids)
}

func (c *Consumer) forget(ids []int32) {
	c.sink.Drop(ids)
	for _, p := range ids {
		delete(c.parts, p)
		c.m.lag.DeleteLabelValues(strconv.Itoa(int(p)))
	}
	c.m.setAssigned(len(c.parts))
}

// prepare has the Sink load the state of partitions assigned since the last
// poll, retrying while ClickHouse fails. It gives up when a rebalance waits.
func (c *Consumer) prepare(ctx context.Context) error {
	c.adjMu.Lock()
	for p, sp := range c.adjusted {
		if st := c.parts[p]; st != nil {
			st.committed, st.warmUntil = sp.committed, sp.warmUntil
			if sp.reuse != nil {
				st.dedupe, st.evicted, st.lastTime = sp.reuse.dedupe, sp.reuse.evicted, sp.reuse.lastTime
			}
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
	// A rebalance that waits revokes these partitions anyway (eager):
	// loading their state must not hold it up.
	actx, cancel := c.untilRebalance(ctx, 0)
	defer cancel()
	backoff := 200 * time.Millisecond
	for {
		err := c.assignOnce(actx, ids)
		if err == nil {
			break
		}
		if c.rebalanceSince.Load() != 0 {
			return fmt.Errorf("cannot load landing state of partitions %v: %w", ids, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cannot load landing state of partitions %v: %w", ids, err)
		}
		c.assignFailed(ids, backoff, err)
		if err := c.sleepUnlessRebalance(ctx, backoff); err != nil {
			return fmt.Errorf("cannot load landing state of partitions %v: %w", ids, err)
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	for _, p := range ids {
		c.parts[p].assigned = true
	}
	c.checkMarksAgainstLog(actx, ids)
	if since, attempts, failing := c.assignFailing.Succeed(); failing {
		c.log.Info("landing state of assigned partitions loaded again", "partitions", ids,
			"failing_for", c.opts.Now().Sub(since).Round(time.Millisecond), "failed_attempts", attempts)
	}
	return nil
}

// landingLogEvery is how often at most the failures to load the landing
// state of one outage are logged: the first at once, then one line with
// how many failed since the line before (the retries' backoff alone
// allowed one every 10 s).
const landingLogEvery = time.Minute

// assignFailed counts a failed Sink.Assign of ids and logs it when due.
func (c *Consumer) assignFailed(ids []int32, retryIn time.Duration, err error) {
	now := c.opts.Now()
	if n, since, due := c.assignFailing.Fail(now, landingLogEvery); due {
		c.log.Warn("cannot load landing state of assigned partitions; retrying", "partitions", ids, "retry_in", retryIn,
			"failures", n, "failing_for", now.Sub(since).Round(time.Millisecond), "err", err)
	}
}

// LandedReporter is implemented by a Sink that can say how far a
// partition has landed: the highest offset ClickHouse's landing marks hold
// for it (ok false: none).
type LandedReporter interface {
	LandedThrough(partition int32) (offset int64, ok bool)
}

// checkMarksAgainstLog logs an error for each of ids whose landing marks
// reach past the end of its log: the topic was recreated or truncated (an
// in-memory `costpipe broker` restarted, a topic deleted and created again,
// an unclean leader election), and every record below the marks would be
// skipped as already landed, silently. It only warns: marks above a log
// that another cluster holds may be right. A failure to read the offsets is
// logged at debug level and the check skipped.
func (c *Consumer) checkMarksAgainstLog(ctx context.Context, ids []int32) {
	lr, ok := c.sink.(LandedReporter)
	if !ok || c.adm == nil {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ends, err := c.adm.ListEndOffsets(lctx, c.opts.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		c.log.Debug("cannot compare the landing marks with the log end offsets", "topic", c.opts.Topic, "err", err)
		return
	}
	for _, p := range ids {
		mark, ok := lr.LandedThrough(p)
		end, found := ends.Lookup(c.opts.Topic, p)
		if !ok || !found || mark < end.Offset {
			continue
		}
		c.m.marksAhead.Inc()
		c.log.Error("ClickHouse holds landing marks past the end of this partition's log: the topic was recreated or truncated (an in-memory costpipe broker restarted?); "+
			"records at offsets up to the mark are skipped as already landed. Use a new topic or database (docs/operations.md, \"Landing marks ahead of the log\")",
			"topic", c.opts.Topic, "partition", p, "log_end", end.Offset, "landed_through", mark)
	}
}

// assignAttemptTimeout bounds one Sink.Assign (a ClickHouse query that
// hangs is retried rather than waited for).
const assignAttemptTimeout = 30 * time.Second

func (c *Consumer) assignOnce(ctx context.Context, ids []int32) error {
	actx, cancel := context.WithTimeout(ctx, assignAttemptTimeout)
	defer cancel()
	return c.sink.Assign(actx, ids)
}

// errRebalanceWaiting ends a wait that would block a rebalance.
var errRebalanceWaiting = errors.New("a rebalance is waiting")

// sleepUnlessRebalance sleeps for d, or less when ctx ends or a rebalance
// begins waiting for the poll loop.
func (c *Consumer) sleepUnlessRebalance(ctx context.Context, d time.Duration) error {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return nil
		case <-tick.C:
			if c.rebalanceSince.Load() != 0 {
				return errRebalanceWaiting
			}
		}
	}
}
