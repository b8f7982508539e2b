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

	"github.com/costpipe/costpipe/internal/loglimit"
)

// DLQ reasons, the value of the costpipe-dlq-reason header and the label of
// costpipe_dlq_records_total.
const (
	reasonInvalid     = "invalid"             // undecodable or invalid event (JSON), or unreadable Arrow stream
	reasonInvalidRows = "invalid_rows"        // an Arrow batch with invalid rows (listed in costpipe-dlq-rows)
	reasonTooOld      = "too_old"             // older than --max-event-age
	reasonFuture      = "too_far_in_future"   // beyond --max-future
	reasonContentType = "unsupported_content" // unknown content-type header
)

// DLQ header names added to the original record's headers.
const (
	HeaderDLQReason          = "costpipe-dlq-reason"
	HeaderDLQError           = "costpipe-dlq-error"
	HeaderDLQRows            = "costpipe-dlq-rows"
	HeaderDLQSourceTopic     = "costpipe-dlq-source-topic"
	HeaderDLQSourcePartition = "costpipe-dlq-source-partition"
	HeaderDLQSourceOffset    = "costpipe-dlq-source-offset"
)

const (
	maxDLQErrorLen = 4096
	maxDLQRows     = 1000 // row numbers listed in costpipe-dlq-rows at most
)

// HeaderDLQTruncated is set when the DLQ topic refused the original value as
// too large and the record was sent without it.
const HeaderDLQTruncated = "costpipe-dlq-truncated"

// dlqPos is the position of a DLQ record's source record in the events
// topic.
type dlqPos struct {
	part int32
	off  int64
}

// dlqSource describes the source record of a DLQ record.
type dlqSource struct {
	topic  string
	pos    dlqPos
	time   int64  // Kafka timestamp (unix ms) of the source record
	reason string // the DLQ reason
}

type dlqFailure struct {
	rec      *kgo.Record
	src      dlqSource
	err      error
	attempts int // sends that failed so far
}

// dlq produces r, unchanged, to the DLQ topic with headers naming the reason
// and the source position. Delivery is confirmed before the next offset
// commit (waitDLQ); franz-go retries until the broker takes it. A record
// read again (a rewind) while the DLQ copy of its first reading is not
// confirmed yet is not sent twice.
func (c *Consumer) dlq(r *kgo.Record, reason, msg string, rows []string) {
	src := dlqSource{topic: r.Topic, pos: dlqPos{r.Partition, r.Offset}, time: r.Timestamp.UnixMilli(), reason: reason}
	c.dlqMu.Lock()
	_, open := c.dlqOpen[src.pos]
	if !open {
		if c.dlqOpen == nil {
			c.dlqOpen = map[dlqPos]struct{}{}
		}
		c.dlqOpen[src.pos] = struct{}{}
	}
	c.dlqMu.Unlock()
	if open {
		return
	}
	if len(msg) > maxDLQErrorLen {
		msg = msg[:maxDLQErrorLen] + "…"
	}
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+6)
	headers = append(headers, r.Headers...)
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderDLQReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderDLQError, Value: []byte(msg)},
		kgo.RecordHeader{Key: HeaderDLQSourceTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderDLQSourcePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderDLQSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	)
	if len(rows) > 0 {
		list := strings.Join(rows[:min(len(rows), maxDLQRows)], ",")
		if len(rows) > maxDLQRows {
			list += fmt.Sprintf(",…(+%d more)", len(rows)-maxDLQRows)
		}
		headers = append(headers, kgo.RecordHeader{Key: HeaderDLQRows, Value: []byte(list)})
	}
	out := &kgo.Record{Topic: c.opts.DLQTopic, Key: r.Key, Value: r.Value, Headers: headers}
	c.m.dlq.WithLabelValues(reason).Inc()
	c.noteDLQ(r, reason, msg)
	c.produceDLQ(out, src, 0)
}

// dlqLogEvery is how often at most noteDLQ logs the records of one reason.
const dlqLogEvery = time.Minute

