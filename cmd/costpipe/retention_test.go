package main

import (
	"strings"
	"testing"
)

// TestRetentionCommand: the query fixture has one row per table on
// 2026-01-15; 35 days after January usage_1m's January goes, the rest stays.
func TestRetentionCommand(t *testing.T) {
	dsn := queryDB(t)
	now := "--now=2026-03-08T00:00:00Z"
	r := run(t, "", nil, "--clickhouse", dsn, "retention", now, "--dry-run")
	if r.code != 0 {
		t.Fatalf("dry run: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"would drop usage_1m partition 202601 (ends 2026-02-01): 4 rows", "would drop (dry run) 1 partition(s), 4 rows"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = run(t, "", nil, "--clickhouse", dsn, "retention", now)
	if r.code != 0 || !strings.Contains(r.stdout, "dropped    usage_1m partition 202601") || !strings.Contains(r.stdout, "dropped 1 partition(s)") {
		t.Fatalf("retention: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Minutes are gone; the query layer still answers the day from usage_1d.
	if r := run(t, "", nil, "--clickhouse", dsn, "retention", now); r.code != 0 || !strings.Contains(r.stdout, "dropped 0 partition(s)") {
		t.Errorf("second run: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--from", "2026-01-15", "--to", "2026-01-16", "--format", "csv")
	if r.code != 0 || !strings.Contains(r.stdout, "\n5,1,") {
		t.Errorf("query after retention: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}

	for _, args := range [][]string{{"--keep-minutes", "3d"}, {"--keep-hours", "20d"}, {"--keep-minutes", "soon"}} {
		r := run(t, "", nil, append([]string{"--clickhouse", dsn, "retention"}, args...)...)
		if r.code != 2 || r.stderr == "" {
			t.Errorf("retention %v: exit %d, stderr %q; want 2 and a reason", args, r.code, r.stderr)
		}
	}
}

func TestParseDays(t *testing.T) {
	for in, want := range map[string]float64{"35d": 35 * 24, "0.5d": 12, "840h": 840} {
		if d, err := parseDays(in); err != nil || d.Hours() != want {
			t.Errorf("parseDays(%q) = %v, %v; want %vh", in, d, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "0h", "35 days", "NaNd"} {
		if _, err := parseDays(in); err == nil {
			t.Errorf("parseDays(%q) accepted", in)
		}
	}
	// A number out of range says so, not that it cannot be parsed.
	if _, err := parseDays("99999d"); err == nil || err.Error() != `"99999d" is out of range: want more than 0 and at most 36500d` {
		t.Errorf("parseDays(99999d): %v", err)
	}
}
