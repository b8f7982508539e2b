package producers

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/costpipe/costpipe/schemas"
	"github.com/costpipe/costpipe/schemas/arrowcodec"
)

// This file holds the Producer's background work: the flusher, which takes
// buffered events and routes them into batches, and the workers, which encode
// batches into records and hand them to franz-go.

const (
	// maxArrowValue is the largest Arrow record value a worker produces; a
	// bigger batch is split in halves. It leaves room under franz-go's and
	// Kafka's default 1 000 012-byte batch limit for headers and framing.
	maxArrowValue = 900_000
	// metadataTimeout bounds one metadata request.
	metadataTimeout = 10 * time.Second
	// Backoff between failed metadata requests while no partition count is
	// known.
	minStallBackoff = 100 * time.Millisecond
	maxStallBackoff = 5 * time.Second
)

// partitionRefresh is how often Arrow mode re-reads the partition count (a
// variable for tests).
var partitionRefresh = time.Minute

// errAbandoned is the reason of events failed because Close gave up.
var errAbandoned = errors.New("producer closed before the events were delivered")

var (
	jsonHeaders  = []kgo.RecordHeader{{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeJSON)}}
	arrowHeaders = []kgo.RecordHeader{{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)}}
)

// epoch counts the batches dispatched between two Flush calls. It starts
// with one token held until the flusher seals it; done is closed when the
// token and every batch are released.
type epoch struct {
	n    atomic.Int64
	done chan struct{}
}

func newEpoch() *epoch {
	e := &epoch{done: make(chan struct{})}
	e.n.Store(1)
	return e
}

func (e *epoch) add() { e.n.Add(1) }

func (e *epoch) release() {
	if e.n.Add(-1) == 0 {
		close(e.done)
	}
}

func (e *epoch) finished() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// batch is a slice of events bound for one worker (and, in Arrow mode, one
// partition). It is resolved when every record made of it is.
type batch struct {
	events    []schemas.Event
	partition int32 // Arrow mode: the destination; JSON mode: -1
	epoch     *epoch
	remaining atomic.Int64 // unresolved records, plus one while the worker produces
}

// flusher is the state of the flusher goroutine.
type flusher struct {
	p       *Producer
	workers []chan *batch
	tp      kgo.TopicPartitioner
	rec     kgo.Record // scratch for tp
	key     []byte     // scratch key
	groups  [][]schemas.Event
	spent   []*chunk // taken chunks to recycle at the next take

	cur    *epoch   // receives the batches dispatched now
	sealed []*epoch // sealed by earlier Flush calls and not yet done

	parts   int // Arrow mode: partition count, 0 until known
	partsAt time.Time
	stalled error // why the last drain could not route, nil if it could
}

// runFlusher takes buffered events when Linger passed, when enough are
// buffered, or on Flush, and dispatches them to the workers. It returns
// once Close's quit is closed and the buffer is drained, or when Close gives
// up (abandon), after failing what it holds; either way it closes the
// workers' channels.
func (p *Producer) runFlusher(ctx context.Context, workers []chan *batch) {
	defer close(p.flusherDone)
	f := &flusher{
		p:       p,
		workers: workers,
		tp:      kgo.StickyKeyPartitioner(nil).ForTopic(p.opts.Topic),
		cur:     newEpoch(),
	}
	defer func() {
		for _, w := range workers {
			close(w)
		}
	}()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	armed := false
	backoff := minStallBackoff
	quit := p.quit
	closing := false
	var flushes []chan []*epoch
	for {
		take := false
		select {
		case <-p.wake:
			if f.stalled != nil {
				break
			}
			p.mu.Lock()
			n, at := p.pending, p.wakeAt
			p.mu.Unlock()
			switch {
			case n == 0:
			case n >= at || p.opts.Linger == 0:
				take = true
			case !armed:
				linger.Reset(p.opts.Linger)
				armed = true
			}
		case <-linger.C:
			armed = false
			take = f.stalled == nil
		case <-retry.C:
			take = true
		case r := <-p.flushReq:
			flushes = append(flushes, r)
			take = f.stalled == nil
		case <-quit:
			quit = nil
			closing = true
			take = f.stalled == nil
		case <-p.abandon:
			f.failBuffered(errAbandoned)
			return
		}
		if !take {
			continue
		}
		if armed {
			linger.Stop()
			armed = false
		}
		if !f.drain(ctx) {
			if f.stalled == nil { // abandoned while dispatching
				f.failBuffered(errAbandoned)
				return
			}
			retry.Reset(backoff)
			backoff = min(2*backoff, maxStallBackoff)
			continue
		}
		backoff = minStallBackoff
		if len(flushes) > 0 {
			eps := f.seal()
			for _, r := range flushes {
				r <- eps
			}
			flushes = flushes[:0]
		}
		if closing {
			return
		}
	}
}

