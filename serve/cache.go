package serve

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// answerCache holds rendered API answers for a short time and lets
// concurrent identical requests share one computation. A dashboard's
// panels, several people looking at the same page and its refreshes ask
// the same questions again and again; a 30-day usage answer costs ClickHouse
// a few hundred milliseconds on its histograms, while the data under it
// changes once per aggregator flush (5 s by default). With a TTL of about
// one flush interval an answer is at most as stale as the rollups already
// are.
//
// The key is the endpoint, the key's tenant (a tenant key's answers are
// never served to another key), the canonical query string and the format,
// so isolation does not depend on the cache. Entries are found by the
// key's SHA-256 digest: a key carries the whole query string (up to 64 KiB
// of headers), and kept as such it took far more memory than the answers
// the bound counts. Only successful answers are kept; the cache is bounded
// in bytes (each entry's body and entryOverhead) and in entries.
//
// A computation runs for the requests waiting for it: each waits on its
// own context too, and when the last has gone (a client that left, a
// dashboard that aborted its batch) the computation is cancelled instead
// of holding a slot until its deadline.
type answerCache struct {
	ttl      time.Duration
	maxBytes int
	now      func() time.Time
	// maxFlight bounds how long requests joining a computation can keep
	// it running (0: as long as one waits): a question that never ends
	// does not hold a slot for as long as a dashboard keeps asking it.
	maxFlight time.Duration

	mu       sync.Mutex
	entries  map[digest]*cached
	order    []*cached // insertion order, which is expiry order: every entry has the same TTL
	bytes    int
	inflight map[digest]*flight
}

// digest is a cache key's SHA-256.
type digest [sha256.Size]byte

// rendered is an answer: its body and content type and, when this request
// computed it, the time it waited for a slot and the time its queries and
// rendering took.
type rendered struct {
	body       []byte
	ctype      string
	wait, work time.Duration
}

// cached is one rendered answer kept under key.
type cached struct {
	key     digest
	body    []byte
	ctype   string
	expires time.Time
	gone    bool // replaced or evicted: its place in order is stale
}

// size is what e counts against the bound.
func (e *cached) size() int { return len(e.body) + entryOverhead }

// entryOverhead is what an entry takes besides its body: the map's and
// the order's slots, the digest, the struct (about 150 bytes, rounded up).
const entryOverhead = 256

// flight is a computation the requests for the same key wait on. waiters
// and the inflight entry are guarded by the cache's mu; the result is
// written before done is closed.
type flight struct {
	done    chan struct{}
	cancel  context.CancelCauseFunc // cancels the computation
	waiters int
	r       rendered
	err     error
	// deadline is the latest of its waiters' deadlines (at most limit,
	// the cache's maxFlight after it began; zero: none), at which timer
	// cancels the computation (errFlightDeadline): a request that joins
	// it keeps its own time, not the first requester's. Each waiter still
	// leaves at its own.
	deadline, limit time.Time
	timer           *time.Timer
	ctx             context.Context // the computation's: done once it is cancelled
	asOf            time.Time       // the computing request's "now": the answer expires ttl after it
}

// errFlightDeadline is the cause of a computation cancelled at the latest
// deadline of the requests waiting for it. It is a
// context.DeadlineExceeded.
var errFlightDeadline = fmt.Errorf("the deadline of every request waiting for the answer passed: %w", context.DeadlineExceeded)

// maxCacheEntries bounds the entries whatever their size.
const maxCacheEntries = 4096

// errAbandoned is the cause of a computation cancelled because every
// request waiting for it has gone. It is a context.Canceled.
var errAbandoned = fmt.Errorf("every request waiting for the answer has gone: %w", context.Canceled)

func newAnswerCache(ttl time.Duration, maxBytes int, now func() time.Time) *answerCache {
	return &answerCache{ttl: ttl, maxBytes: maxBytes, now: now,
		entries: map[digest]*cached{}, inflight: map[digest]*flight{}}
}

// cacheResult says how an answer was obtained.
type cacheResult string

const (
	cacheHit    cacheResult = "hit"    // from the cache
	cacheShared cacheResult = "shared" // computed by a concurrent identical request
	cacheMiss   cacheResult = "miss"   // computed by this request
)

// panicError is a computation that panicked: answered 500, and the log
// has the value and the stack (classify).
type panicError struct {
	value any
	stack []byte
}

// Error says what panicked.
func (e *panicError) Error() string { return fmt.Sprintf("computing the answer panicked: %v", e.value) }

// maxStack bounds the stack a panicError keeps.
const maxStack = 64 << 10

// protect runs compute, turning a panic into a *panicError with the stack.
func protect(ctx context.Context, compute func(context.Context) (rendered, error)) (r rendered, err error) {
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			r, err = rendered{}, &panicError{value: v, stack: stack[:min(len(stack), maxStack)]}
		}
	}()
	return compute(ctx)
}

