package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/costpipe/costpipe/warehouse"
)

func TestReprice(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	file := filepath.Join(t.TempDir(), "fixed.yaml")
	os.WriteFile(file, []byte(`models:
  - provider: openai
    model: gpt-4o
    prices: [{from: 2026-01-01, input: "2", cached_input: "1", output: "8"}]
  - provider: anthropic
    model: claude-sonnet
    prices: [{from: 2026-01-01, input: "3", output: "15"}]
`), 0o644)
	args := []string{"--clickhouse", dsn, "reprice", "--prices", file, "--from", "2026-01-15", "--to", "2026-01-16"}
	// gpt-4o: 800×2 + 200×1 + 250×8 + 50×8 = 4200 µUSD; claude: 10×3 + 20×15 = 330 µUSD;
	// llama-local has no price and keeps its (zero) cost.
	r := run(t, "", nil, append(args, "--dry-run")...)
	if r.code != 0 || !strings.Contains(r.stdout, "total cost 1.500123456789 → 0.004530000000 USD (-1.495593456789)") ||
		!strings.Contains(r.stdout, "dry run: nothing was written") || !strings.Contains(r.stdout, "1 calls without a price kept their cost") {
		t.Fatalf("dry run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "note: calls landed before migration 0004") {
		t.Errorf("dry run on a database created at the current schema warns of pre-0004 rows:\n%s", r.stdout)
	}
	r = run(t, "", nil, args...)
	if r.code != 0 || !strings.Contains(r.stdout, "usage_1m  2 of 4 groups corrected") ||
		!strings.Contains(r.stdout, "costpipe derive --day 2026-01-15..") {
		t.Fatalf("reprice: exit %d\n%s%s; want the derive --day of the days since", r.code, r.stdout, r.stderr)
	}
	q := run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--from", "2026-01-15", "--to", "2026-01-16", "--format", "csv")
	if q.code != 0 || !strings.Contains(q.stdout, ",0.004530000000,") {
		t.Errorf("query usage after reprice: exit %d\n%s", q.code, q.stdout)
	}
	r = run(t, "", nil, args...)
	if r.code != 0 || !strings.Contains(r.stdout, "usage_1d  0 of 4 groups corrected") || !strings.Contains(r.stdout, "(+0.000000000000)") ||
		strings.Contains(r.stdout, "costpipe derive --day") {
		t.Errorf("second run: exit %d\n%s", r.code, r.stdout)
	}
	// A database whose first migration predates 0004 by more than a minute
	// may hold rows without service tiers: the run says how they are priced.
	opts := warehouse.DefaultOptions()
	opts.DSN = dsn
	w, err := warehouse.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	db := w.Database()
	if err := w.Conn().Exec(context.Background(), "INSERT INTO "+db+".schema_migrations (version, name, checksum, applied_at) "+
		"SELECT version, name, checksum, toDateTime('2025-06-01 00:00:00', 'UTC') FROM "+db+".schema_migrations WHERE version = 1"); err != nil {
		t.Fatal(err)
	}
	if r = run(t, "", nil, append(args, "--dry-run")...); r.code != 0 || !strings.Contains(r.stdout, "note: calls landed before migration 0004 was applied") {
		t.Errorf("dry run on a database older than 0004: exit %d\n%s%s; want the note", r.code, r.stdout, r.stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--clickhouse", dsn, "reprice", "--from", "2026-01-15", "--to", "2026-01-16"}, "give the corrected catalog with --prices"},
		{[]string{"--clickhouse", dsn, "reprice", "--prices", file, "--from", "2026-01-15T10:00:00Z", "--to", "2026-01-16"}, `invalid --from`},
		{[]string{"--clickhouse", dsn, "reprice", "--prices", file, "--from", "2026-01-16", "--to", "2026-01-15"}, "empty range"},
	} {
		if r := run(t, "", nil, tc.args...); r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args[2:], r.code, r.stderr, tc.want)
		}
	}
}
