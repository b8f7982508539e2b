package consumers

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/loglimit"
	"github.com/costpipe/costpipe/schemas"
)

// fetchErrorPause is how long the poll loop waits after a poll that
// returned fetch errors and no record.
const fetchErrorPause = 100 * time.Millisecond

// maxFetchLogKeys bounds the error texts fetchLogs keeps a limiter for.
const maxFetchLogKeys = 32

// processFetches processes the records of prepared partitions and reports
// fetch errors, each text at most once a minute. idle reports a poll with
// errors and no record.
func (c *Consumer) processFetches(fetches kgo.Fetches) (idle bool) {
	errs := 0
	fetches.EachError(func(t string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		errs++
		now := c.opts.Now()
		gone := t == c.opts.Topic && errors.Is(err, kerr.UnknownTopicID)
		if gone {
			c.gone.note(now)
		}
		key := err.Error()
		if c.fetchLogs == nil {
			c.fetchLogs = map[string]*loglimit.Limit{}
		}
		l := c.fetchLogs[key]
		if l == nil {
			if len(c.fetchLogs) >= maxFetchLogKeys {
				key = ""
			}
			if l = c.fetchLogs[key]; l == nil {
				l = &loglimit.Limit{}
				c.fetchLogs[key] = l
			}
		}
		if n, prev, due := l.Note(now, time.Minute); due {
			args := []any{"topic", t, "partition", p, "err", err}
			if !prev.IsZero() {
				args = append(args, "errors_since_last_line", n, "last_line", prev.Format(time.RFC3339))
			}
			if gone {
				args = append(args, "hint", "the topic's ID is unknown: it may have been deleted (and created again); the aggregator checks, and stops if so")
			}
			c.log.Warn("fetch error", args...)
		}
	})
	records := 0
	for _, f := range fetches {
		for _, t := range f.Topics {
			if t.Topic == c.opts.Topic && t.TopicID != ([16]byte{}) {
				c.gone.fetchedID = t.TopicID
			}
			for _, p := range t.Partitions {
				records += len(p.Records)
			}
		}
	}
	idle = errs > 0 && records == 0

	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		st := c.parts[fp.Partition]
		if st == nil || !st.assigned {
			// Revoked meanwhile, or not prepared: read again after the
			// rebalance.
			for _, r := range fp.Records {
				r.Recycle()
			}
			return
		}
		c.setAgeBounds()
		for _, r := range fp.Records {
			c.process(st, r)
			// Nothing keeps the record: its slice goes back to the pool
			// when the batch's last record is recycled (the DLQ keeps the
			// key, value and headers, which are not pooled).
			r.Recycle()
		}
		// The events still in the look-ahead queue are the partition's
		// last: nothing waits beyond this poll (flushes, revokes and
		// commits run between polls and see every event added).
		c.drainAhead()
		c.countIn(st)
		if len(fp.Records) > 0 {
			c.m.lag.WithLabelValues(strconv.Itoa(int(fp.Partition))).Set(float64(fp.HighWatermark - 1 - st.consumed))
		}
	})
	return idle
}

