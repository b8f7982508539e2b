package consumers

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// health is what readiness, the stall warnings and the membership metrics
// are decided from: whether this instance is in the group's current
// generation and since when, and the group's lag per partition as the lag
// watcher last read it. It is safe for concurrent use (the group callbacks,
// the poll loop, the lag watcher and HTTP handlers call it); every method
// takes the time from the injected clock.
type health struct {
	group            string
	rebalanceTimeout time.Duration
	stallTimeout     time.Duration
	warnEvery        time.Duration // repeat of a warning about the same state
	sessionLogEvery  time.Duration // repeat of the warning about failed joins
	log              *slog.Logger

	mu       sync.Mutex
	started  time.Time
	joined   bool      // in a generation: assigned (maybe nothing) and not revoked, lost or fenced since
	joinedAt time.Time // last successful join and sync; zero before the first
	leftAt   time.Time // when it last stopped being in a generation; start until the first join
	joinErr  error     // last group session error since leftAt (franz-go's ErrGroupSession)

	sessionLogged     time.Time // last failed join logged
	sessionSuppressed int       // failed joins not logged since
	lag               map[int32]partLag
	lagAt             time.Time // last successful lag refresh; zero before the first
	lagErr            error     // error of the refreshes since lagAt
	lagErrAt          time.Time // first of those errors
	warned            map[string]time.Time
	// stalled are the partitions the last refresh found stalled, and
	// stalledSince when their committed offsets stopped moving (the
	// longest standstill when the stall was first seen).
	stalled      []int32
	stalledSince time.Time
}

// partLag is one partition's lag and how long its committed offset has
// been standing still.
type partLag struct {
	committed int64 // the group's committed offset, -1 none
	lag       int64 // records between the committed offset (or the log start) and the log end
	// moving is when the committed offset last moved or the partition last
	// had no lag (when the watcher first saw it otherwise).
	moving time.Time
}

func newHealth(opts Options) *health {
	now := opts.Now()
	return &health{group: opts.Group, rebalanceTimeout: opts.RebalanceTimeout, stallTimeout: opts.stallTimeout(),
		warnEvery: 30 * time.Second, sessionLogEvery: 10 * time.Second, log: opts.Logger, started: now, leftAt: now,
		lag: map[int32]partLag{}, warned: map[string]time.Time{}}
}

// join records a successful join and sync (franz-go's OnPartitionsAssigned,
// called on every one, with or without partitions).
func (h *health) join(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.joined && !h.joinedAt.IsZero() {
		h.log.Info("back in the consumer group", "group", h.group, "after", now.Sub(h.leftAt).Round(time.Millisecond))
	}
	h.joined, h.joinedAt, h.joinErr = true, now, nil
	delete(h.warned, "unassigned")
}

// leave records that the instance is out of its generation: its partitions
// were revoked (a rebalance began), lost, or it was fenced.
func (h *health) leave(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.joined {
		h.joined, h.leftAt = false, now
	}
}

// sessionFailed records a failed join or sync (franz-go's ErrGroupSession)
// and reports how long the instance has been out of a generation, and
// whether to log it: the first failure since the last join, then at most
// once per sessionLogEvery, with the number of failures not logged since.
func (h *health) sessionFailed(now time.Time, err error) (out time.Duration, logNow bool, suppressed int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.joinErr = err
	if h.joined { // franz-go lost the session without revoking: out since now
		h.joined, h.leftAt = false, now
	}
	if h.sessionLogged.IsZero() || h.sessionLogged.Before(h.leftAt) || now.Sub(h.sessionLogged) >= h.sessionLogEvery {
		suppressed, h.sessionSuppressed, h.sessionLogged = h.sessionSuppressed, 0, now
		return now.Sub(h.leftAt), true, suppressed
	}
	h.sessionSuppressed++
	return now.Sub(h.leftAt), false, 0
}

// unassignedFor is how long the instance has been out of a generation (0
// while in one).
func (h *health) unassignedFor(now time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.joined {
		return 0
	}
	return now.Sub(h.leftAt)
}

// sinceJoin is how long ago the last successful join was (since the start
// before the first).
func (h *health) sinceJoin(now time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.joinedAt.IsZero() {
		return now.Sub(h.started)
	}
	return now.Sub(h.joinedAt)
}

// groupLag computes each partition's lag from the group's committed offsets
// against the log start and end offsets, as Burrow and kminion do: end −
// committed, where a partition without a committed offset (or one below the
// log start, whose records are gone) counts from the log start, as the
// group would read it; never below 0. Partitions absent from end are left
// out.
func groupLag(committed, start, end map[int32]int64) map[int32]int64 {
	out := make(map[int32]int64, len(end))
	for p, e := range end {
		from, ok := committed[p]
		if s := start[p]; !ok || from < s {
			from = s
		}
		out[p] = max(e-from, 0)
	}
	return out
}

// lagSnapshot is the result of one lag refresh.
type lagSnapshot struct {
	lag     map[int32]int64
	total   int64
	stalled []int32       // partitions lagging with no committed progress for StallTimeout, sorted
	longest time.Duration // the longest time a lagging partition's committed offset stood still
}

