package warehouse

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// makeLock creates the lock table name as a holder would have: one row of
// owner, its heartbeat beatAgo before the server's now (beat false: an
// older costpipe's lock, without the column).
func makeLock(t *testing.T, w *Warehouse, name, owner string, beatAgo time.Duration, beat bool) {
	t.Helper()
	ctx := context.Background()
	if err := w.Conn().Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+w.Database()); err != nil {
		t.Fatal(err)
	}
	q := "CREATE TABLE " + name + " ENGINE = Log AS SELECT toString(?) AS owner, toDateTime(now() - ?, 'UTC') AS since, toUInt8(1) AS beat"
	if !beat {
		q = "CREATE TABLE " + name + " ENGINE = Log AS SELECT toString(?) AS owner, toDateTime(now() - ?, 'UTC') AS since"
	}
	if err := w.Conn().Exec(ctx, q, owner, int64(beatAgo.Seconds())); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateTakesOverADeadLock: a migration lock whose holder stopped
// beating more than a minute ago (killed, or its server restarted before
// the DROP) is taken over at once; it held every later start for the whole
// lock wait (15 minutes), which then failed, until someone dropped it by
// hand. A lock with a recent heartbeat is waited for.
func TestMigrateTakesOverADeadLock(t *testing.T) {
	t.Parallel()
	w, _, db := openTest(t)
	ctx := context.Background()
	lock := db + ".schema_migrations_lock"
	makeLock(t, w, lock, "host-a pid 7", 30*time.Second, true)
	w.lockWait = 1500 * time.Millisecond
	_, err := w.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "host-a pid 7") {
		t.Fatalf("Migrate with a lock beating 30 s ago = %v, want it waited for and named", err)
	}
	if err := w.Conn().Exec(ctx, "DROP TABLE "+lock); err != nil {
		t.Fatal(err)
	}
	makeLock(t, w, lock, "host-a pid 7", 2*time.Minute, true)
	// Waited for, it would fail after lockWait as above.
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatalf("Migrate with a lock whose heartbeat stopped 2 min ago: %v", err)
	}
	var n uint64
	if err := w.Conn().QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name LIKE 'schema_migrations_lock%'", db).Scan(&n); err != nil || n != 0 {
		t.Errorf("lock tables (and renamed stale ones) left after the migration: %d, %v", n, err)
	}
}

// TestLockHeartbeats: a held lock beats while held, and its release drops
// it; a release after another process took the lock over leaves that
// process's lock alone.
func TestLockHeartbeats(t *testing.T) {
	t.Parallel()
	w, _, db := openTest(t)
	ctx := context.Background()
	if err := w.Conn().Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	name := db + ".test_lock"
	release, err := w.takeLock(ctx, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.takeLock(ctx, name, 0); !errors.Is(err, errLockHeld) {
		t.Fatalf("a second take of a held lock: %v, want errLockHeld", err)
	}
	if holder, stale := w.lockHolder(ctx, name); stale || !strings.Contains(holder, "last heartbeat") {
		t.Errorf("a lock just taken: holder %q, stale %v", holder, stale)
	}
	// Another process takes it over (as after lockStale without beats).
	if err := w.Conn().Exec(ctx, "DROP TABLE "+name); err != nil {
		t.Fatal(err)
	}
	makeLock(t, w, name, "host-b pid 9", 0, true)
	release()
	var exists uint8
	if err := w.Conn().QueryRow(ctx, "EXISTS TABLE "+name).Scan(&exists); err != nil || exists != 1 {
		t.Errorf("the release of a lock taken over dropped the new holder's: exists=%d, %v", exists, err)
	}
}

// TestSchemaOfANewerCostpipe: a database migrated by a newer costpipe
// (a migration this binary does not embed) whose tables differ says to run
// that version, not "run costpipe migrate", which has just run.
func TestSchemaOfANewerCostpipe(t *testing.T) {
	t.Parallel()
	w, _, db := openTest(t)
	ctx := context.Background()
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	_, known, err := migrationsUpTo(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.Conn().PrepareBatch(ctx, "INSERT INTO "+db+".schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(known+1), "future", "x", time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	if err := w.Conn().Exec(ctx, "ALTER TABLE "+db+".usage_1d ADD COLUMN future_col UInt8"); err != nil {
		t.Fatal(err)
	}
	_, err = w.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "migrations this costpipe does not know") || strings.Contains(err.Error(), "run costpipe migrate") {
		t.Fatalf("Migrate of a newer costpipe's database: %v; want it to say so", err)
	}
}

// TestStaleLockTakenOverOnce: two waiters that judged the same lock stale
// both try to rename it away; the second, coming after the first took the
// lock over and made its own, fails instead of renaming the new lock away
// (both would then have held it).
func TestStaleLockTakenOverOnce(t *testing.T) {
	t.Parallel()
	w, _, db := openTest(t)
	ctx := context.Background()
	name := db + ".test_lock"
	makeLock(t, w, name, "host-a pid 7", 2*time.Minute, true)
	holder, stale := w.lockHolder(ctx, name)
	if !stale {
		t.Fatalf("a lock 2 min without a heartbeat is not stale: %s", holder)
	}
	release, err := w.takeLock(ctx, name, 0) // the first waiter: takes it over
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := w.renameStale(ctx, name, holder); err == nil { // the second, late
		t.Fatal("a second rename of the same stale lock succeeded: it took the new holder's lock away")
	}
	if h, stale := w.lockHolder(ctx, name); stale || strings.Contains(h, "host-a") {
		t.Errorf("the lock after the late rename: %s (stale %v); want the first waiter's", h, stale)
	}
}
