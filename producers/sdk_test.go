package producers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/broker"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/internal/nolisten"
	"github.com/costpipe/costpipe/schemas"
	"github.com/costpipe/costpipe/schemas/arrowcodec"
)

var (
	// testT0 is an hour ago, whole milliseconds: test events must pass
	// Options.MaxEventAge and MaxFuture.
	testT0     = time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	testModels = []struct{ provider, model string }{
		{"openai", "gpt-4o"}, {"anthropic", "claude-sonnet-4-5-20250929"},
		{"google", "gemini-2.5-flash"}, {"openai", "o4-mini"},
	}
)

// testEvent returns valid event i: id "e-%06d", 5 tenants × 4 models.
func testEvent(i int) schemas.Event {
	m := testModels[i%len(testModels)]
	e := schemas.Event{
		EventID:     fmt.Sprintf("e-%06d", i),
		Timestamp:   testT0.Add(time.Duration(i) * time.Millisecond),
		Tenant:      fmt.Sprintf("tenant-%d", i/len(testModels)%5),
		Provider:    m.provider,
		Model:       m.model,
		Status:      schemas.StatusOK,
		Application: "chat",
		InputTokens: int64(100 + i%900), CachedInputTokens: int64(i % 50),
		OutputTokens: int64(10 + i%300),
		LatencyMs:    float64(200 + i%1000), HasLatency: true,
		TTFTMs: float64(20 + i%100), HasTTFT: true,
	}
	if i%7 == 0 {
		e.Status, e.ErrorType = schemas.StatusError, "timeout"
	}
	if i%5 == 0 {
		e.Attributes = map[string]string{"tier": "pro", "n": fmt.Sprint(i)}
	}
	return e
}

// got is one event read back from Kafka with where it was found.
type got struct {
	ev          schemas.Event
	partition   int32
	offset      int64
	row         int
	key         string
	contentType string
}

// consume reads topic from the start until it has want events (then reads
// on for a short while, to catch duplicates) or wait passes. It decodes
// JSON and Arrow records by their content-type header.
func consume(t *testing.T, addr, topic string, want int, wait time.Duration) []got {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []got
	deadline := time.Now().Add(wait)
	var extra time.Time
	dec := arrowcodec.NewDecoder()
	for time.Now().Before(deadline) {
		if len(out) >= want {
			if extra.IsZero() {
				extra = time.Now().Add(300 * time.Millisecond)
			} else if time.Now().After(extra) {
				break
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			ct := ""
			for _, h := range r.Headers {
				if h.Key == schemas.HeaderContentType {
					ct = string(h.Value)
				}
			}
			switch ct {
			case schemas.ContentTypeArrow:
				row := 0
				if err := dec.Decode(r.Value, func(e schemas.Event) error {
					out = append(out, got{e, r.Partition, r.Offset, row, string(r.Key), ct})
					row++
					return nil
				}, nil); err != nil {
					t.Errorf("cannot decode arrow record at %d/%d: %v", r.Partition, r.Offset, err)
				}
			default:
				var e schemas.Event
				if err := schemas.DecodeJSON(r.Value, &e); err != nil {
					t.Errorf("cannot decode json record at %d/%d: %v", r.Partition, r.Offset, err)
				}
				out = append(out, got{e, r.Partition, r.Offset, 0, string(r.Key), ct})
			}
		})
	}
	return out
}

// newTestProducer starts a Producer for addr and closes it at cleanup.
func newTestProducer(t *testing.T, addr string, edit func(*Options)) *Producer {
	t.Helper()
	o := DefaultOptions()
	o.Brokers = []string{addr}
	o.Linger = 2 * time.Millisecond
	if edit != nil {
		edit(&o)
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // tests flush what they check; this only stops the Producer
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

func emitN(t *testing.T, p *Producer, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		e := testEvent(i)
		if err := p.Emit(context.Background(), &e); err != nil {
			t.Fatalf("emit %d: %v", i, err)
		}
	}
}

func flush(t *testing.T, p *Producer, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("flush: %v (stats %+v)", err, p.Stats())
	}
}

// checkDelivered asserts that events from..from+n-1 arrived exactly once,
// equal to what was emitted, with the encoding's headers and keys, each key
// on one partition and in emit order.
func checkDelivered(t *testing.T, gs []got, from, n int, enc Encoding) {
	t.Helper()
	checkDeliveredBy(t, gs, from, n, enc, 0)
}

