// Package consumers owns the Kafka side of aggregation: a franz-go consumer
// group on the events topic, the partition lifecycle (assignment, revocation,
// loss, fencing), offset recovery, decoding (JSON or Arrow IPC by
// content-type), validation, event-age bounds, deduplication by event_id and
// the dead-letter queue. Valid, deduplicated events go to a Sink (the usage
// pipeline), which lands them; offsets are committed to Kafka only after the
// Sink has landed everything consumed before them.
//
// One goroutine (Run's) polls, processes and flushes; rebalances are blocked
// while it works (kgo.BlockRebalanceOnPoll), so partition callbacks never run
// concurrently with processing.
//
// A second goroutine (watchGroup) reads the whole group's lag every
// GroupLagInterval, whichever partitions this instance owns; with the
// instance's membership it decides readiness (Ready) and logs when the
// instance has been without an assignment or the group stalled.
//
// Files: options.go (Options), consumer.go (the Consumer and its loop),
// rebalance.go (assignment, warm-up, revoke, loss), flush.go (landing,
// committing, fencing), shutdown.go (the shutdown's single time budget),
// health.go (membership, stall and readiness),
// grouplag.go (the group lag watcher), record.go (one record: decode,
// validate, dedupe), dedupe.go (the window of event ids), dlq.go and
// spool.go (invalid records), metrics.go.
package consumers

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/loglimit"
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
	// Flush lands everything added. Cancelling ctx stops it between
	// inserts; ctx's deadline also bounds an insert in flight, and so does
	// ending ctx with the cause context.DeadlineExceeded (the shutdown's
	// budget, which begins after a flush may have). On error the state is
	// kept for a retry, or the consumer drops the partitions and replays
	// them.
	Flush(ctx context.Context) error
	// Drop forgets partitions and their unlanded state.
	Drop(partitions []int32)
	// Windows is the number of aggregation windows held in memory.
	Windows() int
}

// partState is the consumer's view of one owned partition.
type partState struct {
	assigned  bool  // the Sink has loaded its state
	warmUntil int64 // records below this offset only warm the dedupe window
	committed int64 // offset committed to Kafka (next to read), -1 unknown
	consumed  int64 // last offset processed, -1 none
	lastTime  int64 // Kafka timestamp (unix ms) of the record at consumed
	dedupe    *dedupe
	evicted   uint64 // dedupe.evicted already reported
	added     int64  // events handed to the Sink since its last landed flush
}