// observe takes a successful refresh: committed (-1 or absent: none), log
// start and end offsets per partition.
func (h *health) observe(now time.Time, committed, start, end map[int32]int64) lagSnapshot {
	lag := groupLag(committed, start, end)
	h.mu.Lock()
	defer h.mu.Unlock()
	next := make(map[int32]partLag, len(lag))
	snap := lagSnapshot{lag: lag}
	for p, l := range lag {
		c, ok := committed[p]
		if !ok {
			c = -1
		}
		pl := partLag{committed: c, lag: l, moving: now}
		if prev, seen := h.lag[p]; seen && l > 0 && prev.committed == c {
			pl.moving = prev.moving // lagging, and the commit did not move
		}
		next[p] = pl
		snap.total += l
		if l > 0 {
			still := now.Sub(pl.moving)
			snap.longest = max(snap.longest, still)
			if still >= h.stallTimeout {
				snap.stalled = append(snap.stalled, p)
			}
		}
	}
	slices.Sort(snap.stalled)
	if _, warned := h.warned["lag_unknown"]; warned && h.lagErr != nil {
		h.log.Info("reading the consumer group's lag again", "group", h.group, "state", "lag_unknown", "after", now.Sub(h.lagErrAt).Round(time.Second))
		delete(h.warned, "lag_unknown")
	}
	h.lag, h.lagAt, h.lagErr = next, now, nil
	switch {
	case len(snap.stalled) > 0 && h.stalled == nil:
		h.stalled, h.stalledSince = snap.stalled, now.Add(-snap.longest)
	case len(snap.stalled) > 0:
		h.stalled = snap.stalled
	case h.stalled != nil:
		// Cleared: committed offsets moved (or nothing waits any more).
		h.log.Info("consumer group no longer stalled", "group", h.group, "state", "stalled", "partitions", h.stalled,
			"after", now.Sub(h.stalledSince).Round(time.Second))
		h.stalled = nil
		delete(h.warned, "stalled")
	default:
		delete(h.warned, "stalled")
	}
	return snap
}

// lagFailed records a failed refresh.
func (h *health) lagFailed(now time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lagErr == nil {
		h.lagErrAt = now
	}
	h.lagErr = err
}

// lagAge is how long ago the last successful lag refresh was (since the
// start before the first).
func (h *health) lagAge(now time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lagAt.IsZero() {
		return now.Sub(h.started)
	}
	return now.Sub(h.lagAt)
}

// problem is one reason the instance is not ready.
type problem struct {
	state   string        // unassigned, stalled or lag_unknown: the key of the warning's rate limit
	summary string        // the warning's message
	msg     string        // the reason, with the figures
	for_    time.Duration // how long the state has lasted
	quiet   bool          // not worth a warning (an instance starting up)
}

// problems lists why the instance is not ready, nothing when it is: it has
// not joined the group yet, or has been out of a generation for longer than
// the rebalance timeout (a rebalance that takes longer has failed); some
// partition of the group has lagged with its committed offset standing
// still for StallTimeout (whoever owns it); or the group's lag could not be
// read for StallTimeout.
func (h *health) problems(now time.Time) []problem {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []problem
	if !h.joined {
		d := now.Sub(h.leftAt)
		var msg, summary string
		switch {
		case d > h.rebalanceTimeout:
			summary = "no assignment from the consumer group for longer than the rebalance timeout"
			msg = fmt.Sprintf("no assignment from consumer group %q for %s, longer than the rebalance timeout %s", h.group, d.Round(time.Second), h.rebalanceTimeout)
		case h.joinedAt.IsZero():
			summary = "not in the consumer group yet"
			msg = fmt.Sprintf("has not joined consumer group %q yet (for %s)", h.group, d.Round(time.Second))
		}
		if msg != "" {
			if h.joinErr != nil {
				msg += fmt.Sprintf(" (last error: %v)", h.joinErr)
			}
			// Starting up is no reason to warn, only not to be ready.
			out = append(out, problem{state: "unassigned", summary: summary, msg: msg, for_: d, quiet: d <= h.rebalanceTimeout})
		}
	}
	var stalled []int32
	var lag int64
	var longest time.Duration
	for p, pl := range h.lag {
		if still := now.Sub(pl.moving); pl.lag > 0 && still >= h.stallTimeout {
			stalled = append(stalled, p)
			lag += pl.lag
			longest = max(longest, still)
		}
	}
	if len(stalled) > 0 {
		slices.Sort(stalled)
		out = append(out, problem{state: "stalled", summary: "consumer group stalled", msg: fmt.Sprintf("consumer group %q stalled: %d record(s) behind on partition(s) %v, whose committed offsets have not moved for %s (stall timeout %s)",
			h.group, lag, stalled, longest.Round(time.Second), h.stallTimeout), for_: longest})
	}
	if h.lagErr != nil {
		if d := now.Sub(h.lagErrAt); d >= h.stallTimeout {
			out = append(out, problem{state: "lag_unknown", summary: "cannot read the consumer group's lag", msg: fmt.Sprintf("cannot read the lag of consumer group %q for %s: %v", h.group, d.Round(time.Second), h.lagErr), for_: d})
		}
	}
	return out
}

// ready returns nil when the instance is ready, else an error naming every
// reason.
func (h *health) ready(now time.Time) error {
	ps := h.problems(now)
	if len(ps) == 0 {
		return nil
	}
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.msg
	}
	return errors.New(strings.Join(msgs, "; "))
}

// warn logs each problem at WARN, each state at most once per warnEvery.
func (h *health) warn(now time.Time) {
	for _, p := range h.problems(now) {
		if p.quiet {
			continue
		}
		h.mu.Lock()
		last, ok := h.warned[p.state]
		due := !ok || now.Sub(last) >= h.warnEvery
		if due {
			h.warned[p.state] = now
		}
		h.mu.Unlock()
		if due {
			h.log.Warn(p.summary, "group", h.group, "state", p.state, "for", p.for_.Round(time.Second), "detail", p.msg)
		}
	}
}