// checkDeliveredBy is checkDelivered for events emitted by several
// goroutines, each emitting a range of perGoroutine event indexes in order
// (0: one goroutine). Order is checked per key and goroutine.
func checkDeliveredBy(t *testing.T, gs []got, from, n int, enc Encoding, perGoroutine int) {
	t.Helper()
	seen := map[string]int{}
	keyPart := map[string]int32{}
	last := map[string]int{} // per key, the last event index read
	for _, g := range gs {
		seen[g.ev.EventID]++
		var i int
		if _, err := fmt.Sscanf(g.ev.EventID, "e-%d", &i); err != nil {
			t.Fatalf("unexpected event_id %q", g.ev.EventID)
		}
		want := testEvent(i)
		if !g.ev.Equal(&want) {
			t.Errorf("event %s read back as %+v, want %+v", g.ev.EventID, g.ev, want)
		}
		key := want.Tenant + "\x00" + want.Model
		switch enc {
		case EncodingJSON:
			if g.contentType != schemas.ContentTypeJSON || g.key != key {
				t.Errorf("event %s: content-type %q key %q, want %q %q", g.ev.EventID, g.contentType, g.key, schemas.ContentTypeJSON, key)
			}
		case EncodingArrow:
			if g.contentType != schemas.ContentTypeArrow || g.key != "" {
				t.Errorf("event %s: content-type %q key %q, want %q and no key", g.ev.EventID, g.contentType, g.key, schemas.ContentTypeArrow)
			}
		}
		if p, ok := keyPart[key]; ok && p != g.partition {
			t.Errorf("key %q on partitions %d and %d", key, p, g.partition)
		}
		keyPart[key] = g.partition
		// A partition is read in offset order and a record in row order,
		// so one key's events must come in emit order.
		if perGoroutine > 0 {
			key += "/" + fmt.Sprint(i/perGoroutine)
		}
		if l, ok := last[key]; ok && i <= l {
			t.Errorf("key %q: event %d read after event %d", key, i, l)
		}
		last[key] = i
	}
	for i := from; i < from+n; i++ {
		if c := seen[fmt.Sprintf("e-%06d", i)]; c != 1 {
			t.Errorf("event e-%06d delivered %d times, want once", i, c)
		}
	}
	if len(gs) != n {
		t.Errorf("read %d events, want %d", len(gs), n)
	}
}

func TestProducerDelivers(t *testing.T) {
	t.Parallel()
	for _, enc := range []Encoding{EncodingJSON, EncodingArrow} {
		t.Run(string(enc), func(t *testing.T) {
			b := kafkatest.Start(t, 3)
			p := newTestProducer(t, b.Addr(), func(o *Options) {
				o.Encoding = enc
				o.BatchEvents = 64 // several records per partition
				o.Workers = 2
			})
			emitN(t, p, 0, 1000)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if s := p.Stats(); s != (Stats{Sent: 1000}) {
				t.Errorf("stats %+v, want 1000 sent and nothing else", s)
			}
			checkDelivered(t, consume(t, b.Addr(), schemas.DefaultTopic, 1000, 20*time.Second), 0, 1000, enc)
		})
	}
}

