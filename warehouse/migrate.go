package warehouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	chschema "github.com/costpipe/costpipe/schemas/clickhouse"
)

// MigrationResult says what Migrate did with one migration.
type MigrationResult struct {
	Version int
	Name    string
	// Applied is true when this run executed the migration, false when it had
	// been applied before.
	Applied bool
	// Statements is how many statements the run executed (0 when skipped).
	Statements int
	// ChecksumMismatch is true when the recorded checksum differs from the
	// embedded file: someone edited a released migration.
	ChecksumMismatch bool
	// Kept are the tables (database.name) from before the migration that
	// this run kept with their data, for the user to drop once satisfied.
	// Empty ones are dropped: a new database has nothing to keep.
	Kept []string
}

// upgradeLeftovers are, per migration version, the tables it renames away
// and keeps (the rollups of the schema it replaces, copied and checked).
var upgradeLeftovers = map[int][]string{
	3: {"usage_1m_v1", "usage_1h_v1", "usage_1d_v1"},
	7: {"usage_1m_v4", "usage_1h_v4", "usage_1d_v4"},
}

// Migrate creates the database when missing and applies, in version order,
// every embedded migration not yet recorded in {database}.schema_migrations,
// then checks that the rollup tables have the columns warehouse declares
// (CheckSchema). A migration's statements can be repeated, so a run
// interrupted halfway is completed by the next one. Concurrent runs (several
// aggregators starting at once) take turns: the one applying migrations
// holds a lock table, {database}.schema_migrations_lock, and the others wait
// for it (up to Options.MigrateLockWait) and then find nothing left to do.
//
// A database created on a cluster by MigrateCluster is recognised (ClusterOf)
// and handled by MigrateCluster, so every command that migrates at start
// works against either.
func (w *Warehouse) Migrate(ctx context.Context) ([]MigrationResult, error) {
	cluster, err := w.ClusterOf(ctx)
	if err != nil {
		return nil, err
	}
	if cluster != "" {
		return w.MigrateCluster(ctx, cluster)
	}
	out, err := w.migrate(ctx, math.MaxInt)
	if err != nil {
		return out, err
	}
	return out, w.CheckSchema(ctx)
}

// migrationsUpTo returns the embedded migrations of version upTo and below,
// in order, and the version of the newest embedded one.
func migrationsUpTo(upTo int) (ms []chschema.Migration, latest int, err error) {
	all, err := chschema.Migrations()
	if err != nil {
		return nil, 0, err
	}
	for _, m := range all {
		if m.Version <= upTo {
			ms = append(ms, m)
		}
	}
	return ms, all[len(all)-1].Version, nil
}

// migrate applies the migrations up to version upTo (tests stop early to
// build an old schema).
func (w *Warehouse) migrate(ctx context.Context, upTo int) ([]MigrationResult, error) {
	ms, _, err := migrationsUpTo(upTo)
	if err != nil {
		return nil, err
	}
	db := w.database
	if err := w.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		return nil, fmt.Errorf("cannot create database %q: %w", db, err)
	}
	if err := w.conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+db+`.schema_migrations
(version UInt32, name String, checksum String, applied_at DateTime)
ENGINE = MergeTree ORDER BY version`); err != nil {
		return nil, fmt.Errorf("cannot create %s.schema_migrations: %w", db, err)
	}
	applied, err := w.applied(ctx)
	if err != nil {
		return nil, err
	}
	pending := false
	for _, m := range ms {
		if _, ok := applied[m.Version]; !ok {
			pending = true
		}
	}
	if pending {
		unlock, err := w.lock(ctx)
		if err != nil {
			return nil, err
		}
		defer unlock()
		// Another run may have applied them while we waited.
		if applied, err = w.applied(ctx); err != nil {
			return nil, err
		}
	}
	// A statement that copies a table sends nothing back until it is done:
	// run them on a connection that waits as long as it takes (ctx still
	// bounds it).
	conn := w.conn
	if pending {
		opts, _, _ := parseDSN(w.dsn)
		applyTLS(opts, w.tls)
		opts.Auth.Database = "default"
		opts.ReadTimeout = migrationReadTimeout
		opts.MaxOpenConns, opts.MaxIdleConns = 1, 1
		if c, err := clickhouse.Open(opts); err == nil {
			defer c.Close()
			conn = c
		}
	}

	version := ""
	if pending {
		if version, err = w.ServerVersion(ctx); err != nil {
			return nil, err
		}
	}
	var out []MigrationResult
	for _, m := range ms {
		sum := sha256.Sum256([]byte(m.SQL))
		checksum := hex.EncodeToString(sum[:])
		res := MigrationResult{Version: m.Version, Name: m.Name}
		if prev, ok := applied[m.Version]; ok {
			res.ChecksumMismatch = prev != checksum
			out = append(out, res)
			continue
		}
		for i, st := range m.Steps(db) {
			if st.OnlyIf != "" {
				var run uint8
				if err := conn.QueryRow(ctx, st.OnlyIf).Scan(&run); err != nil {
					return out, fmt.Errorf("cannot apply migration %s (statement %d): cannot evaluate its guard %q: %w", m.Name, i+1, st.OnlyIf, err)
				}
				if run != 1 {
					continue
				}
			}
			sctx := ctx
			if set := alterSettings(version, st.SQL); set != nil {
				sctx = clickhouse.Context(ctx, clickhouse.WithSettings(set))
			}
			if err := conn.Exec(sctx, st.SQL); err != nil {
				return out, fmt.Errorf("cannot apply migration %s (statement %d, %q): %w", m.Name, i+1, firstLine(st.SQL), err)
			}
			res.Statements++
		}
		if err := w.record(ctx, m); err != nil {
			return out, fmt.Errorf("cannot record migration %s: %w", m.Name, err)
		}
		res.Applied = true
		if res.Kept, err = w.keepLeftovers(ctx, conn, upgradeLeftovers[m.Version]); err != nil {
			return append(out, res), fmt.Errorf("migration %s: %w", m.Name, err)
		}
		out = append(out, res)
	}
	return out, nil
}

