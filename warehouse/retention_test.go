package warehouse

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRetention(t *testing.T) {
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
	// 35 days before this clock is exactly the end of January: January goes.
	now := time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)
	o := DefaultRetentionOptions()
	o.Now = func() time.Time { return now }

	type brief struct {
		Table   Table
		Month   Month
		Dropped bool
	}
	briefs := func(ps []Partition) []brief {
		var out []brief
		for _, p := range ps {
			if p.Rows != 1 || p.Bytes == 0 {
				t.Errorf("%s %d: %d rows, %d bytes; want 1 row", p.Table.Name(), p.Month, p.Rows, p.Bytes)
			}
			out = append(out, brief{p.Table, p.Month, p.Dropped})
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
		want := []brief{{Minute, 202412, false}, {Minute, 202510, false}, {Hour, 202412, false}}
		if got := briefs(ps); !reflect.DeepEqual(got, want) {
			t.Errorf("dry run = %+v, want %+v", got, want)
		}
	})

	want := []brief{{Minute, 202412, false}, {Minute, 202510, false}, {Minute, 202601, false}, {Hour, 202412, false}}
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