// Consumer consumes the events topic into a Sink.
type Consumer struct {
	opts   Options
	sink   Sink
	log    *slog.Logger
	m      *metrics
	health *health
	last   lastAssignment // what the sticky balancer claims on rejoin
	seeds  [2]maphash.Seed

	cl    *kgo.Client
	adm   *kadm.Client
	parts map[int32]*partState
	json  *schemas.Decoder
	arrow *arrowcodec.Decoder
	ev    schemas.Event
	// ahead is the look-ahead queue of deduped events (accept): aheadN
	// events from index aheadHead, empty between polls.
	ahead     [dedupeAhead]ahead
	aheadHead int
	aheadN    int
	spool     *spool
	// topicID caches the events topic's ID for offset commits; nil until
	// looked up. Used by the poll goroutine and the callbacks only.
	topicID *[16]byte

	dlqMu sync.Mutex
	// dlqPending counts DLQ records produced and not yet resolved.
	dlqPending int
	// dlqFailed are DLQ records franz-go gave up on; waitDLQ resends them.
	dlqFailed  []dlqFailure
	dlqLastErr error
	// dlqOpen are the source positions of the DLQ records not confirmed
	// yet (in flight, failed or held): one read again is not sent twice.
	dlqOpen map[dlqPos]struct{}
	// held are the DLQ records neither Kafka nor the spool took (dlq.go).
	held dlqHold
	// dlqLogs is, per DLQ reason, what noteDLQ has logged. Used by the
	// poll goroutine only.
	dlqLogs map[string]*loglimit.Limit
	// fetchLogs is, per error text, what processFetches has logged of the
	// fetch errors (at most maxFetchLogKeys texts; the rest share "").
	// Used by the poll goroutine only.
	fetchLogs map[string]*loglimit.Limit
	// gone follows the events topic's UNKNOWN_TOPIC_ID fetch errors
	// (topicgone.go). Used by the poll goroutine only.
	gone topicGone
	// noCommit, once set (the topic was replaced), makes commit refuse:
	// the old log's offsets must not be committed for the new topic.
	// Used by the poll goroutine only (the shutdown's flush included).
	noCommit bool

	lastFlush atomic.Int64 // unix nanoseconds (by opts.Now) of the last flush
	// lastLanded is when (unix nanoseconds, by opts.Now) the last flush
	// that landed its windows ended.
	lastLanded atomic.Int64
	// stop is Run's shutdown clock (shutdown.go); nil before Run.
	stop atomic.Pointer[stopClock]
	// assignFailing is the run of failed Sink.Assign calls since the last
	// that worked (prepare): their warnings are rate-limited.
	assignFailing loglimit.Failures
	// commitFailing is the run of failed offset commits since the last
	// that worked: their warnings are rate-limited (a topic recreated
	// under the group failed every flush's commit, one line each).
	commitFailing loglimit.Failures
	// rebalanceSince is when (unix nanoseconds by opts.Now) a rebalance
	// began waiting for the poll loop; 0 when none waits.
	rebalanceSince atomic.Int64
	// ready is closed once New has set cl and adm: franz-go may run the
	// group callbacks before NewClient returns.
	ready chan struct{}

	adjMu    sync.Mutex
	adjusted map[int32]startPos // from adjustOffsets, applied by prepare
	// retained are the dedupe windows of partitions revoked after landing
	// and committing everything: a partition that comes back with the same
	// committed offset keeps its window instead of re-reading it.
	retained map[int32]retainedWindow

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
	if err := CheckSpoolDir(opts.DLQSpoolDir); err != nil {
		return nil, err
	}
	c := &Consumer{opts: opts, sink: sink, log: opts.Logger, health: newHealth(opts),
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, parts: map[int32]*partState{},
		json: schemas.NewDecoder(), arrow: arrowcodec.NewDecoder(), ready: make(chan struct{}),
		adjusted: map[int32]startPos{}, retained: map[int32]retainedWindow{}, spool: newSpool(opts.DLQSpoolDir),
		gone: topicGone{after: topicGoneAfter, quiet: topicGoneQuiet}}
	c.m = newMetrics(opts.Registerer, c)
	kopts := []kgo.Opt{
		kgo.SeedBrokers(opts.Brokers...),
		kgo.ConsumerGroup(opts.Group),
		kgo.ConsumeTopics(opts.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		// Eager: a rebalance revokes everything, which we flush first;
		// sticky with our claim of what we owned (balancer.go).
		kgo.Balancers(newStickyBalancer(&c.last)),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		kgo.OnPartitionsCallbackBlocked(c.onCallbackBlocked),
		kgo.AdjustFetchOffsetsFn(c.adjustOffsets),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.SessionTimeout(opts.SessionTimeout),
		kgo.RebalanceTimeout(opts.RebalanceTimeout),
		kgo.HeartbeatInterval(opts.HeartbeatInterval),
		kgo.AllowAutoTopicCreation(), // the DLQ topic, where the cluster allows it
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.WithPools(new(recordPool)),
		kgo.WithHooks(&connLog{log: opts.Logger, now: opts.Now}),
	}
	if opts.InstanceID != "" {
		kopts = append(kopts, kgo.InstanceID(opts.InstanceID))
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

// Run consumes until ctx ends, then lands what it holds, commits and leaves
// the group (a static member stays: see Options.InstanceID). It returns nil
// on a clean shutdown, an error when what it held could not land (its
// offsets are not committed: the next start reads it again). The shutdown,
// from ctx's end to Run's return, takes at most Options.ShutdownTimeout (shutdown.go).
func (c *Consumer) Run(ctx context.Context) error {
	sd := newStopClock(ctx, c.opts.ShutdownTimeout)
	c.stop.Store(sd)
	defer sd.release() // after closeClient: the leave may still use the budget
	defer c.closeClient(sd)
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); c.watchGroup(wctx) }()
	defer func() { stopWatch(); <-watched }()
	c.lastFlush.Store(c.opts.Now().UnixNano())
	var failed error // a landing that failed after ctx ended
	var gone error   // the topic was deleted (and created again)
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
		fetches = c.groupSessionErrors(fetches)
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
		if idle := c.processFetches(fetches); idle {
			// Only errors: franz-go has them again at once (30,000 polls
			// a second, each a log line, once a topic was recreated).
			select {
			case <-ctx.Done():
			case <-time.After(fetchErrorPause):
			}
		}
		if gone = c.checkTopicGone(ctx); gone != nil {
			c.noCommit = true
			c.log.Error("stopping: the events topic was deleted", "topic", c.opts.Topic, "err", gone)
			break
		}
		if c.sinceFlush() >= c.opts.FlushInterval || c.sink.Windows() >= c.opts.MaxWindows || c.rebalanceSince.Load() != 0 {
			// A flush under way when ctx ends goes on landing within the
			// shutdown's budget (sd.land): it is the shutdown's landing.
			if err := c.flushOrAbandon(ctx, sd.land); err != nil && ctx.Err() != nil {
				if !errors.Is(err, errFenced) {
					failed = err
				}
				break
			}
		}
		c.cl.AllowRebalance()
	}
	return errors.Join(gone, c.shutdown(sd, failed))
}

