package serve

import (
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
// so isolation does not depend on the cache. Only successful answers are
// kept; the cache is bounded in bytes and in entries.
type answerCache struct {
	ttl      time.Duration
	maxBytes int
	now      func() time.Time

	mu       sync.Mutex
	entries  map[string]*cached
	order    []string // insertion order, for eviction
	bytes    int
	inflight map[string]*flight
}

// cached is one rendered answer.
type cached struct {
	body    []byte
	ctype   string
	expires time.Time
}

// flight is a computation other requests for the same key wait on.
type flight struct {
	done  chan struct{}
	body  []byte
	ctype string
	err   error
}

// maxCacheEntries bounds the entries whatever their size.
const maxCacheEntries = 4096

func newAnswerCache(ttl time.Duration, maxBytes int, now func() time.Time) *answerCache {
	return &answerCache{ttl: ttl, maxBytes: maxBytes, now: now,
		entries: map[string]*cached{}, inflight: map[string]*flight{}}
}

// cacheResult says how an answer was obtained.
type cacheResult string

const (
	cacheHit    cacheResult = "hit"    // from the cache
	cacheShared cacheResult = "shared" // computed by a concurrent identical request
	cacheMiss   cacheResult = "miss"   // computed by this request
)

// get returns key's answer: cached, shared with a computation in flight, or
// computed by compute (and kept when it succeeds). A nil cache computes.
func (c *answerCache) get(key string, compute func() ([]byte, string, error)) ([]byte, string, cacheResult, error) {
	if c == nil {
		b, t, err := compute()
		return b, t, cacheMiss, err
	}
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && c.now().Before(e.expires) {
		c.mu.Unlock()
		return e.body, e.ctype, cacheHit, nil
	}
	if f, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		<-f.done
		return f.body, f.ctype, cacheShared, f.err
	}
	f := &flight{done: make(chan struct{})}
	c.inflight[key] = f
	c.mu.Unlock()

	f.body, f.ctype, f.err = compute()
	c.mu.Lock()
	delete(c.inflight, key)
	if f.err == nil {
		c.put(key, &cached{body: f.body, ctype: f.ctype, expires: c.now().Add(c.ttl)})
	}
	c.mu.Unlock()
	close(f.done)
	return f.body, f.ctype, cacheMiss, f.err
}

// put stores e under key, evicting expired entries and then the oldest
// until it fits. Called with mu held.
func (c *answerCache) put(key string, e *cached) {
	if len(e.body) > c.maxBytes/4 {
		return // one answer never takes more than a quarter of the cache
	}
	if old, ok := c.entries[key]; ok {
		c.bytes -= len(old.body)
		delete(c.entries, key)
	}
	now := c.now()
	kept := c.order[:0]
	for _, k := range c.order {
		if x, ok := c.entries[k]; ok && now.Before(x.expires) {
			kept = append(kept, k)
		} else if ok {
			c.bytes -= len(x.body)
			delete(c.entries, k)
		}
	}
	c.order = kept
	for len(c.order) > 0 && (c.bytes+len(e.body) > c.maxBytes || len(c.order) >= maxCacheEntries) {
		k := c.order[0]
		c.order = c.order[1:]
		if x, ok := c.entries[k]; ok {
			c.bytes -= len(x.body)
			delete(c.entries, k)
		}
	}
	c.entries[key] = e
	c.order = append(c.order, key)
	c.bytes += len(e.body)
}