// TestArrowPartitionsLikeJSON checks the contract's "one key's events stay on
// one partition" across encodings: for every key, the Arrow producer picks
// the partition Kafka's key partitioner picked for its JSON records.
func TestArrowPartitionsLikeJSON(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 7)
	const n = 2000
	for _, enc := range []Encoding{EncodingJSON, EncodingArrow} {
		p := newTestProducer(t, b.Addr(), func(o *Options) {
			o.Encoding = enc
			o.Topic = "parts-" + string(enc)
		})
		// Many distinct keys: tenant varies per event.
		for i := 0; i < n; i++ {
			e := testEvent(i)
			e.Tenant = fmt.Sprintf("tenant-%d", i)
			if err := p.Emit(context.Background(), &e); err != nil {
				t.Fatal(err)
			}
		}
		flush(t, p, 20*time.Second)
		if s := p.Stats(); s != (Stats{Sent: n}) {
			t.Fatalf("%s: stats %+v, want %d sent", enc, s, n)
		}
	}
	jsonPart := map[string]int32{}
	js := consume(t, b.Addr(), "parts-json", n, 20*time.Second)
	t.Logf("read %d json events", len(js))
	for _, g := range js {
		jsonPart[g.ev.Tenant+"\x00"+g.ev.Model] = g.partition
	}
	arrow := consume(t, b.Addr(), "parts-arrow", n, 20*time.Second)
	used := map[int32]bool{}
	for _, g := range arrow {
		k := g.ev.Tenant + "\x00" + g.ev.Model
		jp, ok := jsonPart[k]
		if !ok {
			t.Fatalf("key %q missing from the json topic", k)
		}
		if g.partition != jp {
			t.Errorf("key %q: arrow partition %d, json partition %d", k, g.partition, jp)
		}
		used[g.partition] = true
	}
	if len(arrow) != n || len(jsonPart) != n {
		t.Errorf("read %d arrow events and %d json keys, want %d", len(arrow), len(jsonPart), n)
	}
	if len(used) != 7 {
		t.Errorf("arrow events used %d partitions, want all 7", len(used))
	}
}

func TestEmitInvalidSendsNothing(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 1)
	p := newTestProducer(t, b.Addr(), nil)
	bad := testEvent(1)
	bad.ReasoningTokens = bad.OutputTokens + 1
	err := p.Emit(context.Background(), &bad)
	var fe *schemas.FieldError
	if !errors.As(err, &fe) || fe.Field != "reasoning_tokens" {
		t.Fatalf("Emit(invalid) = %v, want a *schemas.FieldError for reasoning_tokens", err)
	}
	good := testEvent(2)
	if err := p.Emit(context.Background(), &good); err != nil {
		t.Fatal(err)
	}
	flush(t, p, 10*time.Second)
	if s := p.Stats(); s != (Stats{Sent: 1}) {
		t.Errorf("stats %+v, want exactly 1 sent", s)
	}
	gs := consume(t, b.Addr(), schemas.DefaultTopic, 1, 10*time.Second)
	if len(gs) != 1 || gs[0].ev.EventID != good.EventID {
		t.Errorf("topic holds %d events (%v), want only %q", len(gs), gs, good.EventID)
	}
}

func TestEmitInvalidArrowTimestamp(t *testing.T) {
	t.Parallel()
	p := newTestProducer(t, deadAddr(t), func(o *Options) { o.Encoding = EncodingArrow })
	e := testEvent(1)
	e.Timestamp = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) // valid JSON, beyond Arrow's range
	var fe *schemas.FieldError
	if err := p.Emit(context.Background(), &e); !errors.As(err, &fe) || fe.Field != "timestamp" {
		t.Fatalf("Emit = %v, want a *schemas.FieldError for timestamp", err)
	}
	if s := p.Stats(); s != (Stats{}) {
		t.Errorf("stats %+v, want zero", s)
	}
}

// TestEmitCopies checks that the caller may reuse its event and mutate its
// attributes right after Emit.
func TestEmitCopies(t *testing.T) {
	t.Parallel()
	for _, enc := range []Encoding{EncodingJSON, EncodingArrow} {
		t.Run(string(enc), func(t *testing.T) {
			b := kafkatest.Start(t, 2)
			p := newTestProducer(t, b.Addr(), func(o *Options) { o.Encoding = enc; o.Linger = 50 * time.Millisecond })
			var e schemas.Event
			attrs := map[string]string{}
			for i := 0; i < 100; i++ {
				e = testEvent(i * 5) // every one has attributes
				clear(attrs)
				for k, v := range e.Attributes {
					attrs[k] = v
				}
				e.Attributes = attrs
				if err := p.Emit(context.Background(), &e); err != nil {
					t.Fatal(err)
				}
				attrs["tier"] = "mutated"
				e.Tenant = "mutated"
			}
			flush(t, p, 10*time.Second)
			gs := consume(t, b.Addr(), schemas.DefaultTopic, 100, 10*time.Second)
			if len(gs) != 100 {
				t.Fatalf("read %d events, want 100", len(gs))
			}
			for _, g := range gs {
				var i int
				fmt.Sscanf(g.ev.EventID, "e-%d", &i)
				want := testEvent(i)
				if !g.ev.Equal(&want) {
					t.Errorf("event %s = %+v, want %+v", g.ev.EventID, g.ev, want)
				}
			}
		})
	}
}