// seal closes the current epoch and returns the epochs a Flush must wait for.
func (f *flusher) seal() []*epoch {
	live := f.sealed[:0]
	for _, e := range f.sealed {
		if !e.finished() {
			live = append(live, e)
		}
	}
	clear(f.sealed[len(live):])
	f.cur.release()
	f.sealed = append(live, f.cur)
	f.cur = newEpoch()
	return append([]*epoch(nil), f.sealed...)
}

// take removes every buffered event from the Producer's buffer and recycles
// the chunks taken last time.
func (f *flusher) take() []*chunk {
	p := f.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range f.spent {
		if len(p.free) < maxFreeChunks {
			p.free = append(p.free, c)
		}
	}
	clear(f.spent)
	f.spent = f.spent[:0]
	chunks := p.full
	p.full = nil
	if p.tail != nil {
		chunks = append(chunks, p.tail)
		p.tail = nil
	}
	p.pending = 0
	return chunks
}

// putBack returns chunks the flusher could not route to the front of the
// buffer, failing those older than the delivery timeout.
func (f *flusher) putBack(chunks []*chunk, why error) {
	p := f.p
	if d := p.opts.DeliveryTimeout; d > 0 {
		keep := chunks[:0]
		for _, c := range chunks {
			if time.Since(c.created) > d {
				p.fail(int64(len(c.events)), -1, fmt.Errorf("cannot route events within the delivery timeout %v: %w", d, why))
				f.recycle(c)
				continue
			}
			keep = append(keep, c)
		}
		chunks = keep
	}
	n := 0
	for _, c := range chunks {
		n += len(c.events)
	}
	p.mu.Lock()
	p.full = append(chunks, p.full...)
	p.pending += n
	p.mu.Unlock()
}

func (f *flusher) recycle(c *chunk) {
	clear(c.events)
	c.events = c.events[:0]
	clear(c.attrs)
	c.attrs = c.attrs[:0]
	c.attrEnd = c.attrEnd[:0]
	f.spent = append(f.spent, c)
}

// failBuffered fails every event still in the buffer (Close gave up).
func (f *flusher) failBuffered(why error) {
	for _, c := range f.take() {
		f.p.fail(int64(len(c.events)), -1, why)
		f.recycle(c)
	}
}

// drain takes the buffered events, routes them and dispatches them to the
// workers. It returns false when it could not: f.stalled says why when no
// partition count is known (the events went back to the buffer), else Close
// gave up while it dispatched (the events it still held were failed).
func (f *flusher) drain(ctx context.Context) bool {
	p := f.p
	chunks := f.take()
	if len(chunks) == 0 {
		f.stalled = nil
		return true
	}
	routes := len(f.workers)
	if p.arrow {
		n, err := f.partitions(ctx)
		if err != nil {
			f.stalled = err
			f.putBack(chunks, err)
			return false
		}
		routes = n
	}
	f.stalled = nil
	if cap(f.groups) < routes {
		f.groups = make([][]schemas.Event, routes)
	}
	f.groups = f.groups[:routes]
	ok := true
	for ci, c := range chunks {
		for i := range c.events {
			e := &c.events[i]
			f.key = append(append(append(f.key[:0], e.Tenant...), 0), e.Model...)
			f.rec.Key = f.key
			r := f.tp.Partition(&f.rec, routes)
			g := f.groups[r]
			if g == nil {
				g = f.getEvents()
			}
			g = append(g, *e)
			g[len(g)-1].Attributes = c.attributes(i)
			if len(g) >= p.opts.BatchEvents {
				f.groups[r] = nil
				if !f.dispatch(r, g) {
					ok = false
					f.failRest(chunks[ci:], i+1)
					break
				}
				continue
			}
			f.groups[r] = g
		}
		if !ok {
			break
		}
		f.recycle(c)
	}
	for r, g := range f.groups {
		f.groups[r] = nil
		if len(g) == 0 {
			continue
		}
		if !ok {
			p.fail(int64(len(g)), f.partitionOf(r), errAbandoned)
			continue
		}
		if !f.dispatch(r, g) {
			ok = false
		}
	}
	return ok
}