// noteDLQ logs the DLQ record r: the first of its reason at once, then one
// line a dlqLogEvery at most, with how many records of the reason came
// since the line before and this one's message as the example. Events
// backdated beyond --max-event-age, say, are otherwise visible only in
// costpipe_dlq_records_total.
func (c *Consumer) noteDLQ(r *kgo.Record, reason, msg string) {
	if c.dlqLogs == nil {
		c.dlqLogs = map[string]*loglimit.Limit{}
	}
	l := c.dlqLogs[reason]
	if l == nil {
		l = &loglimit.Limit{}
		c.dlqLogs[reason] = l
	}
	now := c.opts.Now()
	n, prev, due := l.Note(now, dlqLogEvery)
	if !due {
		return
	}
	attrs := []any{"reason", reason, "records", n, "partition", r.Partition, "offset", r.Offset, "example", msg}
	if !prev.IsZero() {
		attrs = append(attrs, "in_the_last", now.Sub(prev).Round(time.Second))
	}
	c.log.Warn("records sent to the DLQ", attrs...)
}

// produceDLQ sends one DLQ record of the source src; a failure keeps it for
// waitDLQ to resend. failed is how many sends of it failed before.
func (c *Consumer) produceDLQ(out *kgo.Record, src dlqSource, failed int) {
	c.dlqMu.Lock()
	c.dlqPending++
	c.dlqMu.Unlock()
	c.cl.Produce(context.Background(), out, func(r *kgo.Record, err error) {
		c.dlqMu.Lock()
		defer c.dlqMu.Unlock()
		c.dlqPending--
		if err != nil {
			c.dlqFailed = append(c.dlqFailed, dlqFailure{rec: r, src: src, err: err, attempts: failed + 1})
			c.dlqLastErr = err
			return
		}
		delete(c.dlqOpen, src.pos)
	})
}

// waitDLQ waits until every DLQ record produced so far is acknowledged,
// spooled or held (offsets are not committed past an invalid record before
// its DLQ copy is safe). Failed records are resent with backoff; a record
// the topic refuses as too large is resent without its value, with
// HeaderDLQTruncated; a record that failed DLQMaxAttempts sends goes to the
// local spool (DLQSpoolDir) so that it neither stops consumption nor is
// lost. When the spool cannot take it either, it is held (hold) and
// waitDLQ returns a *dlqHeldError: the caller commits only up to the first
// held record, and the next flushes retry the spool with backoff
// (spoolHeld). Otherwise it gives up only when ctx ends.
func (c *Consumer) waitDLQ(ctx context.Context) error {
	backoff := 200 * time.Millisecond
	for {
		for {
			c.dlqMu.Lock()
			pending := c.dlqPending
			c.dlqMu.Unlock()
			if pending == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("cannot confirm %d DLQ records: %w", pending, context.Cause(ctx))
			case <-time.After(2 * time.Millisecond):
			}
		}
		c.dlqMu.Lock()
		failed, lastErr := c.dlqFailed, c.dlqLastErr
		c.dlqFailed, c.dlqLastErr = nil, nil
		c.dlqMu.Unlock()
		c.m.dlqErrors.Add(float64(len(failed)))
		var resend []dlqFailure
		for _, f := range failed {
			if f.attempts >= c.opts.DLQMaxAttempts {
				c.hold(f)
			} else {
				resend = append(resend, f)
			}
		}
		if len(resend) == 0 {
			return c.spoolHeld()
		}
		c.log.Warn("cannot produce to the DLQ topic; retrying", "topic", c.opts.DLQTopic, "records", len(resend), "retry_in", backoff, "err", lastErr)
		select {
		case <-ctx.Done():
			c.dlqMu.Lock()
			c.dlqFailed = append(resend, c.dlqFailed...)
			c.dlqMu.Unlock()
			return fmt.Errorf("cannot produce %d records to DLQ %q: %w", len(resend), c.opts.DLQTopic, lastErr)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
		for _, f := range resend {
			r := &kgo.Record{Topic: f.rec.Topic, Key: f.rec.Key, Value: f.rec.Value, Headers: f.rec.Headers}
			if tooLarge(f.err) {
				r = withoutValue(r, f.err)
			}
			c.produceDLQ(r, f.src, f.attempts)
		}
	}
}

// tooLarge reports whether a produce failed because the record is larger
// than the topic takes.
func tooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// withoutValue returns a copy of the DLQ record r without its value and
// with HeaderDLQTruncated saying why (err), for a DLQ topic that refused
// it as too large. A record without a value is returned as it is.
func withoutValue(r *kgo.Record, err error) *kgo.Record {
	if r.Value == nil {
		return r
	}
	return &kgo.Record{Topic: r.Topic, Key: r.Key, Headers: append(append([]kgo.RecordHeader(nil), r.Headers...),
		kgo.RecordHeader{Key: HeaderDLQTruncated, Value: []byte(fmt.Sprintf("value of %d bytes dropped: %v", len(r.Value), err))})}
}

