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

type dlqFailure struct {
	rec      *kgo.Record
	err      error
	attempts int // sends that failed so far
}

// dlq produces r, unchanged, to the DLQ topic with headers naming the reason
// and the source position. Delivery is confirmed before the next offset
// commit (waitDLQ); franz-go retries until the broker takes it.
func (c *Consumer) dlq(r *kgo.Record, reason, msg string, rows []string) {
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
	c.produceDLQ(out, 0)
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

// produceDLQ sends one DLQ record; a failure keeps it for waitDLQ to resend.
// failed is how many sends of it failed before.
func (c *Consumer) produceDLQ(out *kgo.Record, failed int) {
	c.dlqMu.Lock()
	c.dlqPending++
	c.dlqMu.Unlock()
	c.cl.Produce(context.Background(), out, func(r *kgo.Record, err error) {
		c.dlqMu.Lock()
		defer c.dlqMu.Unlock()
		c.dlqPending--
		if err != nil {
			c.dlqFailed = append(c.dlqFailed, dlqFailure{rec: r, err: err, attempts: failed + 1})
			c.dlqLastErr = err
		}
	})
}

// waitDLQ waits until every DLQ record produced so far is acknowledged or
// spooled (offsets are not committed past an invalid record before its DLQ
// copy is safe). Failed records are resent with backoff; a record the topic
// refuses as too large is resent without its value, with HeaderDLQTruncated;
// a record that failed DLQMaxAttempts sends goes to the local spool
// (DLQSpoolDir) so that it neither stops consumption nor is lost. It gives
// up only when ctx ends, or the spool cannot be written either.
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
		if len(failed) == 0 {
			return nil
		}
		c.m.dlqErrors.Add(float64(len(failed)))
		var resend, spool []dlqFailure
		for _, f := range failed {
			if f.attempts >= c.opts.DLQMaxAttempts {
				spool = append(spool, f)
			} else {
				resend = append(resend, f)
			}
		}
		if len(spool) > 0 {
			path, err := c.spool.write(c.opts.Now(), spool)
			if err != nil {
				// Keep them: nothing is lost, and the next flush tries again.
				c.dlqMu.Lock()
				c.dlqFailed = append(append(spool, resend...), c.dlqFailed...)
				c.dlqMu.Unlock()
				return fmt.Errorf("cannot deliver %d DLQ records to %q nor spool them: %w", len(spool), c.opts.DLQTopic, err)
			}
			c.m.dlqSpooled.Add(float64(len(spool)))
			for _, f := range spool {
				c.log.Error("DLQ record refused by Kafka; written to the local spool instead",
					"topic", c.opts.DLQTopic, "attempts", f.attempts, "spool", path, "err", f.err)
			}
		}
		if len(resend) == 0 {
			continue
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
			if r.Value != nil && (errors.Is(f.err, kerr.MessageTooLarge) || errors.Is(f.err, kerr.RecordListTooLarge)) {
				r.Headers = append(append([]kgo.RecordHeader(nil), r.Headers...), kgo.RecordHeader{Key: HeaderDLQTruncated,
					Value: []byte(fmt.Sprintf("value of %d bytes dropped: %v", len(r.Value), f.err))})
				r.Value = nil
			}
			c.produceDLQ(r, f.attempts)
		}
	}
}