// failRest fails the events of chunks from chunks[0].events[from:] on
// (Close gave up during a dispatch).
func (f *flusher) failRest(chunks []*chunk, from int) {
	for i, c := range chunks {
		n := len(c.events)
		if i == 0 {
			n -= from
		}
		f.p.fail(int64(n), -1, errAbandoned)
		f.recycle(c)
	}
}

func (f *flusher) partitionOf(route int) int32 {
	if f.p.arrow {
		return int32(route)
	}
	return -1
}

// dispatch hands events of one route to its worker; false means Close gave
// up first (the events were failed).
func (f *flusher) dispatch(route int, events []schemas.Event) bool {
	b := &batch{events: events, partition: f.partitionOf(route), epoch: f.cur}
	f.cur.add()
	select {
	case f.workers[route%len(f.workers)] <- b:
		return true
	case <-f.p.abandon:
		f.p.fail(int64(len(events)), b.partition, errAbandoned)
		f.cur.release()
		return false
	}
}

func (f *flusher) getEvents() []schemas.Event {
	select {
	case g := <-f.p.evFree:
		return g
	default:
		return nil
	}
}

// partitions returns the topic's partition count, reading it from Kafka
// when it is unknown or older than partitionRefresh. A failed refresh keeps
// the old count (and is retried after maxStallBackoff); an error means no
// count is known. A count that grew is used once franz-go's producer knows
// the new partitions too.
func (f *flusher) partitions(ctx context.Context) (int, error) {
	if f.parts > 0 && time.Since(f.partsAt) < partitionRefresh {
		return f.parts, nil
	}
	mctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	n, err := f.p.fetchPartitions(mctx)
	cancel()
	if err != nil {
		if f.parts > 0 {
			f.partsAt = time.Now().Add(maxStallBackoff - partitionRefresh)
			return f.parts, nil
		}
		return 0, err
	}
	if n > f.parts && f.parts > 0 {
		// The topic grew. franz-go's producer reads metadata on its own
		// schedule (up to MetadataMaxAge) and fails at once a record sent
		// to a partition it has not seen: keep the count it knows, ask it
		// to look now, and check again shortly.
		if leader, _, _ := f.p.cl.PartitionLeader(f.p.opts.Topic, int32(n-1)); leader < 0 {
			f.p.cl.ForceMetadataRefresh()
			f.partsAt = time.Now().Add(min(time.Second, partitionRefresh) - partitionRefresh)
			return f.parts, nil
		}
	}
	f.parts, f.partsAt = n, time.Now()
	f.p.mu.Lock()
	f.p.wakeAt = max(1, min(f.p.opts.BatchEvents*n, f.p.opts.BufferEvents/2))
	f.p.mu.Unlock()
	return n, nil
}

