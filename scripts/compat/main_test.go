package main

import (
	"slices"
	"testing"
)

// TestNormalize: answers compare equal only up to what differs between
// releases by design (row order, trailing zeros of decimals, DESCRIBE's
// extra columns); any other difference stays.
func TestNormalize(t *testing.T) {
	for _, c := range []struct {
		q, a, b string
		same    bool
	}{
		{"SELECT x", "s1\t1120.000000000000\ns0\t0.500000000000\n", "s0\t0.5\ns1\t1120\n", true},
		{"SELECT x", "s1\t1120.000000000001\n", "s1\t1120\n", false},
		{"SELECT x", "10\n", "1\n", false},
		{"SELECT x", "a\tb\n", "a\tc\n", false},
		{"DESCRIBE TABLE t", "ts\tDateTime('UTC')\t\t\t\n", "ts\tDateTime('UTC')\t\t\t\t\t\n", true},
		{"DESCRIBE TABLE t", "ts\tDateTime('UTC')\n", "ts\tDateTime\n", false},
		{"SELECT x", "[0,1,7]\t[10,20]\n", "[0,1,7]\t[10,20]\n", true},
	} {
		if got := slices.Equal(normalize(c.q, c.a), normalize(c.q, c.b)); got != c.same {
			t.Errorf("%s: %q vs %q: same %v, want %v (%q, %q)", c.q, c.a, c.b, got, c.same, normalize(c.q, c.a), normalize(c.q, c.b))
		}
	}
}

// TestParseRunner reads chdb_runner's frames, bodies with newlines
// included, and refuses a truncated or misnumbered output.
func TestParseRunner(t *testing.T) {
	got, err := parseRunner([]byte("#0 OK 4\na\tb\n\n#1 ERR 5\noops!\n#2 OK 0\n\n"), 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []answer{{true, "a\tb\n"}, {false, "oops!"}, {true, ""}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"#0 OK 9\nab\n", "#1 OK 0\n\n", "#0 OK 0\n\n", "#0 OK x\n\n"} {
		if _, err := parseRunner([]byte(bad), 2); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestNativeInsertsBecomeRows: the data-less Native inserts the driver
// logs are recognised with their table and columns.
func TestNativeInsertsBecomeRows(t *testing.T) {
	m := nativeInsert.FindStringSubmatch("INSERT INTO db.usage_1m_input_v8 (ts, tenant,\n cost_usd) FORMAT Native")
	if m == nil || m[1] != "db.usage_1m_input_v8" || m[2] != "ts, tenant,\n cost_usd" {
		t.Fatalf("got %q", m)
	}
	if nativeInsert.MatchString("INSERT INTO db.usage_1m SELECT * FROM db.usage_1m_v1") {
		t.Error("an INSERT … SELECT is replayed as it is, not replaced")
	}
	for typ, want := range map[string]string{
		"Decimal(38, 12)":                 "CAST(concat(toString(number % 5), '.5') AS Decimal(38, 12))",
		"DateTime('UTC')":                 "toDateTime(1796256000 - number * 25200, 'UTC')",
		"Array(UInt32)":                   "CAST([1, 2] AS Array(UInt32))",
		"AggregateFunction(sum, UInt64)":  "defaultValueOfTypeName('AggregateFunction(sum, UInt64)')",
		"Nullable(String)":                "CAST(concat('s', toString(number % 3)) AS Nullable(String))",
		"AggregateFunction(max, Float64)": "defaultValueOfTypeName('AggregateFunction(max, Float64)')",
	} {
		if got := synthetic(typ, 1796256000); got != want {
			t.Errorf("synthetic(%s) = %s, want %s", typ, got, want)
		}
	}
}

// TestStopMerges: every table the replay creates gets its merges stopped,
// on both servers; other statements get nothing.
func TestStopMerges(t *testing.T) {
	for q, want := range map[string]string{
		"CREATE TABLE IF NOT EXISTS db.usage_1m\n(ts DateTime)":         "SYSTEM STOP MERGES db.usage_1m",
		"CREATE TABLE db.schema_migrations_lock (owner String)":         "SYSTEM STOP MERGES db.schema_migrations_lock",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS db.mv TO db.t AS":       "",
		"CREATE VIEW IF NOT EXISTS db.usage_daily AS":                   "",
		"SELECT count() FROM system.tables WHERE name = 'CREATE TABLE'": "",
	} {
		if got := stopMerges(q); got != want {
			t.Errorf("%q: %q, want %q", q, got, want)
		}
	}
}
