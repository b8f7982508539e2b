package producers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/loglimit"
	"github.com/costpipe/costpipe/schemas"
)

// Encoding selects how a Producer writes events into Kafka records.
type Encoding string

const (
	// EncodingJSON writes one JSON event per record with the contract key
	// tenant+"\x00"+model and content-type application/json. Any Kafka
	// client (kcat) can read it.
	EncodingJSON Encoding = "json"
	// EncodingArrow writes an Arrow IPC stream of up to Options.BatchEvents
	// events per record (content-type application/vnd.apache.arrow.stream),
	// all of one partition; the record key is nil. Several times cheaper
	// per event to produce and consume than JSON.
	EncodingArrow Encoding = "arrow"
)

// FullPolicy says what Emit does when the buffer holds Options.BufferEvents
// events.
type FullPolicy string

const (
	// Block makes Emit wait until there is room or its ctx ends: back
	// pressure, for batch jobs that would rather slow down than lose
	// events. Never use it on a request path with a ctx that has no
	// deadline: while Kafka is down, every Emit would wait forever.
	Block FullPolicy = "block"
	// Drop makes Emit drop the event, count it in Stats.Dropped, report it
	// to Options.OnError (aggregated, at most once a second) and return
	// ErrBufferFull.
	Drop FullPolicy = "drop"
)

var (
	// ErrBufferFull is returned by Emit under the Drop policy when the
	// buffer is full; the event was dropped and counted. A *LossError
	// reporting drops wraps it.
	ErrBufferFull = errors.New("producer buffer full")
	// ErrClosed is returned by Emit and Flush after Close.
	ErrClosed = errors.New("producer closed")
)

// Limits of Options.
const (
	// MaxBatchEvents bounds Options.BatchEvents (the Arrow decoder's default
	// row limit is 1 048 576; batches this large would not fit a Kafka
	// record anyway).
	MaxBatchEvents = 100_000
	// MaxWorkers bounds Options.Workers.
	MaxWorkers = 64
)

