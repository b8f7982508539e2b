package consumers

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestNoteDLQ: the first DLQ record of a reason is logged at once, the
// next ones at most once a minute per reason, with how many came since.
func TestNoteDLQ(t *testing.T) {
	t.Parallel()
	var buf lockedBuffer
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	c := &Consumer{opts: Options{Now: func() time.Time { return now }}, log: textLogger(&buf)}
	rec := func(off int64) *kgo.Record { return &kgo.Record{Partition: 2, Offset: off} }
	c.noteDLQ(rec(10), reasonTooOld, "event \"a\" is 192h0m0s old, beyond --max-event-age 168h0m0s")
	for i := int64(11); i < 40; i++ {
		now = now.Add(time.Second)
		c.noteDLQ(rec(i), reasonTooOld, "old")
	}
	c.noteDLQ(rec(40), reasonInvalid, "bad json")
	now = now.Add(31 * time.Second) // 60 s after the first line
	c.noteDLQ(rec(41), reasonTooOld, "event \"b\" is 200h0m0s old")
	want := []string{
		`level=WARN msg="records sent to the DLQ" reason=too_old records=1 partition=2 offset=10 example="event \"a\" is 192h0m0s old, beyond --max-event-age 168h0m0s"`,
		`level=WARN msg="records sent to the DLQ" reason=invalid records=1 partition=2 offset=40 example="bad json"`,
		`level=WARN msg="records sent to the DLQ" reason=too_old records=30 partition=2 offset=41 example="event \"b\" is 200h0m0s old" in_the_last=1m0s`,
	}
	if got := strings.Split(strings.TrimSpace(buf.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