// process handles one record, with the age bounds of the last setAgeBounds.
func (c *Consumer) process(st *partState, r *kgo.Record) {
	if r.Offset <= st.consumed {
		return
	}
	warm := r.Offset < st.warmUntil
	defer c.countIn(st)
	arrival := c.arrival(r)
	ct := contentType(r)
	if warm {
		c.m.warmRecords.Inc()
	} else {
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
		c.accept(st, r, &c.ev, arrival, warm)
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
			c.accept(st, r, &c.ev, arrival, warm)
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
	st.lastTime = r.Timestamp.UnixMilli()
}

// arrival is the record's arrival time in unix seconds for the dedupe
// window: its Kafka timestamp, but never beyond the clock plus MaxFuture (a
// producer with a clock far ahead must not expire the whole window).
func (c *Consumer) arrival(r *kgo.Record) int64 {
	at := r.Timestamp.Unix()
	if limit := c.newest / int64(time.Second); at > limit {
		return limit
	}
	return at
}

// accept dedupes e and hands it to the Sink, through the look-ahead queue
// when the partition dedupes: e is copied there, its id hashed and its
// dedupe memory prefetched, and the queue's oldest event is looked up and
// added once the queue is full (or drained at the end of the partition's
// records). Events leave the queue in the order they came, so the Sink sees
// the same events in the same order as without it.
func (c *Consumer) accept(st *partState, r *kgo.Record, e *schemas.Event, arrival int64, warm bool) {
	if st.dedupe == nil {
		if !warm {
			c.in++
			c.sink.Add(r.Partition, r.Offset, e)
		}
		return
	}
	if c.aheadN == len(c.ahead) {
		c.finishAhead()
	}
	p := &c.ahead[(c.aheadHead+c.aheadN)%len(c.ahead)]
	c.aheadN++
	p.st, p.partition, p.offset, p.arrival, p.warm = st, r.Partition, r.Offset, arrival, warm
	p.h = st.dedupe.hash(e.EventID)
	st.dedupe.prefetch(p.h)
	p.ev = *e
}

// dedupeAhead is how many deduped events wait in the look-ahead queue:
// enough to overlap their cache misses, few enough that the lines fetched
// for the oldest are still cached when it is looked up.
const dedupeAhead = 16

// ahead is an event waiting in the look-ahead queue (Consumer.accept).
type ahead struct {
	st        *partState
	partition int32
	offset    int64
	arrival   int64
	warm      bool
	h         idHash
	ev        schemas.Event
}

// finishAhead looks up the oldest event of the look-ahead queue and hands
// it to the Sink unless it is a duplicate.
func (c *Consumer) finishAhead() {
	p := &c.ahead[c.aheadHead]
	c.aheadHead = (c.aheadHead + 1) % len(c.ahead)
	c.aheadN--
	if p.st.dedupe.seenHash(p.h, p.arrival) {
		if !p.warm {
			c.m.duplicates.Inc()
		}
	} else if !p.warm {
		c.in++
		c.sink.Add(p.partition, p.offset, &p.ev)
	}
	// The slot keeps its event until it is reused: at most dedupeAhead
	// events' strings stay reachable, and clearing it would cost a write
	// of a whole event per event.
}

// drainAhead finishes every event of the look-ahead queue.
func (c *Consumer) drainAhead() {
	for c.aheadN > 0 {
		c.finishAhead()
	}
}

// countIn moves the events accepted from one record of st to the metric
// (one atomic add per record, not per event) and to st's events not landed.
func (c *Consumer) countIn(st *partState) {
	if c.in > 0 {
		c.m.eventsIn.Add(float64(c.in))
		st.added += int64(c.in)
		c.in = 0
	}
}

// setAgeBounds reads the clock, once per partition of a poll (a few
// milliseconds of records at most): events must fall within
// [now − MaxEventAge, now + MaxFuture]. process uses the bounds it set.
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
			e.EventID, e.Timestamp.Format(time.RFC3339), schemas.FormatAge(age), c.opts.MaxEventAge)
	}
	if ahead := e.Timestamp.Sub(now); ahead > c.opts.MaxFuture {
		return reasonFuture, fmt.Sprintf("event %q at %s is %s in the future, beyond --max-future %s",
			e.EventID, e.Timestamp.Format(time.RFC3339), schemas.FormatAge(ahead), c.opts.MaxFuture)
	}
	return "", ""
}

// contentType is the record's content type by its content-type header
// (schemas.ContentTypeOf; JSON when the header is missing).
func contentType(r *kgo.Record) string {
	for _, h := range r.Headers {
		// Producers write the header in lower case: compare exactly first.
		if h.Key == schemas.HeaderContentType || strings.EqualFold(h.Key, schemas.HeaderContentType) {
			return schemas.ContentTypeOf(h.Value)
		}
	}
	return schemas.ContentTypeJSON
}

// recordPool recycles franz-go's per-batch record slices (kgo.WithPools):
// catching up, they are a large share of what the consumer allocates. A
// slice's capacity is the batch's record count rounded up to a power of
// two (at least 8), one pool per capacity: a batch of a few records holds
// a few records' room, not the 256 (40 KiB) every batch once took, which
// made the fetched-ahead batches of a restart or a recovery cost hundreds
// of MiB.
type recordPool struct {
	classes [recordClasses]sync.Pool
}

// The capacities of recordPool's classes: 1<<minRecordShift (8) to
// 1<<(minRecordShift+recordClasses-1) (65,536) records.
const (
	minRecordShift = 3
	recordClasses  = 14
)

// recordClass is the class of a batch of n records, recordClasses and more
// for one too large to pool.
func recordClass(n int) int {
	return max(bits.Len(uint(max(n, 1)-1)), minRecordShift) - minRecordShift
}

func (rp *recordPool) GetRecords(n int) []kgo.Record {
	c := recordClass(n)
	if c >= recordClasses {
		return make([]kgo.Record, 0, n) // an unusually large batch
	}
	if s, ok := rp.classes[c].Get().(*[]kgo.Record); ok {
		return (*s)[:0]
	}
	return make([]kgo.Record, 0, 1<<(c+minRecordShift))
}

func (rp *recordPool) PutRecords(s []kgo.Record) {
	c := recordClass(cap(s))
	if c >= recordClasses || cap(s) != 1<<(c+minRecordShift) {
		return // not one of ours
	}
	rp.classes[c].Put(&s)
}
