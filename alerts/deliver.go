package alerts

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/costpipe/costpipe/alerts/notify"
)

// DeliverOptions configure a Deliverer.
type DeliverOptions struct {
	// Replica identifies this process in claims. Default: random.
	Replica string
	// Settle is how long a claimant waits between inserting its claims
	// and reading the round back (docs/design.md "Alerts"). A claim whose
	// insert took longer than Settle/2 from the check before it is given
	// up. Default 2s.
	Settle time.Duration
	// Lease is how long a claim without an outcome (its claimant may have
	// died) blocks the notification; then it is claimed again and sent
	// again, with the same ID. It must exceed the dispatcher's longest
	// retry sequence. Default 10m. The dispatcher starts no attempt that
	// could end after the lease less Settle (Notification.Deadline).
	Lease time.Duration
	// GiveUp is how long a notification is retried, counted from its
	// first claim: a round of attempts that fails on retryable errors
	// before then is deferred (claimed again at a later evaluation, after
	// RetryPause), after it the notification is dead. 0: dead after the
	// first round. Default 1h.
	GiveUp time.Duration
	// RetryPause is the least time between a deferred round and the next
	// claim. Default 1m.
	RetryPause time.Duration
	// Now is the clock (claim times). Default time.Now.
	Now func() time.Time
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// DefaultDeliverOptions returns the defaults.
func DefaultDeliverOptions() DeliverOptions {
	return DeliverOptions{Replica: randomReplica(), Settle: 2 * time.Second, Lease: 10 * time.Minute,
		GiveUp: time.Hour, RetryPause: time.Minute, Now: time.Now, Logger: slog.Default()}
}

func randomReplica() string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("r%x", b)
}

// Validate reports options that cannot work.
func (o DeliverOptions) Validate() error {
	switch {
	case o.Replica == "":
		return errors.New("replica id must be set")
	case o.Settle <= 0:
		return fmt.Errorf("claim settle time %s: want > 0", o.Settle)
	case o.Lease <= 2*o.Settle:
		return fmt.Errorf("claim lease %s: want more than twice the settle time %s", o.Lease, o.Settle)
	case o.GiveUp < 0:
		return fmt.Errorf("give-up time %s: want >= 0", o.GiveUp)
	case o.RetryPause <= 0:
		return fmt.Errorf("retry pause %s: want > 0", o.RetryPause)
	case o.Now == nil || o.Logger == nil:
		return errors.New("clock and logger must be set")
	}
	return nil
}

// Enqueuer is what a Deliverer hands won notifications to:
// *notify.Dispatcher.
type Enqueuer interface {
	Enqueue(receiver string, n notify.Notification) bool
}

// Deliverer sends each notification to each receiver once across
// restarts and replicas: it claims (notification ID, receiver) in the
// notification log, delivers only what it won, and records the outcome
// (Result, the dispatcher's WithResults callback). Safe for concurrent
// use.
type Deliverer struct {
	store *Store
	opts  DeliverOptions
	out   Enqueuer

	mu       sync.Mutex
	inflight map[[2]string]logRow // claims won and handed to out
	// final remembers (id, receiver) pairs the log has as delivered or
	// dead, so a firing alert does not cost a log read at every tick;
	// bounded by maxFinal (cleared when full).
	final map[[2]string]bool
	// outcomes are the dispatcher's results waiting to be written to the
	// log, by one writer goroutine while writing is set; drained is
	// closed when that writer finds nothing left and exits.
	outcomes []logRow
	writing  bool
	drained  chan struct{}
}

// maxOutcomeBatch bounds the outcomes written to the log in one insert.
const maxOutcomeBatch = 1000

// The backoff between attempts to write a batch of outcomes.
const (
	outcomeRetryMin = 500 * time.Millisecond
	outcomeRetryMax = 30 * time.Second
)

// maxFinal bounds Deliverer.final.
const maxFinal = 100000

