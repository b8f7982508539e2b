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

func TestFailures(t *testing.T) {
	var f Failures
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, _, failing := f.Succeed(); failing || f.Failing() {
		t.Fatal("a success without failures ends a run")
	}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, s := range []struct {
		at  int
		n   int
		due bool
	}{{0, 1, true}, {20, 0, false}, {40, 0, false}, {60, 3, true}, {70, 0, false}} {
		n, since, due := f.Fail(at(s.at), time.Minute)
		if n != s.n || due != s.due || !since.Equal(t0) {
			t.Fatalf("Fail(+%ds) = %d, %v, %v; want %d, %v, the run's start %v", s.at, n, since, due, s.n, s.due, t0)
		}
	}
	since, total, failing := f.Succeed()
	if !failing || !since.Equal(t0) || total != 5 || f.Failing() {
		t.Fatalf("Succeed = %v, %d, %v; want the run from %v with 5 failures, ended", since, total, failing, t0)
	}
	if n, since, due := f.Fail(at(80), time.Minute); n != 1 || !due || !since.Equal(at(80)) {
		t.Fatalf("a new run's first failure: %d, %v, %v; want it logged at once, from +80s", n, since, due)
	}
}