// fetchPartitions asks Kafka for the topic's partition count, creating the
// topic when the cluster allows it.
func (p *Producer) fetchPartitions(ctx context.Context) (int, error) {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(p.opts.Topic)
	req.Topics = append(req.Topics, t)
	req.AllowAutoTopicCreation = true
	resp, err := req.RequestWith(ctx, p.cl)
	if err != nil {
		return 0, fmt.Errorf("cannot read the partition count of topic %q: %w", p.opts.Topic, err)
	}
	for _, rt := range resp.Topics {
		if rt.Topic == nil || *rt.Topic != p.opts.Topic {
			continue
		}
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			return 0, fmt.Errorf("cannot read the partition count of topic %q: %w", p.opts.Topic, err)
		}
		if len(rt.Partitions) == 0 {
			return 0, fmt.Errorf("cannot read the partition count of topic %q: no partitions", p.opts.Topic)
		}
		return len(rt.Partitions), nil
	}
	return 0, fmt.Errorf("cannot read the partition count of topic %q: not in the metadata response", p.opts.Topic)
}

// runWorker encodes and produces the batches of one channel, in order, until
// the flusher closes it. After Close gave up it fails the batches instead.
func (p *Producer) runWorker(ctx context.Context, in <-chan *batch) {
	defer p.workersDone.Done()
	var enc *arrowcodec.Encoder
	if p.arrow {
		enc = arrowcodec.NewEncoder(nil)
	}
	for b := range in {
		b.remaining.Store(1)
		select {
		case <-p.abandon:
			p.fail(int64(len(b.events)), b.partition, errAbandoned)
		default:
			if p.arrow {
				p.produceArrow(ctx, enc, b, b.events)
			} else {
				p.produceJSON(ctx, b)
			}
		}
		p.batchDone(b)
		p.putEvents(b.events)
		b.events = nil
	}
}

func (p *Producer) batchDone(b *batch) {
	if b.remaining.Add(-1) == 0 {
		b.epoch.release()
	}
}

func (p *Producer) putEvents(g []schemas.Event) {
	clear(g)
	select {
	case p.evFree <- g[:0]:
	default:
	}
}

// recordDone resolves the n events of one record.
func (p *Producer) recordDone(b *batch, n int64, r *kgo.Record, err error) {
	if err != nil {
		p.fail(n, r.Partition, err)
	} else {
		p.sent.Add(n)
		p.release(n)
	}
	p.batchDone(b)
}

// produceJSON produces one record per event. The keys and values of the
// batch share one allocation, its records another.
func (p *Producer) produceJSON(ctx context.Context, b *batch) {
	evs := b.events
	recs := make([]kgo.Record, len(evs))
	buf := make([]byte, 0, len(evs)*400)
	b.remaining.Add(int64(len(evs)))
	promise := func(r *kgo.Record, err error) { p.recordDone(b, 1, r, err) }
	for i := range evs {
		e := &evs[i]
		start := len(buf)
		buf = append(append(append(buf, e.Tenant...), 0), e.Model...)
		k := len(buf)
		buf = schemas.AppendJSON(buf, e)
		r := &recs[i]
		r.Topic = p.opts.Topic
		r.Key = buf[start:k:k]
		r.Value = buf[k:len(buf):len(buf)]
		r.Headers = jsonHeaders
		p.cl.Produce(ctx, r, promise)
	}
}

// produceArrow encodes evs as one Arrow record for b's partition, splitting
// it in halves while the value is over maxArrowValue.
func (p *Producer) produceArrow(ctx context.Context, enc *arrowcodec.Encoder, b *batch, evs []schemas.Event) {
	val, err := enc.Encode(evs)
	if err != nil {
		p.fail(int64(len(evs)), b.partition, fmt.Errorf("cannot encode arrow batch: %w", err))
		return
	}
	if len(val) > maxArrowValue && len(evs) > 1 {
		h := len(evs) / 2
		p.produceArrow(ctx, enc, b, evs[:h])
		p.produceArrow(ctx, enc, b, evs[h:])
		return
	}
	n := int64(len(evs))
	b.remaining.Add(1)
	rec := &kgo.Record{Topic: p.opts.Topic, Partition: b.partition, Value: val, Headers: arrowHeaders}
	p.cl.Produce(ctx, rec, func(r *kgo.Record, err error) { p.recordDone(b, n, r, err) })
}