// maxInflight bounds the claims one process holds at a time.
const maxInflight = 10000

// NewDeliverer returns a deliverer writing to store. Call SetOutput
// before Send.
func NewDeliverer(store *Store, opts DeliverOptions) (*Deliverer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Deliverer{store: store, opts: opts, inflight: map[[2]string]logRow{}, final: map[[2]string]bool{}}, nil
}

// SetOutput sets where won notifications go (the dispatcher, created
// with WithResults(d.Result) and a clock reading DeliverOptions.Now: the
// notifications' Deadline and RetryUntil are in that time).
func (d *Deliverer) SetOutput(out Enqueuer) { d.out = out }

// Replica is this process's replica id.
func (d *Deliverer) Replica() string { return d.opts.Replica }

// pairState is what the log says about one (id, receiver).
type pairState struct {
	final     bool // delivered or dead
	delivered bool
	round     int // the newest round, -1 for none
	winner    *logRow
	released  map[uint32]bool
	deferred  map[uint32]time.Time // rounds whose attempts were used up, and when
	first     time.Time            // the first claim
}

// index reads the log rows of notifications into their state per
// (notification, receiver). A round counts as released only when its
// winning claim was: a replica that gives up a claim it did not win (it
// released before learning it lost) leaves the winner's delivery alone.
func index(rows []logRow) map[[2]string]*pairState {
	out := map[[2]string]*pairState{}
	claims := map[[2]string]map[uint32][]logRow{}
	releases := map[[2]string][]logRow{}
	for _, r := range rows {
		k := [2]string{r.ID, r.Receiver}
		st := out[k]
		if st == nil {
			st = &pairState{round: -1, released: map[uint32]bool{}, deferred: map[uint32]time.Time{}}
			out[k] = st
			claims[k] = map[uint32][]logRow{}
		}
		switch r.Status {
		case logDelivered:
			st.final, st.delivered = true, true
		case logDead:
			st.final = true
		case logReleased:
			releases[k] = append(releases[k], r)
		case logDeferred:
			st.deferred[r.Round] = r.At
		case logSending:
			claims[k][r.Round] = append(claims[k][r.Round], r)
			if st.first.IsZero() || r.At.Before(st.first) {
				st.first = r.At
			}
			if int(r.Round) > st.round {
				st.round = int(r.Round)
			}
		}
	}
	for k, st := range out {
		if st.round >= 0 {
			w := winner(claims[k][uint32(st.round)])
			st.winner = &w
		}
		for _, r := range releases[k] {
			if cs := claims[k][r.Round]; len(cs) > 0 {
				if w := winner(cs); w.Replica == r.Replica && w.Nonce == r.Nonce {
					st.released[r.Round] = true
				}
			}
		}
	}
	return out
}

// winner is the claim with the smallest (nonce, replica).
func winner(cs []logRow) logRow {
	w := cs[0]
	for _, c := range cs[1:] {
		if c.Nonce < w.Nonce || c.Nonce == w.Nonce && c.Replica < w.Replica {
			w = c
		}
	}
	return w
}

// claimGroup is how many due notifications one claim covers (Send). The
// claim must land within half the settle time of its check; a burst of
// thousands claimed at once read and wrote thousands of log rows in that
// span, overran it at every tick and was given up whole, so nothing was
// sent for as long as the burst lasted.
const claimGroup = 250

// GivenUpError is Send's error when it gave up claiming some due
// notifications (the log could not be read or written in time): they are
// offered again at the next evaluation. Rules names the rules they belong
// to, whose group_interval should not start with this tick.
type GivenUpError struct {
	Rules map[string]bool
	Err   error
}

func (e *GivenUpError) Error() string { return e.Err.Error() }
func (e *GivenUpError) Unwrap() error { return e.Err }

// pending is a claim inserted in time, waiting for the settle read.
type pending struct {
	claim logRow
	n     notify.Notification
	first time.Time // the pair's first claim
}