// The held DLQ records (dlqHold) are bounded: beyond these, a record is
// not kept in memory; the commits stay below it and it is read again once
// the spool works (rereadDropped). Variables: tests lower them.
var (
	maxHeldRecords = 10_000
	maxHeldBytes   = 64 << 20
)

// The spool is retried, while it fails, after spoolRetryMin, doubling up to
// spoolRetryMax (at the flushes that follow).
const (
	spoolRetryMin = time.Second
	spoolRetryMax = time.Minute
)

// dlqHold keeps the DLQ records that Kafka refused for good while the
// spool cannot take them either: offsets are not committed past them
// (nothing is lost, nothing is read twice meanwhile) and later flushes
// retry the spool with backoff. Used by the poll goroutine and the
// partition callbacks only (never concurrently).
type dlqHold struct {
	recs  []dlqFailure
	bytes int
	// floor is, per partition, the first record refused for good that was
	// not held for lack of room; dropped counts them.
	floor   map[int32]dlqSource
	dropped int
	// retryAt is when the spool may be tried again; backoff the wait
	// before it; lastErr the spool's last error.
	retryAt time.Time
	backoff time.Duration
	lastErr error
	failing loglimit.Failures // the spool's failures, for their log lines
	// spooledLog limits the lines of spooled batches; spooledRecs counts
	// the records spooled since the last one.
	spooledLog  loglimit.Limit
	spooledRecs int
}

// dlqHeldError reports DLQ records that neither Kafka nor the spool took:
// the windows landed, and offsets were committed up to the first of them.
type dlqHeldError struct {
	records int
	topic   string
	dir     string
	err     error
}

func (e *dlqHeldError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("%d DLQ records neither in Kafka (%q refused them) nor in the spool: not kept in memory while the spool directory %q failed, they are read again", e.records, e.topic, e.dir)
	}
	return fmt.Sprintf("%d DLQ records neither in Kafka (%q refused them) nor in the spool directory %q: %v", e.records, e.topic, e.dir, e.err)
}

func (e *dlqHeldError) Unwrap() error { return e.err }

func heldSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value) + 64
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// hold keeps f, a DLQ record Kafka refused for good, until the spool takes
// it; beyond maxHeldRecords or maxHeldBytes, only its position is kept
// (hold.floor).
func (c *Consumer) hold(f dlqFailure) {
	h := &c.held
	if size := heldSize(f.rec); len(h.recs) < maxHeldRecords && h.bytes+size <= maxHeldBytes {
		h.recs = append(h.recs, f)
		h.bytes += size
		return
	}
	if h.floor == nil {
		h.floor = map[int32]dlqSource{}
	}
	if cur, ok := h.floor[f.src.pos.part]; !ok || f.src.pos.off < cur.pos.off {
		h.floor[f.src.pos.part] = f.src
	}
	h.dropped++
	c.dlqMu.Lock()
	delete(c.dlqOpen, f.src.pos) // read again, it is sent again
	c.dlqMu.Unlock()
}

// dropHeld forgets the held DLQ records, and the positions of those not
// held, of partitions this member no longer owns: their commits stopped
// before them, so the next owner reads them again and makes their DLQ
// copies (kept here too, they would be spooled twice).
func (c *Consumer) dropHeld(ids []int32) {
	h := &c.held
	gone := make(map[int32]bool, len(ids))
	for _, p := range ids {
		gone[p] = true
	}
	kept := h.recs[:0]
	c.dlqMu.Lock()
	for _, f := range h.recs {
		if gone[f.src.pos.part] {
			h.bytes -= heldSize(f.rec)
			delete(c.dlqOpen, f.src.pos)
			continue
		}
		kept = append(kept, f)
	}
	c.dlqMu.Unlock()
	clear(h.recs[len(kept):])
	h.recs = kept
	for _, p := range ids {
		delete(h.floor, p)
	}
	if len(h.floor) == 0 {
		h.dropped = 0
	}
}

// commitLimits returns, per partition, the first record whose DLQ copy is
// neither in Kafka nor in the spool: offsets are not committed past it.
func (h *dlqHold) commitLimits() map[int32]dlqSource {
	if len(h.recs) == 0 && len(h.floor) == 0 {
		return nil
	}
	out := make(map[int32]dlqSource, len(h.floor))
	for p, src := range h.floor {
		out[p] = src
	}
	for _, f := range h.recs {
		if cur, ok := out[f.src.pos.part]; !ok || f.src.pos.off < cur.pos.off {
			out[f.src.pos.part] = f.src
		}
	}
	return out
}