// Options configure a Producer. Start from DefaultOptions; zero values are
// not replaced by defaults.
type Options struct {
	// Brokers are the Kafka seed brokers, host:port. Default
	// ["127.0.0.1:9092"].
	Brokers []string

	// Topic receives the events. Default schemas.DefaultTopic
	// ("costpipe.events").
	Topic string

	// Encoding of the records: EncodingJSON or EncodingArrow. Default
	// EncodingJSON.
	Encoding Encoding

	// Linger is the longest an event waits in the buffer for more events
	// to be batched with it before it is encoded and produced. 0 sends as
	// soon as the flusher runs. Default 10ms.
	Linger time.Duration

	// BatchEvents is the most events in one Arrow record, and the number of
	// buffered events (per partition in Arrow mode) that triggers a send
	// before Linger has passed. From 1 to MaxBatchEvents, at most
	// BufferEvents. Arrow records are also split to stay under 900 kB.
	// Default 1000.
	BatchEvents int

	// BufferEvents bounds the events accepted by Emit and not yet
	// acknowledged or failed by Kafka: those in the SDK's buffer plus those
	// in flight in franz-go. Default 100 000 (about 30 MB of typical
	// events).
	BufferEvents int

	// WhenFull is what Emit does when BufferEvents are buffered: Block or
	// Drop. Default Drop, so that a Kafka outage never slows the request
	// path that calls Emit: once the buffer is full, Emit returns
	// ErrBufferFull at once and the drop is counted and reported. Choose
	// Block for batch jobs that want back pressure instead.
	WhenFull FullPolicy

	// MaxEventAge, when positive, makes Emit refuse (with a
	// *schemas.FieldError for "timestamp") an event whose Timestamp is
	// older than this, which the aggregator would send to the DLQ as
	// too_old. Keep it at most the aggregator's MaxEventAge
	// (--max-event-age). 0 turns the check off. Default 7 days, the
	// aggregator's default.
	MaxEventAge time.Duration

	// MaxFuture, when positive, makes Emit refuse (with a
	// *schemas.FieldError for "timestamp") an event whose Timestamp is
	// further than this in the future, which the aggregator would send to
	// the DLQ. Keep it at most the aggregator's MaxFuture (--max-future).
	// 0 turns the check off. Default 5 minutes, the aggregator's default.
	MaxFuture time.Duration

	// CloseTimeout bounds Close when its ctx has no deadline: after that
	// long Close gives up as if its ctx had ended (the events not yet
	// acknowledged are failed, counted and reported, and Close returns a
	// *LossError). A ctx with a deadline is used as is. 0 turns the bound
	// off: Close(context.Background()) then waits as long as Kafka is
	// unreachable, forever without a DeliveryTimeout. Default 30s.
	CloseTimeout time.Duration

	// DeliveryTimeout, when positive, fails events that could not be
	// delivered within about that long (franz-go's RecordDeliveryTimeout,
	// and the time an Arrow event waits for the partition count); they are
	// counted in Stats.Failed and reported to OnError. A failed event is
	// one Kafka did not confirm: when a request was sent and its answer
	// lost, it may still have been stored (franz-go's
	// AllowIdempotentProduceCancellation, which this option sets). It must
	// be 0 or at least 1s. Default 0: retry until delivered, exactly once,
	// while the buffer and the Full policy push back on the caller, or
	// until Close gives up.
	DeliveryTimeout time.Duration

	// Workers is the number of goroutines that encode and produce batches.
	// From 1 to MaxWorkers. Default min(4, GOMAXPROCS).
	Workers int

	// OnError, when set, is called for every loss: events Kafka did not
	// acknowledge, events abandoned by Close, and (aggregated, at most once
	// a second) events dropped by the Drop policy. Calls come from the
	// Producer's goroutines, one at a time; keep it short, and do not call
	// Flush, Close or a blocking Emit from it (they may wait for the very
	// goroutine that runs it). Default nil: losses are logged to Logger at
	// WARN, one line a minute at most with the events lost since the line
	// before (and a last line at Close); they are also counted in Stats,
	// drops are returned by Emit (ErrBufferFull), and failures by Flush and
	// Close (a *LossError) when they happen during the call. Set OnError to
	// handle every loss yourself (nothing is logged then).
	OnError func(err *LossError)

	// Logger receives the loss lines when OnError is nil. Default nil:
	// slog.Default().
	Logger *slog.Logger

	// ClientOptions are extra franz-go options (TLS, SASL, compression,
	// client ID, logger, ...), applied before the Producer's own: the seed
	// brokers, the default topic, AllowAutoTopicCreation (a cluster that
	// allows it creates a missing topic), the partitioner,
	// MaxBufferedRecords and ProducerLinger(0) are always set by the
	// Producer, and so are RecordDeliveryTimeout and
	// AllowIdempotentProduceCancellation when DeliveryTimeout is positive.
	// Default nil: franz-go's defaults (acks=all, idempotent, snappy
	// compression).
	ClientOptions []kgo.Opt
}