// Send claims and hands over the due notifications that no one has
// delivered or is delivering. It returns, per rule, how many
// (notification, receiver) pairs it handed to the output.
//
// It claims claimGroup notifications at a time, each group with its own
// check, then waits the settle time once for all of them. A group whose
// claim fails or comes too late is given up with the groups after it
// (retried at the next evaluation), and the groups before it go on.
func (d *Deliverer) Send(ctx context.Context, due []Outgoing) (map[string]int, error) {
	sent := map[string]int{}
	if len(due) == 0 {
		return sent, nil
	}
	d.mu.Lock()
	open := due[:0:0]
	for _, o := range due {
		for _, rcv := range o.Receivers {
			if !d.final[[2]string{o.Notification.ID, rcv}] {
				open = append(open, o)
				break
			}
		}
	}
	d.mu.Unlock()
	var claims []pending
	var claimErr error
	for len(open) > 0 {
		g := open[:min(len(open), claimGroup)]
		cs, err := d.claim(ctx, g, len(claims))
		claims = append(claims, cs...)
		if err != nil {
			gu := &GivenUpError{Rules: map[string]bool{}, Err: err}
			for _, o := range open {
				gu.Rules[o.Notification.Rule] = true
			}
			claimErr = gu
			break
		}
		open = open[len(g):]
	}
	if len(claims) == 0 {
		return sent, claimErr
	}
	rowsOut := make([]logRow, len(claims))
	for i, c := range claims {
		rowsOut[i] = c.claim
	}
	// Every group's claim was acknowledged before this wait began: each
	// is read back at least the settle time after its own.
	select {
	case <-ctx.Done():
		d.release(rowsOut, "shutting down")
		return sent, ctx.Err()
	case <-time.After(d.opts.Settle):
	}
	back, err := d.store.logRows(ctx, uniqueIDs(rowsOut))
	if err != nil {
		d.release(rowsOut, "cannot read the claims back")
		return sent, err
	}
	st := index(back)
	var lost []logRow
	for _, c := range claims {
		k := [2]string{c.claim.ID, c.claim.Receiver}
		s := st[k]
		if s == nil || s.final || s.winner == nil || s.winner.Round != c.claim.Round {
			continue
		}
		if s.winner.Replica != d.opts.Replica || s.winner.Nonce != c.claim.Nonce {
			continue // another replica won
		}
		d.mu.Lock()
		d.inflight[k] = c.claim
		d.mu.Unlock()
		n := c.n
		// Attempts end before another replica may take the claim over.
		n.Deadline = c.claim.At.Add(d.opts.Lease - d.opts.Settle)
		if d.opts.GiveUp > 0 {
			n.RetryUntil = c.first.Add(d.opts.GiveUp)
		}
		if d.out == nil || !d.out.Enqueue(c.claim.Receiver, n) {
			d.mu.Lock()
			delete(d.inflight, k)
			d.mu.Unlock()
			lost = append(lost, c.claim)
			continue
		}
		sent[c.n.Rule]++
	}
	if len(lost) > 0 {
		d.release(lost, "receiver queue full or unknown")
	}
	return sent, claimErr
}