// shutdown lands and commits, then leaves the group. Rebalances are still
// blocked (the last poll was not released), so the revoke callback cannot
// flush concurrently with this one. Landing gets what is left of the
// shutdown's budget (sd.land), or of FlushTimeoutOnRebalance when a
// rebalance waits for it (the other members wait too). failed is a landing
// that failed already after ctx ended (the budget is spent, or the
// rebalance's): it is not tried again, here nor in the revoke callback.
// Unlanded state is read again from Kafka by the partitions' next owner
// (its offsets are not committed). An insert that the cancellation
// interrupted is checked, not repeated blindly (the Sink's contract).
func (c *Consumer) shutdown(sd *stopClock, failed error) error {
	sd.begin()
	err := failed
	if err == nil {
		err = sd.failure() // the revoke callback of a last rebalance
	}
	if err == nil {
		fctx, stop := c.untilRebalance(sd.land, c.opts.FlushTimeoutOnRebalance)
		err = c.flush(fctx)
		stop()
	}
	switch {
	case errors.Is(err, errFenced):
		c.log.Warn("shutdown: landed, but the group had moved on; the next owner's replay skips what landed", "err", err)
		err = nil
	case err != nil:
		// Before the revoke callback can run: it must not land again.
		sd.fail(err)
		if errors.As(err, new(*sinkError)) {
			events, parts := c.unlanded()
			c.log.Error("shutdown: cannot land before stopping: ClickHouse unreachable; the events not landed will be read again from Kafka at the next start (offsets not committed)",
				"events", events, "partitions", parts, "after", time.Since(sd.began).Round(time.Millisecond), "err", err)
			err = fmt.Errorf("cannot land the last windows on shutdown (%d events, read again from Kafka at the next start): %w", events, err)
		} else {
			// The windows landed; the DLQ copies of invalid records are
			// neither in Kafka nor in the spool (waitDLQ, spoolHeld).
			c.log.Error("shutdown: DLQ records not confirmed (neither Kafka nor the --dlq-spool directory took them); offsets are not committed past them: they are read again from Kafka at the next start",
				"after", time.Since(sd.began).Round(time.Millisecond), "err", err)
			err = fmt.Errorf("DLQ records not confirmed on shutdown (offsets not committed past them; read again from Kafka at the next start): %w", err)
		}
	case c.noCommit:
		c.log.Warn("shutdown: landed; offsets not committed: the topic was replaced, and the old log's offsets would apply to the new topic")
	case c.commitFailing.Failing():
		c.log.Warn("shutdown: landed, but the offsets could not be committed; the next start skips what landed by the landing marks")
	default:
		c.log.Info("shutdown: landed and committed")
	}
	// Start the leave before releasing the rebalance: released first, the
	// group management loop could rejoin a rebalance in progress and the
	// group would rebalance twice (with us, then without us). Started first,
	// its cancellation reaches the loop while the loop runs the revoke
	// callback. A nil context only starts the leave; closeClient (deferred
	// by Run) waits for it, within the budget. A static member does not
	// leave (franz-go sends no LeaveGroup for it).
	c.cl.LeaveGroupContext(nil)
	c.cl.AllowRebalance()
	return err
}

// groupSessionErrors takes franz-go's group session errors (a failed join or
// sync, which it injects into a poll as a fetch error, ErrGroupSession) out of
// fetches and reports them as the group state they are, with how long this
// instance has been without an assignment. franz-go rejoins on its own
// after a backoff.
func (c *Consumer) groupSessionErrors(fetches kgo.Fetches) kgo.Fetches {
	var sess *kgo.ErrGroupSession
	found := false
	fetches.EachError(func(_ string, _ int32, err error) { found = found || errors.As(err, &sess) })
	if !found {
		return fetches
	}
	out := fetches[:0:0]
	for _, f := range fetches {
		var topics []kgo.FetchTopic
		for _, t := range f.Topics {
			var parts []kgo.FetchPartition
			for _, p := range t.Partitions {
				if p.Err != nil && errors.As(p.Err, &sess) {
					c.groupSessionFailed(sess)
					continue
				}
				parts = append(parts, p)
			}
			if len(parts) > 0 {
				t.Partitions = parts
				topics = append(topics, t)
			}
		}
		if len(topics) > 0 {
			f.Topics = topics
			out = append(out, f)
		}
	}
	return out
}

func (c *Consumer) groupSessionFailed(err *kgo.ErrGroupSession) {
	c.m.sessionErrors.Inc()
	out, logNow, suppressed := c.health.sessionFailed(c.opts.Now(), err.Err)
	if logNow {
		c.log.Warn("cannot join the consumer group; rejoining after a backoff", "group", c.opts.Group,
			"state", "unassigned", "for", out.Round(time.Millisecond), "suppressed", suppressed, "err", err.Err)
	}
}

func (c *Consumer) sinceFlush() time.Duration {
	return c.opts.Now().Sub(time.Unix(0, c.lastFlush.Load()))
}
