package warehouse

import (
	"context"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
)

// boundary are two rows on both sides of the UTC month boundary that Europe/Berlin
// (23:30Z is already February there) and America/New_York (00:30Z is still
// January there) put in other local months and days.
var boundary = []struct {
	ts     time.Time
	offset int64
}{
	{time.Date(2026, 1, 31, 23, 30, 0, 0, time.UTC), 10},
	{time.Date(2026, 2, 1, 0, 30, 0, 0, time.UTC), 11},
}

// landBoundary lands the boundary rows into every table, one insert per UTC
// month as the aggregator does, with insert (InsertRollups, or landV1 for
// the 0001 schema).
func landBoundary(t *testing.T, insert func(Table, []Rollup)) {
	t.Helper()
	for _, tb := range Tables {
		for _, b := range boundary {
			insert(tb, []Rollup{testRollup(tb.Truncate(b.ts), 0, b.offset, 1)})
		}
	}
}

// wantBoundaryMarks are the marks of the boundary rows: per UTC month.
var wantBoundaryMarks = map[MarkKey]int64{
	{Minute, 202601, 0}: 10, {Minute, 202602, 0}: 11,
	{Hour, 202601, 0}: 10, {Hour, 202602, 0}: 11,
	{Day, 202601, 0}: 10, {Day, 202602, 0}: 11,
}

// partitions returns the partition ids of table's active parts.
func partitions(t *testing.T, w *Warehouse, table string) []string {
	t.Helper()
	rows, err := w.Conn().Query(context.Background(), "SELECT DISTINCT partition FROM system.parts WHERE active AND database = ? AND table = ?", w.Database(), table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// TestTimezoneServers runs the month-boundary case against servers whose
// time zone is not UTC: on a fresh database, and upgrading a 0001 database
// (whose DateTime columns followed the server's zone) the way `costpipe
// migrate` and `costpipe aggregate` do.
func TestTimezoneServers(t *testing.T) {
	t.Parallel()
	for _, tz := range []string{"Europe/Berlin", "America/New_York"} {
		t.Run(tz, func(t *testing.T) {
			srv := chtest.StartWithOptions(t, chtest.Options{Timezone: tz})
			ctx := context.Background()
			open := func(db string) *Warehouse {
				o := DefaultOptions()
				o.DSN = srv.DSN(db)
				w, err := Open(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { w.Close() })
				return w
			}
			check := func(w *Warehouse) {
				t.Helper()
				marks, err := w.LandingMarks(ctx, "costpipe.events", []int32{0}, 0)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(marks, wantBoundaryMarks) {
					t.Errorf("marks %v, want %v", marks, wantBoundaryMarks)
				}
				for _, tb := range Tables {
					if got := partitions(t, w, tb.Name()); !reflect.DeepEqual(got, []string{"202601", "202602"}) {
						t.Errorf("%s partitions %v, want [202601 202602]", tb.Name(), got)
					}
					// Each row sits in its UTC month's partition, on its UTC bucket.
					rows, err := w.Conn().Query(ctx, "SELECT _partition_id, toUInt32(ts), toYYYYMMDD(ts), sumMerge(requests) FROM "+w.Database()+"."+tb.Name()+
						" GROUP BY _partition_id, ts ORDER BY ts")
					if err != nil {
						t.Fatal(err)
					}
					i := 0
					for ; rows.Next(); i++ {
						var (
							part     string
							ts, day  uint32
							requests uint64
						)
						if err := rows.Scan(&part, &ts, &day, &requests); err != nil {
							t.Fatal(err)
						}
						want := boundary[min(i, 1)].ts
						if wantTS := tb.Truncate(want); part != want.Format("200601") || int64(ts) != wantTS.Unix() ||
							day != uint32(wantTS.Year()*10000+int(wantTS.Month())*100+wantTS.Day()) || requests != 11 {
							t.Errorf("%s row %d: partition %s ts %d day %d requests %d; want %s %d %s 11", tb.Name(), i, part, ts, day, requests,
								want.Format("200601"), wantTS.Unix(), wantTS.Format("20060102"))
						}
					}
					rows.Close()
					if i != 2 {
						t.Errorf("%s: %d rows, want 2", tb.Name(), i)
					}
				}
			}

			t.Run("fresh", func(t *testing.T) {
				w := open("fresh")
				if _, err := w.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				landBoundary(t, func(tb Table, rows []Rollup) {
					if err := w.InsertRollups(ctx, tb, rows); err != nil {
						t.Fatal(err)
					}
				})
				check(w)
			})

			t.Run("upgrade from 0001", func(t *testing.T) {
				w := open("old")
				if _, err := w.migrate(ctx, 2); err != nil {
					t.Fatal(err)
				}
				landBoundary(t, func(tb Table, rows []Rollup) { landV1(t, w, tb, rows) })
				// Schema 0001 partitions by the server's local month: the
				// marks come out under the wrong months there.
				before, err := w.LandingMarks(ctx, "costpipe.events", []int32{0}, 0)
				if err != nil {
					t.Fatal(err)
				}
				if reflect.DeepEqual(before, wantBoundaryMarks) {
					t.Errorf("0001 on a %s server gives UTC marks %v: the case does not test the time zone", tz, before)
				}
				if _, err := w.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				check(w)
			})
		})
	}
}
