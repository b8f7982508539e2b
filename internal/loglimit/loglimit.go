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

// Failures follows a run of failures of one thing (ClickHouse for the API,
// a rule's evaluation, a derive pass) for its log lines: the first failure
// of a run is logged at once, later ones at most one line a period with
// how many came since the line before, and the first success after them
// once, with how long they lasted. The zero value is ready (no run); it is
// safe for concurrent use.
type Failures struct {
	mu    sync.Mutex
	since time.Time // the run's first failure; zero when there is no run
	line  time.Time // the last line logged about it
	n     int       // failures since that line
	total int       // failures of the run
}

// Fail counts a failure at now and reports whether to log it (due), with
// the failures since the last line, this one included, and when the run
// began.
func (f *Failures) Fail(now time.Time, every time.Duration) (n int, since time.Time, due bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since.IsZero() {
		f.since = now
	}
	f.n++
	f.total++
	if !f.line.IsZero() && now.Sub(f.line) < every {
		return 0, f.since, false
	}
	n = f.n
	f.line, f.n = now, 0
	return n, f.since, true
}

// Succeed ends the run, if any: failing reports whether there was one (to
// log the recovery), since when, and how many failures it had.
func (f *Failures) Succeed() (since time.Time, total int, failing bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since.IsZero() {
		return time.Time{}, 0, false
	}
	since, total = f.since, f.total
	f.since, f.line, f.n, f.total = time.Time{}, time.Time{}, 0, 0
	return since, total, true
}

// Failing reports whether a run of failures is under way.
func (f *Failures) Failing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.since.IsZero()
}