// deadAddr returns a 127.0.0.1 address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	return nolisten.Addr(t)
}

// losses collects what OnError reports.
type losses struct {
	mu     sync.Mutex
	events map[string]int64 // by kind: "drop" or "fail"
	errs   []*LossError
}

func (l *losses) onError(e *LossError) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.events == nil {
		l.events = map[string]int64{}
	}
	kind := "fail"
	if errors.Is(e, ErrBufferFull) {
		kind = "drop"
	}
	l.events[kind] += e.Events
	l.errs = append(l.errs, e)
}

func (l *losses) count(kind string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.events[kind]
}

func TestDropPolicyCountsExactly(t *testing.T) {
	t.Parallel()
	var l losses
	p, err := New(func() Options {
		o := DefaultOptions()
		o.Brokers = []string{deadAddr(t)}
		o.BufferEvents, o.BatchEvents = 100, 10
		o.WhenFull = Drop
		o.OnError = l.onError
		return o
	}())
	if err != nil {
		t.Fatal(err)
	}
	var accepted, refused int
	for i := 0; i < 250; i++ {
		e := testEvent(i)
		switch err := p.Emit(context.Background(), &e); {
		case err == nil:
			accepted++
		case errors.Is(err, ErrBufferFull):
			refused++
		default:
			t.Fatalf("emit %d: %v", i, err)
		}
	}
	if accepted != 100 || refused != 150 {
		t.Errorf("accepted %d, refused %d; want 100 and 150", accepted, refused)
	}
	if s := p.Stats(); s != (Stats{Dropped: 150, Buffered: 100}) {
		t.Errorf("stats %+v, want 150 dropped and 100 buffered", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want a deadline error (the broker is down)", err)
	}
	if s := p.Stats(); s != (Stats{Dropped: 150, Failed: 100}) {
		t.Errorf("stats after close %+v, want 150 dropped and 100 failed", s)
	}
	if d, f := l.count("drop"), l.count("fail"); d != 150 || f != 100 {
		t.Errorf("OnError reported %d dropped and %d failed events, want 150 and 100", d, f)
	}
}

func TestBlockPolicyHonorsContext(t *testing.T) {
	t.Parallel()
	p := newTestProducer(t, deadAddr(t), func(o *Options) { o.BufferEvents, o.BatchEvents, o.WhenFull = 10, 5, Block })
	emitN(t, p, 0, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	e := testEvent(10)
	dl, _ := ctx.Deadline()
	err := p.Emit(ctx, &e)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Emit on a full buffer = %v, want a deadline error", err)
	}
	// Against the deadline itself: the goroutine may be descheduled
	// between making ctx and calling Emit on a loaded machine.
	if early := time.Until(dl); early > 0 {
		t.Errorf("Emit returned %v before its ctx ended", early)
	}
	if s := p.Stats(); s != (Stats{Buffered: 10}) {
		t.Errorf("stats %+v, want 10 buffered", s)
	}
}

// restartable is a broker that can be stopped and started again on the same
// address with the same data.
type restartable struct {
	t    *testing.T
	opts broker.Options
	b    *broker.Broker
}

func startRestartable(t *testing.T, partitions int) *restartable {
	opts := broker.DefaultOptions()
	opts.Listen = "127.0.0.1:0"
	opts.Partitions = partitions
	opts.DataDir = t.TempDir()
	r := &restartable{t: t, opts: opts}
	r.start()
	r.opts.Listen = r.b.Addr() // keep the port for restarts
	t.Cleanup(func() { r.b.Close() })
	return r
}

func (r *restartable) start() {
	var err error
	for i := 0; i < 50; i++ { // the port may take a moment to free up
		if r.b, err = broker.Start(r.opts); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("cannot restart broker: %v", err)
}

func TestOutageDeliversExactlyOnce(t *testing.T) {
	t.Parallel()
	for _, enc := range []Encoding{EncodingJSON, EncodingArrow} {
		t.Run(string(enc), func(t *testing.T) {
			r := startRestartable(t, 3)
			var l losses
			p := newTestProducer(t, r.b.Addr(), func(o *Options) {
				o.Encoding = enc
				o.BatchEvents = 100
				o.OnError = l.onError
			})
			emitN(t, p, 0, 1000)
			flush(t, p, 10*time.Second)

			r.b.Close() // outage
			emitN(t, p, 1000, 1000)
			time.Sleep(500 * time.Millisecond) // let the client fail to send a few times
			if s := p.Stats(); s.Sent != 1000 || s.Buffered != 1000 {
				t.Errorf("stats during the outage %+v, want 1000 sent and 1000 buffered", s)
			}
			r.start()
			flush(t, p, 30*time.Second)
			if s := p.Stats(); s != (Stats{Sent: 2000}) {
				t.Errorf("stats %+v, want 2000 sent", s)
			}
			if len(l.errs) > 0 {
				t.Errorf("OnError called: %v", l.errs[0])
			}
			checkDelivered(t, consume(t, r.b.Addr(), schemas.DefaultTopic, 2000, 30*time.Second), 0, 2000, enc)
		})
	}
}

func TestOutageWithDeliveryTimeoutReportsFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		enc       Encoding
		connected bool // the broker was up before the outage
	}{
		{"json", EncodingJSON, true},
		{"arrow", EncodingArrow, true},
		{"json-never-connected", EncodingJSON, false},
		{"arrow-never-connected", EncodingArrow, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := deadAddr(t)
			var b *broker.Broker
			if tc.connected {
				b = kafkatest.Start(t, 3)
				addr = b.Addr()
			}
			var l losses
			p := newTestProducer(t, addr, func(o *Options) {
				o.Encoding = tc.enc
				o.DeliveryTimeout = time.Second
				o.OnError = l.onError
			})
			if tc.connected {
				emitN(t, p, 0, 100)
				flush(t, p, 10*time.Second)
				b.Close()
			}
			emitN(t, p, 100, 300)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var le *LossError
			if err := p.Flush(ctx); !errors.As(err, &le) || le.Events != 300 {
				t.Errorf("Flush = %v, want a *LossError for 300 events", err)
			}
			want := Stats{Failed: 300}
			if tc.connected {
				want.Sent = 100
			}
			if s := p.Stats(); s != want {
				t.Errorf("stats %+v, want %+v", s, want)
			}
			if f := l.count("fail"); f != 300 {
				t.Errorf("OnError reported %d failed events, want 300", f)
			}
			for _, e := range l.errs {
				if e.Err == nil || !strings.HasPrefix(e.Error(), "cannot deliver") {
					t.Errorf("loss error %q, want a reason", e)
				}
			}
		})
	}
}

