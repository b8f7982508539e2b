package warehouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

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
}

// Migrate creates the database when missing and applies, in version order,
// every embedded migration not yet recorded in {database}.schema_migrations.
// It is idempotent: statements use IF NOT EXISTS, so a run interrupted halfway
// is completed by the next one. Concurrent runs are harmless for the same reason.
func (w *Warehouse) Migrate(ctx context.Context) ([]MigrationResult, error) {
	ms, err := chschema.Migrations()
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
	applied := map[int]string{}
	rows, err := w.conn.Query(ctx, "SELECT version, any(checksum) FROM "+db+".schema_migrations GROUP BY version")
	if err != nil {
		return nil, fmt.Errorf("cannot read %s.schema_migrations: %w", db, err)
	}
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot read %s.schema_migrations: %w", db, err)
		}
		applied[int(v)] = sum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read %s.schema_migrations: %w", db, err)
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
		for i, stmt := range m.Statements(db) {
			if err := w.conn.Exec(ctx, stmt); err != nil {
				return out, fmt.Errorf("cannot apply migration %s (statement %d): %w", m.Name, i+1, err)
			}
			res.Statements++
		}
		if err := w.record(ctx, m.Version, m.Name, checksum); err != nil {
			return out, fmt.Errorf("cannot record migration %s: %w", m.Name, err)
		}
		res.Applied = true
		out = append(out, res)
	}
	return out, nil
}

// record notes an applied migration. INSERTs go through a batch (one block)
// naming their columns: ClickHouse 18.16 does not take INSERT ... VALUES with
// bound parameters over the native protocol.
func (w *Warehouse) record(ctx context.Context, version int, name, checksum string) error {
	b, err := w.conn.PrepareBatch(ctx, "INSERT INTO "+w.database+".schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		return err
	}
	if err := b.Append(uint32(version), name, checksum, time.Now().UTC().Truncate(time.Second)); err != nil {
		b.Abort()
		return err
	}
	return b.Send()
}
