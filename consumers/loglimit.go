package consumers

import "time"

// logLimit repeats a log line at most once a period: the first
// occurrence at once, then one line with how many came since the last.
type logLimit struct {
	last time.Time // of the last line; zero before the first
	n    int       // occurrences since it
}

// note counts an occurrence at now and reports whether to log it (due),
// with the occurrences since the last line, this one included, and when
// that line was (zero for none).
func (l *logLimit) note(now time.Time, every time.Duration) (n int, prev time.Time, due bool) {
	l.n++
	if !l.last.IsZero() && now.Sub(l.last) < every {
		return 0, time.Time{}, false
	}
	n, prev = l.n, l.last
	l.n, l.last = 0, now
	return n, prev, true
}