// DefaultOptions returns the defaults documented on each Options field.
func DefaultOptions() Options {
	return Options{
		Brokers:      []string{"127.0.0.1:9092"},
		Topic:        schemas.DefaultTopic,
		Encoding:     EncodingJSON,
		Linger:       10 * time.Millisecond,
		BatchEvents:  1000,
		BufferEvents: 100_000,
		WhenFull:     Drop,
		MaxEventAge:  7 * 24 * time.Hour,
		MaxFuture:    5 * time.Minute,
		CloseTimeout: 30 * time.Second,
		Workers:      min(4, runtime.GOMAXPROCS(0)),
	}
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	if len(o.Brokers) == 0 {
		return errors.New("cannot produce without brokers: Brokers is empty")
	}
	for _, b := range o.Brokers {
		if strings.TrimSpace(b) == "" {
			return fmt.Errorf("cannot use broker %q: empty address", b)
		}
	}
	if err := validTopic(o.Topic); err != nil {
		return err
	}
	switch o.Encoding {
	case EncodingJSON, EncodingArrow:
	default:
		return fmt.Errorf("cannot use encoding %q: want %q or %q", o.Encoding, EncodingJSON, EncodingArrow)
	}
	if o.Linger < 0 || o.Linger > time.Minute {
		return fmt.Errorf("cannot use linger %v: must be from 0 to 1m", o.Linger)
	}
	if o.BufferEvents < 1 {
		return fmt.Errorf("cannot use a buffer of %d events: must be at least 1", o.BufferEvents)
	}
	if o.BatchEvents < 1 || o.BatchEvents > MaxBatchEvents || o.BatchEvents > o.BufferEvents {
		return fmt.Errorf("cannot use batches of %d events: must be from 1 to %d and at most BufferEvents (%d)",
			o.BatchEvents, MaxBatchEvents, o.BufferEvents)
	}
	switch o.WhenFull {
	case Block, Drop:
	default:
		return fmt.Errorf("cannot use full-buffer policy %q: want %q or %q", o.WhenFull, Block, Drop)
	}
	if o.DeliveryTimeout < 0 || o.DeliveryTimeout > 0 && o.DeliveryTimeout < time.Second {
		return fmt.Errorf("cannot use delivery timeout %v: must be 0 (none) or at least 1s", o.DeliveryTimeout)
	}
	if o.MaxEventAge < 0 {
		return fmt.Errorf("cannot use max event age %v: must be 0 (no check) or positive", o.MaxEventAge)
	}
	if o.MaxFuture < 0 {
		return fmt.Errorf("cannot use max future %v: must be 0 (no check) or positive", o.MaxFuture)
	}
	if o.CloseTimeout < 0 {
		return fmt.Errorf("cannot use close timeout %v: must be 0 (no bound) or positive", o.CloseTimeout)
	}
	if o.Workers < 1 || o.Workers > MaxWorkers {
		return fmt.Errorf("cannot use %d workers: must be from 1 to %d", o.Workers, MaxWorkers)
	}
	return nil
}

// validTopic applies Kafka's rules for topic names: 1 to 249 characters
// from [a-zA-Z0-9._-], and neither "." nor "..".
func validTopic(t string) error {
	if t == "" || len(t) > 249 {
		return fmt.Errorf("cannot produce to topic %q: the name must be 1 to 249 bytes", t)
	}
	if t == "." || t == ".." {
		return fmt.Errorf("cannot produce to topic %q: Kafka does not allow it", t)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("cannot produce to topic %q: the name may only hold ASCII letters, digits, '.', '_' and '-'", t)
		}
	}
	return nil
}

// LossError reports events that will not reach Kafka. Err says why:
// ErrBufferFull for drops, the Kafka or client error of a failed record, or
// the context error of a Close that gave up.
type LossError struct {
	Events    int64  // how many events were lost
	Topic     string // the topic they were meant for
	Partition int32  // their partition, or -1 when not known
	Err       error
}

// Error reads like `cannot deliver 1000 events to "costpipe.events" partition
// 3: ...` or `dropped 12 events for "costpipe.events": producer buffer full`.
func (e *LossError) Error() string {
	if errors.Is(e.Err, ErrBufferFull) {
		return fmt.Sprintf("dropped %d events for %q: %v", e.Events, e.Topic, e.Err)
	}
	if e.Partition >= 0 {
		return fmt.Sprintf("cannot deliver %d events to %q partition %d: %v", e.Events, e.Topic, e.Partition, e.Err)
	}
	return fmt.Sprintf("cannot deliver %d events to %q: %v", e.Events, e.Topic, e.Err)
}

// Unwrap returns Err.
func (e *LossError) Unwrap() error { return e.Err }

