package consumers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A spool write that opened today's file just before dlq unspool took it
// (locked, renamed) waits for the lock, sees that the file is no longer at
// its path, and appends to a new file: nothing lands in the file unspool
// is sending (it would be moved to sent/ unsent).
func TestSpoolWriteAfterUnspoolTookTheFile(t *testing.T) {
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
	if err := lockFile(f); err != nil {
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