func TestCloseGivesUpAndReports(t *testing.T) {
	t.Parallel()
	var l losses
	p := newTestProducer(t, deadAddr(t), func(o *Options) { o.OnError = l.onError })
	emitN(t, p, 0, 50)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := p.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want a deadline error", err)
	}
	var le *LossError
	if !errors.As(err, &le) || le.Events != 50 {
		t.Errorf("Close = %v, want a *LossError for 50 events", err)
	}
	if s := p.Stats(); s != (Stats{Failed: 50}) {
		t.Errorf("stats %+v, want 50 failed", s)
	}
	if f := l.count("fail"); f != 50 {
		t.Errorf("OnError reported %d failed events, want 50", f)
	}
}

func TestCloseTwiceThenEmit(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 1)
	p := newTestProducer(t, b.Addr(), nil)
	emitN(t, p, 0, 10)
	ctx := context.Background()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	e := testEvent(99)
	if err := p.Emit(ctx, &e); !errors.Is(err, ErrClosed) {
		t.Errorf("Emit after Close = %v, want ErrClosed", err)
	}
	if err := p.Flush(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
	if s := p.Stats(); s != (Stats{Sent: 10}) {
		t.Errorf("stats %+v, want 10 sent", s)
	}
}

// TestBlockedEmitResumes checks that Emits blocked on a full buffer go on
// once the broker is reachable again, and that everything arrives.
func TestBlockedEmitResumes(t *testing.T) {
	t.Parallel()
	r := startRestartable(t, 2)
	r.b.Close()
	p := newTestProducer(t, r.opts.Listen, func(o *Options) { o.BufferEvents, o.BatchEvents, o.WhenFull = 50, 10, Block })
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 500; i++ {
			e := testEvent(i)
			if err := p.Emit(context.Background(), &e); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	time.Sleep(300 * time.Millisecond)
	if s := p.Stats(); s.Buffered != 50 || s.Sent != 0 {
		t.Errorf("stats while the broker is down %+v, want 50 buffered", s)
	}
	r.start()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Emit still blocked; stats %+v", p.Stats())
	}
	flush(t, p, 30*time.Second)
	checkDelivered(t, consume(t, r.b.Addr(), schemas.DefaultTopic, 500, 30*time.Second), 0, 500, EncodingJSON)
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string // substring of the error; "" means valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"no brokers", func(o *Options) { o.Brokers = nil }, "without brokers"},
		{"empty broker", func(o *Options) { o.Brokers = []string{" "} }, `broker " "`},
		{"no topic", func(o *Options) { o.Topic = "" }, `topic ""`},
		{"topic space", func(o *Options) { o.Topic = "cost events" }, `topic "cost events"`},
		{"topic slash", func(o *Options) { o.Topic = "costpipe/events" }, `topic "costpipe/events"`},
		{"topic non-ascii", func(o *Options) { o.Topic = "événements" }, `topic "événements"`},
		{"topic dot", func(o *Options) { o.Topic = ".." }, `topic ".."`},
		{"topic long", func(o *Options) { o.Topic = strings.Repeat("a", 250) }, "1 to 249"},
		{"topic max", func(o *Options) { o.Topic = strings.Repeat("a", 249) }, ""},
		{"topic chars", func(o *Options) { o.Topic = "Cost_pipe-2.events" }, ""},
		{"max event age", func(o *Options) { o.MaxEventAge = -1 }, "max event age"},
		{"max future", func(o *Options) { o.MaxFuture = -1 }, "max future"},
		{"close timeout", func(o *Options) { o.CloseTimeout = -1 }, "close timeout"},
		{"encoding", func(o *Options) { o.Encoding = "avro" }, `encoding "avro"`},
		{"linger", func(o *Options) { o.Linger = -1 }, "linger"},
		{"buffer", func(o *Options) { o.BufferEvents = 0 }, "buffer of 0"},
		{"batch over buffer", func(o *Options) { o.BufferEvents, o.BatchEvents = 10, 11 }, "batches of 11"},
		{"policy", func(o *Options) { o.WhenFull = "wait" }, `policy "wait"`},
		{"timeout", func(o *Options) { o.DeliveryTimeout = time.Millisecond }, "delivery timeout 1ms"},
		{"workers", func(o *Options) { o.Workers = 0 }, "0 workers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.edit(&o)
			err := o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
			if _, err := New(o); err == nil {
				t.Fatal("New accepted invalid options")
			}
		})
	}
}

