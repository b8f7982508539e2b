package loglimit

import (
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	var l Limit
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		at      time.Duration
		n       int
		prev    time.Duration // from t0; -1 for none
		due     bool
		comment string
	}{
		{0, 1, -1, true, "the first at once"},
		{10 * time.Second, 0, -1, false, "within the period: counted"},
		{50 * time.Second, 0, -1, false, "still within"},
		{60 * time.Second, 3, 0, true, "a period later: the three since the last line"},
		{200 * time.Second, 1, 60 * time.Second, true, "a lone one after a quiet period"},
	}
	for _, s := range steps {
		n, prev, due := l.Note(t0.Add(s.at), time.Minute)
		wantPrev := time.Time{}
		if s.prev >= 0 {
			wantPrev = t0.Add(s.prev)
		}
		if n != s.n || !prev.Equal(wantPrev) || due != s.due {
			t.Fatalf("%s: Note(+%s) = %d, %v, %v; want %d, %v, %v", s.comment, s.at, n, prev, due, s.n, wantPrev, s.due)
		}
	}
	l.Note(t0.Add(210*time.Second), time.Minute) // counted, not due
	if n, prev := l.Reset(); n != 1 || !prev.Equal(t0.Add(200*time.Second)) {
		t.Fatalf("Reset = %d, %v; want 1 since the line at +200s", n, prev)
	}
	if _, _, due := l.Note(t0.Add(215*time.Second), time.Minute); !due {
		t.Fatal("after Reset the next occurrence is not logged at once")
	}
}
