package warehouse

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// A lock among costpipe processes on one ClickHouse server is a table that
// exactly one CREATE makes (ClickHouse has no compare-and-set): created
// with its first row, which names the holder, and dropped at the end. Its
// holder appends a heartbeat row every lockBeat; a lock whose newest
// heartbeat is older than lockStale was left by a holder that died (a kill,
// its server restarted before the DROP) and is taken over: renamed away to
// a name made from the stale lock's owner and times, then created again.
// Two waiters that judged the same lock stale rename it to the same name,
// so the second RENAME fails (its source or its target is there no more)
// rather than take away the first one's new lock; the renamed copies are
// dropped at the release, long after any such race. A lock table without
// the beat column (made by a costpipe from before the heartbeats) is never
// taken over: its holder may still be at work.
const (
	lockBeat  = 10 * time.Second
	lockStale = time.Minute
)

// staleSuffix marks a lock table renamed away by a takeover.
const staleSuffix = "_stale_"

// errLockHeld is the error of a lock another process holds.
var errLockHeld = errors.New("held by another process")

// LockHeldError says who holds a lock that could not be taken.
type LockHeldError struct {
	Table, Holder string
}

// Error names the lock and its holder.
func (e *LockHeldError) Error() string {
	return fmt.Sprintf("lock %s %v (%s)", e.Table, errLockHeld, e.Holder)
}

// Unwrap returns errLockHeld.
func (e *LockHeldError) Unwrap() error { return errLockHeld }

// takeLock takes the lock table name (database.table), waiting up to wait
// while another process holds it (polling; a stale lock is taken over at
// once, and logged through slog's default logger), and returns the
// release, which stops the heartbeats and drops the table if it is still
// this process's. At the wait's end the error is a *LockHeldError.
func (w *Warehouse) takeLock(ctx context.Context, name string, wait time.Duration) (release func(), err error) {
	host, _ := os.Hostname()
	// The token tells apart processes of one host and pid (containers).
	owner := fmt.Sprintf("%s pid %d #%08x", host, os.Getpid(), rand.Uint32())
	deadline := time.Now().Add(wait)
	for {
		err := w.conn.Exec(ctx, "CREATE TABLE "+name+" ENGINE = Log AS SELECT toString(?) AS owner, toDateTime(now(), 'UTC') AS since, toUInt8(1) AS beat", owner)
		if err == nil {
			return w.holdLock(ctx, name, owner), nil
		}
		var ex *clickhouse.Exception
		if !errors.As(err, &ex) || ex.Code != 57 { // TABLE_ALREADY_EXISTS
			return nil, fmt.Errorf("cannot take the lock %s: %w", name, err)
		}
		holder, stale := w.lockHolder(ctx, name)
		if stale && w.renameStale(ctx, name, holder) == nil {
			slog.Warn("took over a lock whose holder died holding it", "lock", name, "holder", holder, "no_heartbeat_for_over", lockStale.String())
			continue
		}
		// Held, or a rename that failed (another waiter's came first, or
		// the user may not rename): wait, as for a live holder.
		if !time.Now().Before(deadline) {
			return nil, &LockHeldError{Table: name, Holder: holder}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the lock %s: %w", name, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// renameStale renames the lock name, judged stale as held by holder (as
// lockHolder describes it), away to a name made from holder: a second
// waiter that judged the same lock stale fails, its source gone or its
// target taken, instead of renaming away the lock the first one made.
func (w *Warehouse) renameStale(ctx context.Context, name, holder string) error {
	h := fnv.New64a()
	h.Write([]byte(holder))
	return w.conn.Exec(ctx, fmt.Sprintf("RENAME TABLE %s TO %s%s%016x", name, name, staleSuffix, h.Sum64()))
}

// holdLock starts the heartbeats of the lock name that owner just took and
// returns its release.
func (w *Warehouse) holdLock(ctx context.Context, name, owner string) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(lockBeat)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockBeat)
				if err := w.conn.Exec(bctx, "INSERT INTO "+name+" (owner, since, beat) SELECT toString(?), toDateTime(now(), 'UTC'), toUInt8(1)", owner); err != nil {
					slog.Warn("cannot write the lock's heartbeat; after a minute without one another process may take the lock over", "lock", name, "err", err)
				}
				cancel()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		// Dropped even when ctx has ended; only if still this process's
		// (a holder that stalled past lockStale lost it to another).
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		var first string
		if err := w.conn.QueryRow(dctx, "SELECT owner FROM "+name+" LIMIT 1").Scan(&first); err != nil || first == owner {
			_ = w.conn.Exec(dctx, "DROP TABLE IF EXISTS "+name)
		}
		// The stale locks renamed away by takeovers, this one's or a
		// crashed taker's: no waiter races for them any more.
		db, table, _ := strings.Cut(name, ".")
		rows, err := w.conn.Query(dctx, "SELECT name FROM system.tables WHERE database = ?", db)
		if err != nil {
			return
		}
		var gone []string
		for rows.Next() {
			var n string
			if rows.Scan(&n) == nil && strings.HasPrefix(n, table+staleSuffix) {
				gone = append(gone, n)
			}
		}
		rows.Close()
		for _, n := range gone {
			_ = w.conn.Exec(dctx, "DROP TABLE IF EXISTS "+db+"."+n)
		}
	}
}

// lockHolder describes who holds the lock name ("HOST pid N since TIME,
// last heartbeat TIME"), and whether its heartbeats stopped more than
// lockStale ago by the server's clock. A lock table without heartbeats
// (an older costpipe's) or that cannot be read is not stale.
func (w *Warehouse) lockHolder(ctx context.Context, name string) (holder string, stale bool) {
	var (
		owner            string
		since, last, now time.Time
		n                uint64
	)
	err := w.conn.QueryRow(ctx, "SELECT any(owner), min(since), max(since), toDateTime(now(), 'UTC'), count() FROM "+name+" WHERE beat = 1").
		Scan(&owner, &since, &last, &now, &n)
	if err != nil || n == 0 {
		if w.conn.QueryRow(ctx, "SELECT owner, since FROM "+name+" LIMIT 1").Scan(&owner, &since) == nil {
			return owner + " since " + since.UTC().Format(time.RFC3339), false
		}
		return "unknown", false
	}
	holder = fmt.Sprintf("%s since %s, last heartbeat %s", owner, since.UTC().Format(time.RFC3339), last.UTC().Format(time.RFC3339))
	return holder, now.Sub(last) > lockStale
}

// ErrRepriceRunning is LockReprice's error while another reprice runs.
var ErrRepriceRunning = errors.New("another costpipe reprice is running on this database")

// LockReprice takes the reprice lock, {database}.reprice_lock, without
// waiting: two reprices at once over overlapping ranges would each read
// the stored cost before the other's corrections and both land the
// difference. The error wraps ErrRepriceRunning and names the holder. On a
// cluster the lock is the server's the Warehouse is connected to: run
// reprice through one member. The returned func releases it.
func (w *Warehouse) LockReprice(ctx context.Context) (func(), error) {
	release, err := w.takeLock(ctx, w.database+".reprice_lock", 0)
	var held *LockHeldError
	if errors.As(err, &held) {
		return nil, fmt.Errorf("%w (lock %s held by %s): wait for it to end and run again (it lands only what is still missing)", ErrRepriceRunning, held.Table, held.Holder)
	}
	return release, err
}
