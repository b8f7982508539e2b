package consumers

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/flock"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A spool write that opened today's file just before dlq unspool took it
// (locked, renamed) waits for the lock, sees that the file is no longer at
// its path, and appends to a new file: nothing lands in the file unspool
// is sending (it would be moved to sent/ unsent).
func TestSpoolWriteAfterUnspoolTookTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newSpool(dir)
	now := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	path, err := s.write(now, []dlqFailure{heldFailure(0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	// unspool's side: lock, then rename under the lock.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := flock.Lock(f); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := s.write(now, []dlqFailure{heldFailure(0, 2)}); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("the write did not wait for the lock: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	taken := path + unspoolingSuffix + "-1"
	if err := os.Rename(path, taken); err != nil {
		t.Fatal(err)
	}
	f.Close() // releases the lock
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(taken)
	cur, _ := os.ReadFile(path)
	if strings.Count(string(old), "\n") != 1 || !strings.Contains(string(old), `"source_offset":1`) {
		t.Errorf("the taken file holds %q, want only the first record", old)
	}
	if strings.Count(string(cur), "\n") != 1 || !strings.Contains(string(cur), `"source_offset":2`) {
		t.Errorf("%s holds %q, want the second record in a new file", filepath.Base(path), cur)
	}
}

// FuzzDecodeSpoolLine: any line gives a record or an error, never a panic;
// a line the spool writes decodes to the record it holds.
func FuzzDecodeSpoolLine(f *testing.F) {
	line, err := json.Marshal(spoolLine(time.Unix(0, 0), heldFailure(3, 42)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(line)
	f.Add([]byte(`{"topic":"t","headers":[{"key":"a","value":"text"}]}`))
	f.Add([]byte(`{"v":3,"topic":"t"}`))
	f.Add([]byte(`{"v":2,"topic":"t","headers":[{"key":"a","value":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeSpoolLine(b)
		if err == nil && r.Topic == "" {
			t.Fatalf("%q decoded to a record without a topic", b)
		}
	})
}

func TestDecodeSpoolLineRoundTrip(t *testing.T) {
	t.Parallel()
	x := heldFailure(3, 42)
	line, err := json.Marshal(spoolLine(time.Unix(0, 0), x))
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeSpoolLine(line)
	if err != nil {
		t.Fatal(err)
	}
	if r.Topic != x.rec.Topic || string(r.Value) != string(x.rec.Value) || !reflect.DeepEqual(r.Headers, x.rec.Headers) {
		t.Errorf("decoded %+v, want the spooled %+v", r, x.rec)
	}
}

// A spool file whose last line was cut short (the process killed in the
// middle of an append) gets a line break before the next record: the cut
// line stands alone, skipped by unspool and reported with its number (the
// killed aggregator sent its record again, whole), and the new record
// is whole and read.
func TestSpoolWriteEndsACutLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newSpool(dir)
	now := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	path := filepath.Join(dir, "dlq-20261205.jsonl")
	if err := os.WriteFile(path, []byte(`{"v":2,"topic":"costpipe.ev`), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write(now, []dlqFailure{heldFailure(0, 9)}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []*kgo.Record
	var cut []int
	err = eachSpoolLine(context.Background(), f, path, func(r *kgo.Record, _, _ int64) error { got = append(got, r); return nil },
		func(line int) { cut = append(cut, line) })
	if err != nil || len(got) != 1 || !reflect.DeepEqual(cut, []int{1}) {
		t.Errorf("reading the file: %d records, cut lines %v, %v; want the record, line 1 cut", len(got), cut, err)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("file holds %q, want the cut line and the record on lines of their own", b)
	}
	if _, err := decodeSpoolLine([]byte(lines[1])); err != nil {
		t.Errorf("the record after the cut line: %v", err)
	}
}

// One unspool works on a directory at a time: two at once (a cron job and
// an operator) would send a file twice, or move one not read.
func TestUnspoolRefusesASecondRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if ok, err := flock.TryLock(d); !ok || err != nil {
		t.Fatalf("locking the directory: %v, %v", ok, err)
	}
	if _, err := UnspoolDLQ(context.Background(), []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}, DLQUnspoolOptions{Dir: dir}); !errors.Is(err, ErrUnspoolRunning) {
		t.Errorf("unspool while another runs: %v, want ErrUnspoolRunning", err)
	}
}