// Stats counts what a Producer did with the events Emit accepted. Every
// accepted event is Buffered until it becomes Sent or Failed; Dropped events
// were never accepted. Emit calls that returned a validation or ctx error
// are not counted.
type Stats struct {
	Sent     int64 // acknowledged by Kafka
	Failed   int64 // not acknowledged: a Kafka error, a delivery timeout, or Close gave up
	Dropped  int64 // refused by the Drop policy because the buffer was full
	Buffered int64 // accepted, not yet acknowledged or failed
}

// finalPromiseWait bounds how long Close waits for franz-go to call back for
// the records its Close failed.
const finalPromiseWait = 10 * time.Second

// chunkSize is the number of events per buffer chunk (about 64 kB).
const chunkSize = 256

// maxFreeChunks bounds the chunks kept for reuse (16k events, 4 MB): enough
// for what accumulates in one Linger at a few million events/s.
const maxFreeChunks = 64

// chunk is a piece of the buffer. created is when its first event arrived.
// Event i's attributes are the key, value pairs
// attrs[attrEnd[i-1]:attrEnd[i]] (from 0 for i = 0); its Attributes field
// is nil.
type chunk struct {
	events  []schemas.Event
	attrs   []string
	attrEnd []int32
	created time.Time
}

// attributes returns a new map of event i's attributes, nil if it has none.
func (c *chunk) attributes(i int) map[string]string {
	start := int32(0)
	if i > 0 {
		start = c.attrEnd[i-1]
	}
	kv := c.attrs[start:c.attrEnd[i]]
	if len(kv) == 0 {
		return nil
	}
	m := make(map[string]string, len(kv)/2)
	for j := 0; j < len(kv); j += 2 {
		m[kv[j]] = kv[j+1]
	}
	return m
}

// Producer sends events to Kafka on behalf of an application. Create it with
// New and stop it with Close. Its methods are safe for concurrent use.
//
// The Producer owns three kinds of goroutines, all ended by Close: one
// flusher, Options.Workers workers, one loss reporter (plus franz-go's).
type Producer struct {
	opts  Options
	cl    *kgo.Client
	arrow bool
	max   int64 // BufferEvents

	mu      sync.Mutex
	tail    *chunk   // receives Emit's events; nil when empty
	full    []*chunk // older chunks, in order
	free    []*chunk // reusable chunks
	pending int      // events in tail and full
	wakeAt  int      // pending count that wakes the flusher early
	closed  bool
	spaceCh chan struct{} // closed when room frees up for blocked Emits

	buffered  atomic.Int64  // accepted and not yet resolved
	drained   chan struct{} // closed when buffered reaches 0 after Close began
	drainOnce sync.Once
	waiters   atomic.Int32 // Emits blocked for room
	sent      atomic.Int64
	failed    atomic.Int64
	dropped   atomic.Int64
	isClosed  atomic.Bool

	wake     chan struct{}        // cap 1: events arrived or wakeAt reached
	flushReq chan chan []*epoch   // Flush asks the flusher for its epochs
	quit     chan struct{}        // closed by Close: drain and stop
	abandon  chan struct{}        // closed when Close gives up: fail what is left
	dropSig  chan struct{}        // cap 1: a drop happened
	evFree   chan []schemas.Event // event slices for batches, for reuse

	flusherDone  chan struct{}
	workersDone  sync.WaitGroup
	reporterDone chan struct{}
	cancel       context.CancelFunc // cancels the Producer's internal context

	errMu     sync.Mutex            // serialises OnError and the loss log
	lossLog   loglimit.Limit        // the loss lines without OnError
	lossN     int64                 // events lost since the last loss line (errMu)
	lossLast  *LossError            // the latest of them (errMu)
	lastFail  atomic.Pointer[error] // the error of the latest failed events
	closeOnce sync.Once
	closeDone chan struct{} // closed when the first Close returns
	closeErr  error         // the first Close's result, set before closeDone
}