// claim checks the log for one group of due notifications and inserts
// claims for the pairs no one holds (at most maxInflight, counting the
// claims in flight and the pending ones of this Send). It returns the
// claims inserted in time; a claim insert that failed or landed later than
// half the settle time after the check is released and reported.
func (d *Deliverer) claim(ctx context.Context, due []Outgoing, pendingN int) ([]pending, error) {
	var ids []string
	seen := map[string]bool{}
	for _, o := range due {
		for _, id := range append([]string{o.Notification.ID, o.Supersedes}, o.Requires...) {
			if id != "" && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	check := time.Now() // monotonic: the claim must land soon after the check
	rows, err := d.store.logRows(ctx, ids)
	if err != nil {
		return nil, err
	}
	st := index(rows)
	now := d.opts.Now()
	var claims []pending
	d.mu.Lock()
	room := maxInflight - len(d.inflight) - pendingN
	for _, o := range due {
		for _, rcv := range o.Receivers {
			k := [2]string{o.Notification.ID, rcv}
			if _, busy := d.inflight[k]; busy || room <= 0 {
				continue
			}
			s := st[k]
			if s != nil && s.final {
				d.remember(k)
				continue
			}
			if old := st[[2]string{o.Supersedes, rcv}]; o.Supersedes != "" && old != nil && old.final && !old.first.Before(o.Since) {
				d.remember(k) // sent before the upgrade, under its old key
				continue
			}
			if len(o.Requires) > 0 && !slices.ContainsFunc(o.Requires, func(id string) bool {
				rs := st[[2]string{id, rcv}]
				return rs != nil && rs.delivered
			}) {
				continue // never told this receiver it fired
			}
			round, first := uint32(0), now
			if s != nil && s.round >= 0 {
				round, first = uint32(s.round), s.first
				if at, ok := s.deferred[round]; ok {
					if now.Sub(at) < d.opts.RetryPause {
						continue // its receiver just failed a whole round
					}
				} else if !s.released[round] && now.Sub(s.winner.At) < d.opts.Lease {
					continue // someone holds a live claim
				}
				round++
			}
			room--
			claims = append(claims, pending{n: o.Notification, first: first, claim: logRow{ID: o.Notification.ID, Receiver: rcv, Round: round,
				Status: logSending, Replica: d.opts.Replica, Nonce: nonce(), At: now, Rule: o.Notification.Rule,
				Type: o.Notification.Type, Group: o.Notification.Group}})
		}
	}
	d.mu.Unlock()
	if len(claims) == 0 {
		return nil, nil
	}
	rowsOut := make([]logRow, len(claims))
	for i, c := range claims {
		rowsOut[i] = c.claim
	}
	if err := d.store.appendLog(ctx, rowsOut); err != nil {
		d.release(rowsOut, "claim insert failed") // it may have landed
		return nil, err
	}
	if took := time.Since(check); took > d.opts.Settle/2 {
		d.release(rowsOut, fmt.Sprintf("claim took %s after the check, more than half the settle time", took.Round(time.Millisecond)))
		return nil, fmt.Errorf("claim of %d notification(s) took %s after the check (settle %s): given up, retried at the next evaluation",
			len(rowsOut), took.Round(time.Millisecond), d.opts.Settle)
	}
	return claims, nil
}

func uniqueIDs(rows []logRow) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rows {
		if !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r.ID)
		}
	}
	return out
}

func nonce() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// remember notes a final pair; the caller holds d.mu.
func (d *Deliverer) remember(k [2]string) {
	if len(d.final) >= maxFinal {
		clear(d.final)
	}
	d.final[k] = true
}