// spoolHeld writes the held records to the spool, when its retry is due.
// It returns nil when none is held any more, else a *dlqHeldError. The
// spool's failures are logged at most once a spoolLogEvery, and its
// recovery once.
func (c *Consumer) spoolHeld() error {
	h := &c.held
	if len(h.recs) == 0 {
		return nil
	}
	now := c.opts.Now()
	if now.Before(h.retryAt) {
		return c.heldError()
	}
	path, err := c.spool.write(now, h.recs)
	if err != nil {
		h.lastErr = err
		h.backoff = min(max(2*h.backoff, spoolRetryMin), spoolRetryMax)
		h.retryAt = now.Add(h.backoff)
		if n, since, due := h.failing.Fail(now, spoolLogEvery); due {
			c.log.Error("cannot write DLQ records to the spool directory, and Kafka refused them: offsets are not committed past them, nothing is lost; "+
				"make the directory writable (permissions, free space), or grant produce on the DLQ topic and restart",
				"dir", c.opts.DLQSpoolDir, "records", len(h.recs)+h.dropped, "topic", c.opts.DLQTopic, "retry_in", h.backoff,
				"failures", n, "failing_for", now.Sub(since).Round(time.Millisecond), "err", err)
		}
		return c.heldError()
	}
	spooled := h.recs
	c.m.dlqSpooled.Add(float64(len(spooled)))
	c.dlqMu.Lock()
	for _, f := range spooled {
		delete(c.dlqOpen, f.src.pos)
	}
	c.dlqMu.Unlock()
	h.recs, h.bytes, h.retryAt, h.backoff, h.lastErr = nil, 0, time.Time{}, 0, nil
	if since, total, failing := h.failing.Succeed(); failing {
		c.log.Info("DLQ spool directory writable again", "dir", c.opts.DLQSpoolDir,
			"failing_for", now.Sub(since).Round(time.Millisecond), "failed_attempts", total)
	}
	c.noteSpooled(now, path, spooled)
	if h.dropped > 0 {
		return c.heldError() // until rereadDropped
	}
	return nil
}

func (c *Consumer) heldError() error {
	h := &c.held
	return &dlqHeldError{records: len(h.recs) + h.dropped, topic: c.opts.DLQTopic, dir: c.opts.DLQSpoolDir, err: h.lastErr}
}

// spoolLogEvery is how often at most the spool's lines (spooled batches,
// failures) are logged.
const spoolLogEvery = time.Minute

// noteSpooled logs a batch of DLQ records written to the spool file path:
// the first at once, then one line a spoolLogEvery at most, with how many
// records were spooled since the line before and this batch's first record.
func (c *Consumer) noteSpooled(now time.Time, path string, batch []dlqFailure) {
	h := &c.held
	h.spooledRecs += len(batch)
	n, prev, due := h.spooledLog.Note(now, spoolLogEvery)
	if !due {
		return
	}
	first := batch[0]
	attrs := []any{"records", h.spooledRecs, "file", path, "topic", c.opts.DLQTopic,
		"first_partition", first.src.pos.part, "first_offset", first.src.pos.off, "reason", first.src.reason, "attempts", first.attempts, "err", first.err,
		"action", "grant produce on " + c.opts.DLQTopic + " or create it, then re-produce the records of " + path + " (costpipe dlq unspool --dlq-spool " + c.opts.DLQSpoolDir + ")"}
	if !prev.IsZero() {
		attrs = append(attrs, "batches", n, "in_the_last", now.Sub(prev).Round(time.Second))
	}
	h.spooledRecs = 0
	c.log.Error("DLQ records refused by Kafka written to the spool instead", attrs...)
}

// rereadDropped rewinds, once the spool has taken every held record, to
// read again the records that were not held for lack of room (the commits
// stayed below them), so that their DLQ copies are made again.
func (c *Consumer) rereadDropped(ctx context.Context) {
	h := &c.held
	if h.dropped == 0 || len(h.recs) > 0 {
		return
	}
	owned := false
	for p := range h.floor {
		_, owned = c.parts[p]
		if owned {
			break
		}
	}
	n := h.dropped
	h.floor, h.dropped = nil, 0
	if !owned {
		return // their next owner reads them from the committed offsets
	}
	c.log.Warn("the spool works again: reading again from the committed offsets the DLQ records that were not kept in memory meanwhile", "records", n)
	c.rewind(ctx)
}