// New validates opts, creates the franz-go client and starts the Producer's
// goroutines. It does not contact Kafka: a broker that is down when New is
// called only delays delivery.
func New(opts Options) (*Producer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.Brokers = append([]string(nil), opts.Brokers...)
	p := &Producer{
		opts:         opts,
		arrow:        opts.Encoding == EncodingArrow,
		max:          int64(opts.BufferEvents),
		wakeAt:       opts.BatchEvents,
		wake:         make(chan struct{}, 1),
		flushReq:     make(chan chan []*epoch),
		quit:         make(chan struct{}),
		abandon:      make(chan struct{}),
		dropSig:      make(chan struct{}, 1),
		evFree:       make(chan []schemas.Event, 4*opts.Workers),
		flusherDone:  make(chan struct{}),
		reporterDone: make(chan struct{}),
		drained:      make(chan struct{}),
		closeDone:    make(chan struct{}),
	}
	kopts := append([]kgo.Opt(nil), opts.ClientOptions...)
	kopts = append(kopts,
		kgo.SeedBrokers(opts.Brokers...),
		kgo.DefaultProduceTopic(opts.Topic),
		// Like Kafka's Java producer: a cluster that allows it creates a
		// missing topic (the Arrow path's metadata request asks the same).
		kgo.AllowAutoTopicCreation(),
		// The SDK's buffer bounds every record in flight (each carries at
		// least one event), so Produce never blocks on franz-go's bound.
		kgo.MaxBufferedRecords(opts.BufferEvents+1),
		// Batching happens in the SDK (Linger); adding franz-go's linger
		// would only delay records already batched.
		kgo.ProducerLinger(0),
	)
	if p.arrow {
		kopts = append(kopts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	} else {
		kopts = append(kopts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	}
	if opts.DeliveryTimeout > 0 {
		// Without AllowIdempotentProduceCancellation franz-go never fails a
		// record whose request was written to a connection that then broke
		// (it cannot know whether the broker stored it), so the timeout
		// would not bound anything in exactly the outage it is set for.
		kopts = append(kopts, kgo.RecordDeliveryTimeout(opts.DeliveryTimeout),
			kgo.AllowIdempotentProduceCancellation())
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("cannot create kafka client for brokers %q: %w", strings.Join(opts.Brokers, ","), err)
	}
	p.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	workers := make([]chan *batch, opts.Workers)
	p.workersDone.Add(len(workers))
	for i := range workers {
		workers[i] = make(chan *batch, 2)
		go p.runWorker(ctx, workers[i])
	}
	go p.runFlusher(ctx, workers)
	go p.runReporter()
	return p, nil
}

// Emit validates *e and buffers a copy of it for sending. It returns the
// *schemas.FieldError of an invalid event (which is not sent; a timestamp
// older than Options.MaxEventAge or further than Options.MaxFuture in the
// future is invalid too, and so, in Arrow mode, is a timestamp after
// 2262-04-11, the end of Arrow's timestamp range), ErrClosed after Close,
// and when the buffer is full either ErrBufferFull (Drop policy, the
// default: the event is dropped and counted, and Emit does not wait) or,
// once ctx ends, an error wrapping ctx.Err() (Block policy: the event is
// not buffered). ctx is only used for that wait.
//
// The caller keeps ownership of e and may reuse it as soon as Emit returns:
// the event is copied, including the entries of its Attributes map, so
// later changes to the map do not affect what is sent. A nil error means the event
// is buffered: its fate is then counted in Stats and any loss reported to
// Options.OnError.
func (p *Producer) Emit(ctx context.Context, e *schemas.Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if p.opts.MaxEventAge > 0 || p.opts.MaxFuture > 0 {
		if err := p.checkAge(e.Timestamp); err != nil {
			return err
		}
	}
	if p.arrow && e.Timestamp.After(maxArrowTime) {
		return &schemas.FieldError{Field: "timestamp", Value: e.Timestamp.UTC().Format(time.RFC3339Nano),
			Reason: "after 2262-04-11, the end of the arrow timestamp[ns] range"}
	}
	p.mu.Lock()
	for p.closed || p.buffered.Load() >= p.max {
		if err := p.waitRoom(ctx, e); err != nil {
			return err // unlocked
		}
	}
	p.buffered.Add(1)
	c := p.tail
	if c == nil {
		c = p.newChunk()
		p.tail = c
	}
	c.events = append(c.events, *e)
	if len(e.Attributes) > 0 {
		// Copy the entries, not the map: a map allocation would cost the
		// caller more than the rest of Emit. The flusher rebuilds a map.
		c.events[len(c.events)-1].Attributes = nil
		for k, v := range e.Attributes {
			c.attrs = append(c.attrs, k, v)
		}
	}
	c.attrEnd = append(c.attrEnd, int32(len(c.attrs)))
	if len(c.events) == chunkSize {
		p.full = append(p.full, c)
		p.tail = nil
	}
	p.pending++
	if p.pending == 1 || p.pending == p.wakeAt {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
	return nil
}

// checkAge returns the *schemas.FieldError of a timestamp the aggregator
// would send to the DLQ as too old or too far in the future.
func (p *Producer) checkAge(ts time.Time) error {
	now := time.Now()
	if p.opts.MaxEventAge > 0 && ts.Before(now.Add(-p.opts.MaxEventAge)) {
		return &schemas.FieldError{Field: "timestamp", Value: ts.UTC().Format(time.RFC3339Nano),
			Reason: fmt.Sprintf("older than MaxEventAge (%v): the aggregator would send it to the DLQ as too_old", p.opts.MaxEventAge)}
	}
	if p.opts.MaxFuture > 0 && ts.After(now.Add(p.opts.MaxFuture)) {
		return &schemas.FieldError{Field: "timestamp", Value: ts.UTC().Format(time.RFC3339Nano),
			Reason: fmt.Sprintf("more than MaxFuture (%v) in the future: the aggregator would send it to the DLQ", p.opts.MaxFuture)}
	}
	return nil
}

// maxArrowTime is the last instant an Arrow timestamp[ns] column can hold.
var maxArrowTime = time.Unix(0, 1<<63-1)

// waitRoom is called with p.mu held when Emit cannot append. It returns nil
// with p.mu held when Emit should check again, or an error with p.mu
// released.
func (p *Producer) waitRoom(ctx context.Context, e *schemas.Event) error {
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if p.opts.WhenFull == Drop {
		p.dropped.Add(1)
		select { // under p.mu: Close closes dropSig only after setting p.closed
		case p.dropSig <- struct{}{}:
		default:
		}
		p.mu.Unlock()
		return ErrBufferFull
	}
	// Register as a waiter before checking again: release decrements
	// buffered before it looks for waiters, so one of us sees the other.
	p.waiters.Add(1)
	defer p.waiters.Add(-1)
	if p.buffered.Load() < p.max {
		return nil
	}
	if p.spaceCh == nil {
		p.spaceCh = make(chan struct{})
	}
	ch := p.spaceCh
	p.mu.Unlock()
	select {
	case <-ch:
		p.mu.Lock()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cannot buffer event %q: buffer of %d events full: %w", e.EventID, p.max, ctx.Err())
	}
}

// newChunk returns an empty chunk; p.mu is held.
func (p *Producer) newChunk() *chunk {
	var c *chunk
	if n := len(p.free); n > 0 {
		c = p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
	} else {
		c = &chunk{events: make([]schemas.Event, 0, chunkSize), attrEnd: make([]int32, 0, chunkSize)}
	}
	c.created = time.Now()
	return c
}

// release marks n accepted events as resolved and wakes blocked Emits.
func (p *Producer) release(n int64) {
	if p.buffered.Add(-n) == 0 && p.isClosed.Load() {
		p.drainOnce.Do(func() { close(p.drained) })
	}
	if p.waiters.Load() > 0 {
		p.mu.Lock()
		if p.spaceCh != nil {
			close(p.spaceCh)
			p.spaceCh = nil
		}
		p.mu.Unlock()
	}
}

// Flush sends everything buffered without waiting for Linger and waits until
// every event emitted before the call is acknowledged by Kafka or failed
// (and counted and reported as such). Events emitted during the call may or
// may not be waited for. It returns ctx's error if ctx ends first (the
// events stay buffered), ErrClosed after Close, and a *LossError when
// events failed during the call (counted in Stats.Failed; its Err is the
// error of the latest failure), so that a nil error means nothing failed
// while Flush waited.
func (p *Producer) Flush(ctx context.Context) error {
	if p.isClosed.Load() {
		return ErrClosed
	}
	failedBefore := p.failed.Load()
	reply := make(chan []*epoch, 1)
	select {
	case p.flushReq <- reply:
	case <-p.flusherDone:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("cannot flush: %w", ctx.Err())
	}
	var eps []*epoch
	select {
	case eps = <-reply:
	case <-p.flusherDone: // Close gave up before the flusher answered
		select {
		case eps = <-reply:
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		return fmt.Errorf("cannot flush: %w", ctx.Err())
	}
	for _, ep := range eps {
		select {
		case <-ep.done:
		case <-ctx.Done():
			return fmt.Errorf("cannot flush %d buffered events: %w", p.buffered.Load(), ctx.Err())
		}
	}
	if n := p.failed.Load() - failedBefore; n > 0 {
		return &LossError{Events: n, Topic: p.opts.Topic, Partition: -1, Err: p.lastFailure()}
	}
	return nil
}

// lastFailure returns the error of the latest failed events.
func (p *Producer) lastFailure() error {
	if e := p.lastFail.Load(); e != nil {
		return *e
	}
	return errors.New("delivery failed")
}

// Close stops accepting events, sends everything buffered and waits until
// Kafka acknowledged or failed all of it, then stops the Producer. If ctx
// ends first, or Options.CloseTimeout passes when ctx has no deadline,
// Close gives up: the events not yet acknowledged are failed, counted in
// Stats.Failed and reported to OnError. Close returns nil only when no
// event failed during the call; otherwise a *LossError with the number of
// events that failed or were abandoned, whose Err wraps ctx.Err() (or
// context.DeadlineExceeded for CloseTimeout) when Close gave up, or the
// latest Kafka error. Emit and Flush return ErrClosed once Close has
// begun. Close is safe to call more than once: later calls wait until the
// first returns and return its result (or, if their own ctx ends first,
// an error wrapping ctx.Err()).
func (p *Producer) Close(ctx context.Context) error {
	first := false
	p.closeOnce.Do(func() { first = true })
	if !first {
		select {
		case <-p.closeDone:
			return p.closeErr
		case <-ctx.Done():
			return fmt.Errorf("cannot wait for close: %w", ctx.Err())
		}
	}
	p.closeErr = p.close(ctx)
	close(p.closeDone)
	return p.closeErr
}

// close is the first Close.
func (p *Producer) close(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok && p.opts.CloseTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.opts.CloseTimeout)
		defer cancel()
	}
	failedBefore := p.failed.Load()
	p.mu.Lock()
	p.closed = true
	p.isClosed.Store(true)
	if p.spaceCh != nil {
		close(p.spaceCh)
		p.spaceCh = nil
	}
	p.mu.Unlock()

	close(p.quit) // the flusher drains the buffer, then closes the workers' channels
	var err error
	wait := func(done <-chan struct{}) bool {
		select {
		case <-done:
			return true
		case <-ctx.Done():
			return false
		}
	}
	workersDone := make(chan struct{})
	go func() { p.workersDone.Wait(); close(workersDone) }()
	if !wait(p.flusherDone) || !wait(workersDone) {
		err = fmt.Errorf("cannot send %d buffered events before close: %w", p.buffered.Load(), ctx.Err())
	} else if ferr := p.cl.Flush(ctx); ferr != nil {
		err = fmt.Errorf("cannot deliver %d buffered events before close: %w", p.buffered.Load(), ferr)
	}
	if err != nil {
		close(p.abandon) // the flusher and workers fail what they still hold
		p.cancel()
		<-p.flusherDone
		<-workersDone
	}
	p.cl.Close() // fails every record franz-go still holds
	p.cancel()
	// franz-go calls the promises of the records it failed from its own
	// goroutine, possibly after Close returned: wait for them so Stats and
	// OnError are final when Close returns.
	if p.buffered.Load() == 0 {
		p.drainOnce.Do(func() { close(p.drained) })
	}
	select {
	case <-p.drained:
	case <-time.After(finalPromiseWait):
	}
	close(p.dropSig)
	<-p.reporterDone
	p.logLossAtClose()
	if n := p.failed.Load() - failedBefore; n > 0 {
		if err == nil {
			err = p.lastFailure()
		}
		return &LossError{Events: n, Topic: p.opts.Topic, Partition: -1, Err: err}
	}
	return err
}

// Stats returns the counters. They are read one by one, so under load the
// sum of Sent, Failed and Buffered may be off by the events in transit
// between two counters.
func (p *Producer) Stats() Stats {
	return Stats{
		Sent:     p.sent.Load(),
		Failed:   p.failed.Load(),
		Dropped:  p.dropped.Load(),
		Buffered: p.buffered.Load(),
	}
}

// lossLogEvery is how often at most a Producer without OnError logs its
// losses.
const lossLogEvery = time.Minute

// report passes a loss to OnError, one call at a time, or, without
// OnError, logs it (lossLogEvery at most).
func (p *Producer) report(e *LossError) {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if p.opts.OnError != nil {
		p.opts.OnError(e)
		return
	}
	p.lossN += e.Events
	p.lossLast = e
	if _, prev, due := p.lossLog.Note(time.Now(), lossLogEvery); due {
		p.logLoss(prev)
	}
}

// logLoss logs the events lost since the last line (prev: when it was;
// zero for none) and forgets them. errMu is held.
func (p *Producer) logLoss(prev time.Time) {
	if p.lossN == 0 {
		return
	}
	l := p.opts.Logger
	if l == nil {
		l = slog.Default()
	}
	attrs := []any{"events", p.lossN, "topic", p.opts.Topic, "latest", p.lossLast.Error()}
	if !prev.IsZero() {
		attrs = append(attrs, "in_the_last", time.Since(prev).Round(time.Second))
	}
	l.Warn("costpipe producer lost events (set Options.OnError to handle each loss)", attrs...)
	p.lossN, p.lossLast = 0, nil
}

// logLossAtClose logs the losses not logged yet, without OnError.
func (p *Producer) logLossAtClose() {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if p.opts.OnError == nil {
		_, prev := p.lossLog.Reset()
		p.logLoss(prev)
	}
}

// fail counts n accepted events as failed and reports them.
func (p *Producer) fail(n int64, partition int32, err error) {
	if n == 0 {
		return
	}
	p.lastFail.Store(&err)
	p.failed.Add(n)
	p.report(&LossError{Events: n, Topic: p.opts.Topic, Partition: partition, Err: err})
	p.release(n)
}

// runReporter reports drops, aggregated, at most once a second. It returns
// when Close closes dropSig, after a final report.
func (p *Producer) runReporter() {
	defer close(p.reporterDone)
	var reported int64
	flush := func() {
		if d := p.dropped.Load(); d > reported {
			p.report(&LossError{Events: d - reported, Topic: p.opts.Topic, Partition: -1, Err: ErrBufferFull})
			reported = d
		}
	}
	t := time.NewTimer(0)
	<-t.C
	for range p.dropSig {
		flush()
		t.Reset(time.Second)
		select {
		case <-t.C:
		case <-p.quit:
			t.Stop()
		}
	}
	flush()
}