// release voids claims (best effort): the round is retried.
func (d *Deliverer) release(claims []logRow, why string) {
	rows := make([]logRow, len(claims))
	for i, c := range claims {
		c.Status, c.At, c.Error = logReleased, d.opts.Now(), why
		rows[i] = c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.store.appendLog(ctx, rows); err != nil {
		d.opts.Logger.Warn("cannot release alert notification claims; they expire after the lease", "claims", len(rows), "lease", d.opts.Lease, "err", err)
	}
}

// Result records a dispatcher outcome: delivered; released when the
// dispatcher closed or the claim's deadline came before an answer
// (claimed again at once); deferred when a round of attempts failed
// before GiveUp (claimed again after RetryPause); else dead. Pass it to
// notify.WithResults.
//
// It does not wait for the log: outcomes are written in batches by one
// goroutine (a burst of thousands of notifications cost an insert, and a
// part in ClickHouse, per outcome, each holding up the receiver's next
// delivery; a shutdown with thousands queued wrote their releases one by
// one, each waiting up to 30 s on a server that was down). A notification
// stays in flight until its outcome is written or the write failed; Close
// waits for the outcomes to be written.
func (d *Deliverer) Result(r notify.Result) {
	k := [2]string{r.ID, r.Receiver}
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.inflight[k]
	if !ok {
		return
	}
	c.At, c.Attempts = r.At, uint32(r.Attempts)
	switch {
	case r.Err == nil:
		c.Status = logDelivered
	case errors.Is(r.Err, notify.ErrClosed), errors.Is(r.Err, notify.ErrExpired):
		c.Status, c.Error = logReleased, r.Err.Error()
	case errors.Is(r.Err, notify.ErrDeferred):
		c.Status, c.Error = logDeferred, r.Err.Error()
	default:
		c.Status, c.Error = logDead, r.Err.Error()
	}
	if c.At.IsZero() {
		c.At = d.opts.Now()
	}
	d.outcomes = append(d.outcomes, c)
	if !d.writing {
		d.writing, d.drained = true, make(chan struct{})
		go d.writeOutcomes()
	}
}

// writeOutcomes writes the waiting outcomes, a batch at a time, until
// there are none.
func (d *Deliverer) writeOutcomes() {
	for {
		d.mu.Lock()
		if len(d.outcomes) == 0 {
			d.writing = false
			close(d.drained)
			d.mu.Unlock()
			return
		}
		n := min(len(d.outcomes), maxOutcomeBatch)
		batch := slices.Clone(d.outcomes[:n])
		d.outcomes = slices.Delete(d.outcomes, 0, n)
		d.mu.Unlock()
		d.record(batch)
	}
}

// record writes one batch of outcomes to the log.
//
// A failed insert is tried again with backoff, the notifications still in
// flight (no round of theirs is claimed again meanwhile), for up to half
// the lease: giving up at once would send the whole batch again after the
// lease for one failed insert.
func (d *Deliverer) record(rows []logRow) {
	giveUp := time.Now().Add(d.opts.Lease / 2)
	backoff := outcomeRetryMin
	var err error
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = d.store.appendLog(ctx, rows)
		cancel()
		if err == nil || time.Now().Add(backoff).After(giveUp) {
			break
		}
		if attempt == 1 {
			d.opts.Logger.Warn("cannot record alert notification outcomes; trying again", "outcomes", len(rows),
				"retry_for", time.Until(giveUp).Round(time.Second), "err", err)
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, outcomeRetryMax)
	}
	d.mu.Lock()
	for _, c := range rows {
		k := [2]string{c.ID, c.Receiver}
		delete(d.inflight, k)
		if err == nil && (c.Status == logDelivered || c.Status == logDead) {
			d.remember(k)
		}
	}
	d.mu.Unlock()
	if err != nil {
		// The claims stay "sending": after the lease they are sent again
		// with the same IDs, which the receivers can drop.
		d.opts.Logger.Error("cannot record alert notification outcomes; they will be sent again after the lease",
			"outcomes", len(rows), "first_id", rows[0].ID, "receiver", rows[0].Receiver, "status", rows[0].Status, "err", err)
		return
	}
	for _, c := range rows {
		d.opts.Logger.Info("alert notification "+c.Status, "id", c.ID, "receiver", c.Receiver, "rule", c.Rule, "type", c.Type, "attempts", c.Attempts)
	}
}

// Close waits until the outcomes received so far are written to the log,
// or ctx ends (those not written then stay "sending" and are sent again
// after the lease). Call it after closing the dispatcher.
func (d *Deliverer) Close(ctx context.Context) error {
	d.mu.Lock()
	if !d.writing {
		d.mu.Unlock()
		return nil
	}
	drained := d.drained
	d.mu.Unlock()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("alert notification outcomes not all recorded: %w", context.Cause(ctx))
	}
}

// Inflight is the number of notifications handed over without an outcome.
func (d *Deliverer) Inflight() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.inflight)
}
