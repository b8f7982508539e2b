// Package loglimit keeps a repeated log line to one a period: the first
// occurrence is logged at once, later ones are counted and reported in
// the next line a period later. The aggregator's DLQ and broker lines, and
// the API server's ClickHouse outage lines, use it, so an outage that fails
// every request or every record logs a line a minute, not one per failure.
package loglimit

import (
	"sync"
	"time"
)

// Limit is one line's limiter. The zero value is ready; it is safe for
// concurrent use.
type Limit struct {
	mu   sync.Mutex
	last time.Time // of the last line; zero before the first
	n    int       // occurrences since it
}

// Note counts an occurrence at now and reports whether to log it (due),
// with the occurrences since the last line, this one included, and when
// that line was (zero for none).
func (l *Limit) Note(now time.Time, every time.Duration) (n int, prev time.Time, due bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if !l.last.IsZero() && now.Sub(l.last) < every {
		return 0, time.Time{}, false
	}
	n, prev = l.n, l.last
	l.n, l.last = 0, now
	return n, prev, true
}

// Reset forgets the occurrences, so that the next one is logged at once,
// and returns how many were counted since the last line and when that was:
// a recovery line says how many failures it ends.
func (l *Limit) Reset() (n int, prev time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, prev = l.n, l.last
	l.n, l.last = 0, time.Time{}
	return n, prev
}
