package warehouse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
)

func TestRetention(t *testing.T) {
	t.Parallel()
	w, _, _ := openTest(t)
	ctx := context.Background()
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	months := []time.Time{
		time.Date(2024, 12, 31, 23, 59, 0, 0, time.UTC),
		time.Date(2025, 10, 15, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 31, 23, 59, 0, 0, time.UTC),
		time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
	}
	for i, ts := range months {
		for _, tb := range Tables {
			if err := w.InsertRollups(ctx, tb, []Rollup{testRollup(tb.Truncate(ts), 0, int64(i), 1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A month of the summary of hours whose rollup month is gone (dropped
	// by hand, or by a run that failed between the two): retention drops it
	// from the summary's own partitions.
	if err := w.InsertRollups(ctx, Hour, []Rollup{testRollup(time.Date(2024, 11, 5, 7, 0, 0, 0, time.UTC), 0, 9, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Conn().Exec(ctx, "ALTER TABLE "+w.Database()+".usage_1h DROP PARTITION 202411"); err != nil {
		t.Fatal(err)
	}
	// 35 days before this clock is exactly the end of January: January goes.
	now := time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)
	o := DefaultRetentionOptions()
	o.Now = func() time.Time { return now }

	type brief struct {
		Table   string
		Month   Month
		Dropped bool
	}
	briefs := func(ps []Partition) []brief {
		var out []brief
		for _, p := range ps {
			if p.Rows != 1 || p.Bytes == 0 || p.Database != w.Database() || p.Err != nil {
				t.Errorf("%s %d: %d rows, %d bytes in %q, err %v; want 1 row in %s", p.Name(), p.Month, p.Rows, p.Bytes, p.Database, p.Err, w.Database())
			}
			out = append(out, brief{p.Name(), p.Month, p.Dropped})
		}
		return out
	}

	t.Run("one second earlier January stays", func(t *testing.T) {
		o := o
		o.DryRun = true
		o.Now = func() time.Time { return now.Add(-time.Second) }
		ps, err := w.Retention(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		want := []brief{{"usage_1m", 202412, false}, {"usage_1m", 202510, false},
			{"usage_model_1h", 202411, false}, {"usage_model_1h", 202412, false}, {"usage_1h", 202412, false}}
		if got := briefs(ps); !reflect.DeepEqual(got, want) {
			t.Errorf("dry run = %+v, want %+v", got, want)
		}
	})

	// Every month of usage_model_1h that expires is listed, with its size:
	// the summary's own, and the one its rollup no longer has.
	want := []brief{{"usage_1m", 202412, false}, {"usage_1m", 202510, false}, {"usage_1m", 202601, false},
		{"usage_model_1h", 202411, false}, {"usage_model_1h", 202412, false}, {"usage_1h", 202412, false}}
	dry := o
	dry.DryRun = true
	ps, err := w.Retention(ctx, dry)
	if err != nil {
		t.Fatal(err)
	}
	if got := briefs(ps); !reflect.DeepEqual(got, want) {
		t.Errorf("dry run = %+v, want %+v", got, want)
	}
	if got := partitions(t, w, "usage_1m"); len(got) != 4 {
		t.Errorf("after the dry run usage_1m has partitions %v, want all 4", got)
	}

	ps, err = w.Retention(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		want[i].Dropped = true
	}
	if got := briefs(ps); !reflect.DeepEqual(got, want) {
		t.Errorf("retention = %+v, want %+v", got, want)
	}
	for table, parts := range map[string][]string{
		"usage_1m": {"202602"},
		"usage_1h": {"202510", "202601", "202602"},
		"usage_1d": {"202412", "202510", "202601", "202602"},
		// The summary of hours loses the same months as its rollup.
		"usage_model_1h": {"202510", "202601", "202602"},
		"usage_model_1d": {"202412", "202510", "202601", "202602"},
	} {
		if got := partitions(t, w, table); !reflect.DeepEqual(got, parts) {
			t.Errorf("%s partitions %v, want %v", table, got, parts)
		}
	}
	// Again: nothing left to drop.
	if ps, err := w.Retention(ctx, o); err != nil || len(ps) != 0 {
		t.Errorf("second run = %+v, %v; want nothing", ps, err)
	}

	for _, c := range []struct {
		mod  func(*RetentionOptions)
		want string
	}{
		{func(o *RetentionOptions) { o.KeepMinutes = 3 * 24 * time.Hour }, "max event age"},
		// The aggregators land events up to a day older than their max
		// event age (a clock stepping back): minutes are kept that day more.
		{func(o *RetentionOptions) { o.KeepMinutes = 7 * 24 * time.Hour }, "at least 8d (max event age + 1 day)"},
		{func(o *RetentionOptions) { o.KeepMinutes, o.MaxEventAge = 30*24*time.Hour, 30*24*time.Hour }, "at least 31d"},
		{func(o *RetentionOptions) { o.KeepHours = 10 * 24 * time.Hour }, "less than minutes"},
		{func(o *RetentionOptions) { o.Now = nil }, "clock"},
	} {
		o := DefaultRetentionOptions()
		c.mod(&o)
		if _, err := w.Retention(ctx, o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Retention with bad options = %v, want an error about %q", err, c.want)
		}
	}
}

// TestRetentionMargin: minutes are kept for the aggregators' max event age
// plus the day of margin they read landing marks for, and no less.
func TestRetentionMargin(t *testing.T) {
	t.Parallel()
	o := DefaultRetentionOptions()
	o.KeepMinutes = o.MaxEventAge + ClockMargin
	if err := o.Validate(); err != nil {
		t.Errorf("keep minutes = max event age + 1 day: %v", err)
	}
	o.KeepMinutes -= time.Second
	if err := o.Validate(); err == nil {
		t.Errorf("keep minutes a second short of max event age + 1 day accepted")
	}
}

// TestRetentionKeepsGoing: a server that refuses to drop one partition
// (larger than its max_partition_size_to_drop) does not stop the run: the
// other expired partitions, later months and the hours included, are
// dropped, and the error names the refused one and says why.
func TestRetentionKeepsGoing(t *testing.T) {
	t.Parallel()
	srv := chtest.Start(t)
	ctx := context.Background()
	open := func() *Warehouse {
		opts := DefaultOptions()
		opts.DSN = srv.DSN("costpipe")
		w, err := Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}
	w := open()
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// December 2024: a large month of minutes; every other partition one row.
	var big []Rollup
	for i := range 20000 {
		r := testRollup(time.Date(2024, 12, 1+i%28, i%24, i%60, 0, 0, time.UTC), 0, int64(i), uint64(i+1))
		r.Tenant = fmt.Sprintf("tenant-%d", i)
		big = append(big, r)
	}
	if err := w.InsertRollups(ctx, Minute, big); err != nil {
		t.Fatal(err)
	}
	for i, ts := range []time.Time{time.Date(2024, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(2025, 1, 15, 12, 0, 0, 0, time.UTC)} {
		for _, tb := range Tables {
			if err := w.InsertRollups(ctx, tb, []Rollup{testRollup(tb.Truncate(ts), 1, int64(i), 1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	now := time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)
	o := DefaultRetentionOptions()
	o.Now = func() time.Time { return now }
	o.DryRun = true
	ps, err := w.Retention(ctx, o)
	if err != nil || len(ps) != 6 {
		t.Fatalf("dry run = %+v, %v; want 2 months of usage_1m, usage_model_1h and usage_1h", ps, err)
	}
	limit := (ps[0].Bytes + ps[1].Bytes) / 2 // between December's minutes and January's
	if ps[0].Bytes <= ps[1].Bytes || limit <= max(ps[2].Bytes, ps[3].Bytes, ps[4].Bytes, ps[5].Bytes) {
		t.Fatalf("partition sizes %d, %d, %d, %d, %d, %d: want usage_1m's December the only large one",
			ps[0].Bytes, ps[1].Bytes, ps[2].Bytes, ps[3].Bytes, ps[4].Bytes, ps[5].Bytes)
	}
	conf := fmt.Sprintf("<yandex><max_partition_size_to_drop>%d</max_partition_size_to_drop></yandex>\n", limit)
	if err := os.MkdirAll(filepath.Join(srv.Dir, "config.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(srv.Dir, "config.d", "drop-limit.xml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	w = open()

	o.DryRun = false
	ps, err = w.Retention(ctx, o)
	var re *RetentionError
	if !errors.As(err, &re) || len(re.Failed) != 1 || re.Failed[0].Name() != "usage_1m" || re.Failed[0].Month != 202412 {
		t.Fatalf("retention error %v; want a *RetentionError naming usage_1m 202412 only", err)
	}
	if !DropSizeLimited(err) || !strings.Contains(err.Error(), "costpipe.usage_1m partition 202412: refused by the server: ") ||
		!strings.Contains(re.Failed[0].Reason(), "is more than its max_partition_size_to_drop") || !strings.HasSuffix(DropFlagFile(err), "/flags/force_drop_table") {
		t.Errorf("error %q: want it recognised as the size limit and naming costpipe.usage_1m partition 202412", err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, fmt.Sprintf("%s %d %v %v", p.Name(), p.Month, p.Dropped, p.Err != nil))
	}
	want := []string{"usage_1m 202412 false true", "usage_1m 202501 true false",
		"usage_model_1h 202412 true false", "usage_model_1h 202501 true false",
		"usage_1h 202412 true false", "usage_1h 202501 true false"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("retention = %q, want %q", got, want)
	}
	for table, parts := range map[string][]string{"usage_1m": {"202412"}, "usage_1h": nil, "usage_model_1h": nil} {
		if got := partitions(t, w, table); !reflect.DeepEqual(got, parts) {
			t.Errorf("%s partitions %v, want %v", table, got, parts)
		}
	}
}

// TestRetentionUpgradeCopies lists the copies of the rollups an upgrade kept.
func TestRetentionUpgradeCopies(t *testing.T) {
	t.Parallel()
	w, _, _ := openTest(t)
	ctx := context.Background()
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := w.UpgradeCopies(ctx); err != nil || len(got) != 0 {
		t.Fatalf("UpgradeCopies on a fresh database = %+v, %v; want none", got, err)
	}
	db := w.Database()
	for _, q := range []string{
		"CREATE TABLE " + db + ".usage_1m_v4 (ts DateTime, n UInt64) ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY ts",
		"INSERT INTO " + db + ".usage_1m_v4 SELECT toDateTime(1700000000 + number * 60), number FROM system.numbers LIMIT 2",
	} {
		if err := w.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	got, err := w.UpgradeCopies(ctx)
	if err != nil || len(got) != 1 || got[0].Table != "usage_1m_v4" || got[0].Database != db || got[0].Rows != 2 || got[0].Bytes == 0 {
		t.Errorf("UpgradeCopies = %+v, %v; want usage_1m_v4 with 2 rows", got, err)
	}
}