// TestConcurrentEmitAndFlush emits from several goroutines while others
// flush, with a buffer small enough to block, and checks that every event
// arrives once.
func TestConcurrentEmitAndFlush(t *testing.T) {
	t.Parallel()
	for _, enc := range []Encoding{EncodingJSON, EncodingArrow} {
		t.Run(string(enc), func(t *testing.T) {
			b := kafkatest.Start(t, 4)
			p := newTestProducer(t, b.Addr(), func(o *Options) {
				o.Encoding = enc
				o.BufferEvents, o.BatchEvents = 500, 50
				o.WhenFull = Block
				o.Workers = 3
			})
			const goroutines, per = 6, 1000
			var wg sync.WaitGroup
			for g := 0; g < goroutines; g++ {
				wg.Add(2)
				go func() {
					defer wg.Done()
					for i := g * per; i < (g+1)*per; i++ {
						e := testEvent(i)
						if err := p.Emit(context.Background(), &e); err != nil {
							t.Error(err)
							return
						}
					}
				}()
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					if err := p.Flush(ctx); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			flush(t, p, 20*time.Second)
			if s := p.Stats(); s != (Stats{Sent: goroutines * per}) {
				t.Errorf("stats %+v, want %d sent", s, goroutines*per)
			}
			checkDeliveredBy(t, consume(t, b.Addr(), schemas.DefaultTopic, goroutines*per, 20*time.Second), 0, goroutines*per, enc, per)
		})
	}
}
