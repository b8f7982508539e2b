package consumers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errFenced reports that the group coordinator no longer knows this member
// or its generation: its partitions may already belong to another member.
var errFenced = errors.New("no longer a member of the group's current generation")

// flushOrAbandon flushes within land (which ends with the shutdown's budget,
// not when ctx, Run's, ends: a flush under way at a SIGTERM goes on landing).
// If a rebalance waits and landing does not finish within
// FlushTimeoutOnRebalance of when the rebalance began, it drops the
// unlanded state and rewinds the partitions so that nothing is lost (unless
// ctx has ended: the shutdown follows). If the commit shows the member was
// fenced, it stops landing for its partitions and rejoins the group. DLQ
// records that neither Kafka nor the spool took (a *dlqHeldError) drop
// nothing: the windows landed, offsets were committed up to the first of
// them, and the next flushes retry the spool.
func (c *Consumer) flushOrAbandon(ctx, land context.Context) error {
	fctx, cancel := c.untilRebalance(land, c.opts.FlushTimeoutOnRebalance)
	defer cancel()
	err := c.flush(fctx)
	switch {
	case ctx.Err() != nil:
		return err
	case err == nil, errors.As(err, new(*dlqHeldError)):
		c.lastLanded.Store(c.opts.Now().UnixNano()) // the windows landed
		c.rereadDropped(ctx)
		return err
	case errors.Is(err, errFenced):
		c.fence(err)
		return err
	}
	c.log.Warn("cannot land while a rebalance waits: dropping unlanded state and rewinding to the committed offsets", "err", err)
	c.m.abandoned.Inc()
	c.rewind(ctx)
	return err
}

// untilRebalance returns a context that ends with ctx, or once a rebalance
// has waited for the poll loop for grace (counted from when it began
// waiting). When one waits already, the context carries that moment as its
// deadline, which also bounds a ClickHouse insert in flight (the Sink lets
// an insert run to its own timeout when merely cancelled). cancel releases
// it.
func (c *Consumer) untilRebalance(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	var rctx context.Context
	var cancel context.CancelFunc
	if since := c.rebalanceSince.Load(); since != 0 {
		left := grace - c.opts.Now().Sub(time.Unix(0, since))
		rctx, cancel = context.WithTimeout(ctx, max(left, 0))
	} else {
		rctx, cancel = context.WithCancel(ctx)
	}
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				if since := c.rebalanceSince.Load(); since != 0 && c.opts.Now().Sub(time.Unix(0, since)) >= grace {
					cancel()
					return
				}
			}
		}
	}()
	return rctx, cancel
}

// fence stops landing for every partition (their unlanded state is dropped:
// the owner replays it) and asks the group for a new assignment.
func (c *Consumer) fence(err error) {
	ids := make([]int32, 0, len(c.parts))
	for p := range c.parts {
		ids = append(ids, p)
	}
	c.log.Warn("fenced out of the consumer group: dropping unlanded state and rejoining", "partitions", ids, "err", err)
	c.m.fenced.Inc()
	c.health.leave(c.opts.Now())
	c.last.clear()
	c.forget(ids)
	c.cl.ForceRebalance()
}

// rewind drops the Sink's unlanded state and seeks every partition back to
// where a fresh assignment would start (warming the dedupe window first), so
// the dropped records are read and aggregated again.
func (c *Consumer) rewind(ctx context.Context) {
	ids := make([]int32, 0, len(c.parts))
	need := map[int32]int64{}
	for p, st := range c.parts {
		ids = append(ids, p)
		if st.committed > 0 && c.opts.DedupeWindow > 0 {
			need[p] = st.committed
		}
	}
	c.sink.Drop(ids)
	var starts map[int32]int64
	if len(need) > 0 {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err error
		if starts, err = c.warmStarts(lctx, need); err != nil {
			c.m.warmErrors.Inc()
			c.log.Warn("cannot find where to warm the dedupe window after a rewind; duplicates of records before the committed offsets are not recognised", "err", err)
		}
		cancel()
	}
	seek := map[int32]kgo.EpochOffset{}
	for p, st := range c.parts {
		off := max(st.committed, 0)
		st.assigned, st.consumed, st.warmUntil, st.added = false, -1, 0, 0
		if from, ok := starts[p]; ok && from >= 0 && from < off {
			st.warmUntil = off
			off = from
		}
		if st.dedupe != nil {
			// The replay re-reads records this window already holds: a
			// stale window would drop them as duplicates.
			st.dedupe = newDedupe(c.opts.DedupeWindow, c.opts.DedupeMaxIDs, c.seeds)
		}
		seek[p] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	c.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{c.opts.Topic: seek})
}