// keepLeftovers drops those of tables (names in the database) that exist
// and hold no rows and returns the others that exist, as database.name.
func (w *Warehouse) keepLeftovers(ctx context.Context, conn clickhouse.Conn, tables []string) ([]string, error) {
	var kept []string
	for _, t := range tables {
		name := w.database + "." + t
		var exists uint8
		if err := conn.QueryRow(ctx, "SELECT count() > 0 FROM system.tables WHERE database = ? AND name = ?", w.database, t).Scan(&exists); err != nil {
			return kept, fmt.Errorf("cannot look for %s: %w", name, err)
		}
		if exists == 0 {
			continue
		}
		var rows uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+name).Scan(&rows); err != nil {
			return kept, fmt.Errorf("cannot count the rows of %s: %w", name, err)
		}
		if rows > 0 {
			kept = append(kept, name)
			continue
		}
		if err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+name); err != nil {
			return kept, fmt.Errorf("cannot drop the empty %s: %w", name, err)
		}
	}
	return kept, nil
}

// alterSettings are the settings to run the migration statement q with on a
// server of version: an ALTER on ClickHouse 20 and later waits for the
// mutation it starts, on every replica (mutations_sync = 2), and for a
// metadata change to reach every replica. There a DROP
// COLUMN returns before the parts have lost the column, and a migration's
// next statement may add a column of the same name (0008 replaces stored
// columns by ALIAS columns): it must find the drop done. 18.16 runs an
// ALTER to the end before answering and does not know the setting: nil.
func alterSettings(version, q string) clickhouse.Settings {
	if !strings.HasPrefix(strings.TrimSpace(q), "ALTER ") || serverMajor(version) < 20 {
		return nil
	}
	// mutations_sync waits for the mutations of every replica, and
	// replication_alter_partitions_sync (alter_sync on current servers) for
	// a metadata ALTER to reach every replica: otherwise the next member's
	// guard may still see the old columns and issue the ALTER again.
	return clickhouse.Settings{"mutations_sync": 2, "replication_alter_partitions_sync": 2}
}

// serverMajor is the major version of a version() string, "24.8.4.13" → 24
// (0 when it does not start with a number).
func serverMajor(version string) int {
	major, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0
	}
	return n
}

// migrationReadTimeout bounds how long a migration statement may run without
// the server sending anything (clickhouse-go's default is 5 minutes; copying
// a large rollup table on 18.16 takes longer and reports no progress).
const migrationReadTimeout = 12 * time.Hour

// applied returns the recorded migrations' checksums by version.
func (w *Warehouse) applied(ctx context.Context) (map[int]string, error) {
	db := w.database
	applied := map[int]string{}
	rows, err := w.conn.Query(ctx, "SELECT version, any(checksum) FROM "+db+".schema_migrations GROUP BY version")
	if err != nil {
		return nil, fmt.Errorf("cannot read %s.schema_migrations: %w", db, err)
	}
	defer rows.Close()
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("cannot read %s.schema_migrations: %w", db, err)
		}
		applied[int(v)] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read %s.schema_migrations: %w", db, err)
	}
	return applied, nil
}

// lock takes the migration lock, {database}.schema_migrations_lock (see
// takeLock: a holder that died is taken over after a minute without its
// heartbeat), waiting up to Options.MigrateLockWait while another run
// applies migrations. The returned func drops it.
func (w *Warehouse) lock(ctx context.Context) (func(), error) {
	name := w.database + ".schema_migrations_lock"
	release, err := w.takeLock(ctx, name, w.lockWait)
	var held *LockHeldError
	if errors.As(err, &held) {
		return nil, fmt.Errorf("another costpipe is applying migrations to %s (lock %s held by %s) for more than %s; "+
			"wait for it (a holder that died is taken over a minute after its last heartbeat), or if the lock has no heartbeat "+
			"(a costpipe older than this one holds it) and no migration is running, DROP TABLE %s and retry", w.database, name, held.Holder, w.lockWait, name)
	}
	return release, err
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// record records the migrations ms as applied, with the checksums of
// their SQL, in one insert (one block: it lands whole or not at all). The
// INSERT goes through a batch naming its columns: ClickHouse 18.16 does
// not take INSERT ... VALUES with bound parameters over the native
// protocol.
func (w *Warehouse) record(ctx context.Context, ms ...chschema.Migration) error {
	b, err := w.conn.PrepareBatch(ctx, "INSERT INTO "+w.database+".schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, m := range ms {
		sum := sha256.Sum256([]byte(m.SQL))
		if err := b.Append(uint32(m.Version), m.Name, hex.EncodeToString(sum[:]), now); err != nil {
			b.Abort()
			return err
		}
	}
	return b.Send()
}

// MigrationApplied returns when migration version was applied to the
// database (its earliest record; ok false when it is not recorded).
func (w *Warehouse) MigrationApplied(ctx context.Context, version int) (at time.Time, ok bool, err error) {
	var (
		n    uint64
		unix uint32
	)
	// As a Unix time: applied_at is a DateTime of the server's zone.
	err = w.conn.QueryRow(ctx, "SELECT count(), toUnixTimestamp(min(applied_at)) FROM "+w.database+".schema_migrations WHERE version = ?", uint32(version)).Scan(&n, &unix)
	if err != nil {
		return at, false, fmt.Errorf("cannot read %s.schema_migrations: %w", w.database, err)
	}
	return time.Unix(int64(unix), 0).UTC(), n > 0, nil
}