// get returns key's answer as of asOf (the request's "now", which its
// question was read at): cached, shared with a computation in flight, or
// computed by compute by deadline (and kept until asOf + ttl when it
// succeeds). A computation runs in its own goroutine under ctx's values but
// not its cancellation, until the latest deadline of the requests waiting
// for it; get returns when it is done or when ctx ends (with
// context.Cause(ctx)), and the last waiter to leave cancels it. A panic in
// compute is a *panicError. A nil cache computes under ctx, by deadline.
func (c *answerCache) get(ctx context.Context, key string, asOf, deadline time.Time, compute func(context.Context) (rendered, error)) (rendered, cacheResult, error) {
	if c == nil {
		ctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		r, err := protect(ctx, compute)
		return r, cacheMiss, err
	}
	k := digest(sha256.Sum256([]byte(key)))
	c.mu.Lock()
	if e, ok := c.entries[k]; ok && c.now().Before(e.expires) {
		r := rendered{body: e.body, ctype: e.ctype}
		c.mu.Unlock()
		return r, cacheHit, nil
	}
	how := cacheShared
	f, ok := c.inflight[k]
	if ok && f.ctx.Err() != nil {
		ok = false // cancelled (its deadline passed), ending: start afresh
	}
	if !ok {
		how = cacheMiss
		fctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
		var limit time.Time // none
		if c.maxFlight > 0 {
			limit = time.Now().Add(c.maxFlight)
		}
		f = &flight{done: make(chan struct{}), cancel: cancel, ctx: fctx, deadline: deadline, limit: limit, asOf: asOf}
		f.timer = time.AfterFunc(time.Until(deadline), func() { c.expire(k, f) })
		c.inflight[k] = f
		go c.compute(fctx, k, f, compute)
	} else if d := deadline; d.After(f.deadline) {
		if !f.limit.IsZero() && d.After(f.limit) {
			d = f.limit
		}
		f.deadline = d
		f.timer.Reset(time.Until(d))
	}
	f.waiters++
	c.mu.Unlock()

	own := time.NewTimer(time.Until(deadline))
	defer own.Stop()
	var leave error
	select {
	case <-f.done:
		return f.result(how)
	case <-ctx.Done():
		leave = context.Cause(ctx)
	case <-own.C:
		// This request's time is up; the computation goes on for the
		// others waiting for it, if any.
		leave = context.DeadlineExceeded
	}
	c.mu.Lock()
	if f.waiters--; f.waiters == 0 {
		// Nobody waits any more: a request arriving now starts afresh
		// rather than join a cancelled computation.
		if c.inflight[k] == f {
			delete(c.inflight, k)
		}
		f.cancel(errAbandoned)
	}
	c.mu.Unlock()
	select {
	case <-f.done: // done too: the answer is there
		return f.result(how)
	default:
		return rendered{}, how, leave
	}
}

// expire cancels f (key k) at its deadline, unless a request that joined
// it moved the deadline meanwhile; a cancelled flight leaves the flights,
// so that a request arriving while it winds down starts afresh.
func (c *answerCache) expire(k digest, f *flight) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if left := time.Until(f.deadline); left > 0 {
		f.timer.Reset(left)
		return
	}
	if c.inflight[k] == f {
		delete(c.inflight, k)
	}
	f.cancel(errFlightDeadline)
}

// result is f's answer, obtained as how; only a miss has its timings.
func (f *flight) result(how cacheResult) (rendered, cacheResult, error) {
	r := f.r
	if how != cacheMiss {
		r.wait, r.work = 0, 0
	}
	return r, how, f.err
}

// compute runs f's computation and then, whatever happened (also a
// panic), removes f from the flights, keeps a successful answer and closes
// f.done.
func (c *answerCache) compute(ctx context.Context, k digest, f *flight, compute func(context.Context) (rendered, error)) {
	defer func() {
		if v := recover(); v != nil { // not compute's (protect): the cache's own
			f.r, f.err = rendered{}, &panicError{value: v, stack: debug.Stack()}
		}
		c.mu.Lock()
		if c.inflight[k] == f {
			delete(c.inflight, k)
		}
		// Kept only when it succeeded uncancelled: a computation abandoned
		// midway may have been answered without one of its parts (a
		// look that the cancellation cut short and that degrades quietly).
		if expires := f.asOf.Add(c.ttl); f.err == nil && ctx.Err() == nil && c.now().Before(expires) {
			c.put(k, &cached{key: k, body: f.r.body, ctype: f.r.ctype, expires: expires})
		}
		f.timer.Stop()
		c.mu.Unlock()
		f.cancel(nil)
		close(f.done)
	}()
	f.r, f.err = protect(ctx, compute)
}

// put stores e under k, evicting the expired entries (from the front of
// order: every entry has the same TTL) and then the oldest until it fits.
// Called with mu held.
func (c *answerCache) put(k digest, e *cached) {
	if e.size() > c.maxBytes/4 {
		return // one answer never takes more than a quarter of the cache
	}
	if old, ok := c.entries[k]; ok {
		c.remove(old)
	}
	now := c.now()
	for len(c.order) > 0 && (c.order[0].gone || !now.Before(c.order[0].expires)) {
		c.pop()
	}
	for len(c.order) > 0 && (c.bytes+e.size() > c.maxBytes || len(c.entries) >= maxCacheEntries) {
		c.pop()
	}
	c.entries[k] = e
	c.order = append(c.order, e)
	c.bytes += e.size()
}

// pop removes the oldest place in order and its entry, if still there.
// Called with mu held.
func (c *answerCache) pop() {
	e := c.order[0]
	c.order[0] = nil // no longer keeps its body alive
	c.order = c.order[1:]
	if !e.gone {
		c.remove(e)
	}
}

// remove drops e from the entries; its place in order goes when it reaches
// the front. Called with mu held.
func (c *answerCache) remove(e *cached) {
	delete(c.entries, e.key)
	c.bytes -= e.size()
	e.gone = true
	e.body = nil
}