// flush lands the Sink's windows, waits for the DLQ records, then commits
// the consumed offsets with the Kafka time of the last record (the next
// warm-up starts from it). A commit the coordinator refuses because the
// member or its generation is unknown returns errFenced. When DLQ records
// are held (neither Kafka nor the spool took them), it commits each
// partition only up to its first held record and returns the
// *dlqHeldError.
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
		return &sinkError{err}
	}
	for _, st := range c.parts {
		st.added = 0
	}
	held := c.waitDLQ(ctx)
	if held != nil && !errors.As(held, new(*dlqHeldError)) {
		return held
	}
	limits := c.held.commitLimits()
	commit := map[int32]commitPos{}
	for p, st := range c.parts {
		if st.consumed < 0 {
			continue
		}
		pos := commitPos{next: st.consumed + 1, lastTime: st.lastTime}
		if l, ok := limits[p]; ok && l.pos.off < pos.next {
			pos = commitPos{next: l.pos.off, lastTime: l.time}
		}
		if pos.next <= st.committed {
			continue
		}
		commit[p] = pos
	}
	if len(commit) == 0 {
		return held
	}
	if err := c.commit(ctx, commit); err != nil {
		if errors.Is(err, errFenced) {
			return err
		}
		// Not fatal: the data landed; a later commit or the landing marks
		// cover these records on replay.
		now := c.opts.Now()
		if n, since, due := c.commitFailing.Fail(now, landingLogEvery); due {
			c.log.Warn("cannot commit offsets (landed data is safe; replay will skip it)",
				"failures", n, "failing_for", now.Sub(since).Round(time.Millisecond), "err", err)
		}
		c.m.commitErrors.Inc()
		return held
	}
	if since, attempts, failing := c.commitFailing.Succeed(); failing {
		c.log.Info("offsets committed again", "failing_for", c.opts.Now().Sub(since).Round(time.Millisecond), "failed_commits", attempts)
	}
	for p, pos := range commit {
		c.parts[p].committed = pos.next
	}
	return held
}

// commitPos is what flush commits for a partition: the next offset to
// read, and the Kafka time (unix ms) of the record before it (of the held
// DLQ record itself when that limits the commit: close enough for the
// warm-up, which starts a dedupe window before it).
type commitPos struct {
	next, lastTime int64
}

// commit commits the offset next of each partition in the member's current
// generation, with commitMeta(lastTime) as the metadata.
func (c *Consumer) commit(ctx context.Context, parts map[int32]commitPos) error {
	if c.noCommit {
		return errors.New("not committed: the topic was replaced, and the old log's offsets would apply to the new one")
	}
	topicID, err := c.topicIDOf(ctx)
	if err != nil {
		return err
	}
	member, gen := c.cl.GroupMetadata()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = c.opts.Group
	req.MemberID = member
	req.Generation = gen
	if c.opts.InstanceID != "" {
		// A static member's commit names its instance: the coordinator
		// fences a commit from an instance another process took over.
		req.InstanceID = &c.opts.InstanceID
	}
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = c.opts.Topic // up to v9
	rt.TopicID = topicID    // v10 on
	for p, pos := range parts {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition = p
		rp.Offset = pos.next
		rp.LeaderEpoch = -1
		meta := commitMeta(pos.lastTime)
		rp.Metadata = &meta
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := c.cl.Request(ctx, req)
	if err != nil {
		return fmt.Errorf("cannot commit offsets of group %q: %w", c.opts.Group, err)
	}
	var first error
	for _, t := range resp.(*kmsg.OffsetCommitResponse).Topics {
		for _, p := range t.Partitions {
			err := kerr.ErrorForCode(p.ErrorCode)
			switch {
			case err == nil:
			case errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.FencedInstanceID):
				return fmt.Errorf("%w: commit of partition %d in generation %d: %w", errFenced, p.Partition, gen, err)
			case first == nil:
				// UNKNOWN_TOPIC_ID keeps the cached ID: a commit under
				// the ID of a topic created again would set the old log's
				// offsets for the new one.
				first = fmt.Errorf("cannot commit partition %d of group %q: %w", p.Partition, c.opts.Group, err)
			}
		}
	}
	return first
}

// topicIDOf returns the events topic's ID (OffsetCommit v10+ names topics by
// ID): the one its records were fetched under, else looked up; cached.
func (c *Consumer) topicIDOf(ctx context.Context) ([16]byte, error) {
	if c.topicID != nil {
		return *c.topicID, nil
	}
	if id := c.gone.fetchedID; id != ([16]byte{}) {
		c.topicID = &id
		return id, nil
	}
	td, err := c.adm.ListTopics(ctx, c.opts.Topic)
	if err != nil {
		return [16]byte{}, fmt.Errorf("cannot look up topic %q: %w", c.opts.Topic, err)
	}
	d, ok := td[c.opts.Topic]
	if !ok || d.Err != nil {
		return [16]byte{}, fmt.Errorf("cannot look up topic %q: %v", c.opts.Topic, d.Err)
	}
	id := [16]byte(d.ID)
	c.topicID = &id
	return id, nil
}
