package consumers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/logtest"
	"github.com/costpipe/costpipe/schemas"
)

var errRefused = errors.New("TOPIC_AUTHORIZATION_FAILED: denied")

// heldFailure is a DLQ record of the source record at partition p, offset
// off that Kafka refused for good.
func heldFailure(p int32, off int64) dlqFailure {
	return dlqFailure{
		rec: &kgo.Record{Topic: schemas.DefaultDLQTopic, Value: []byte(`{"event_id":"bad"`), Headers: []kgo.RecordHeader{
			{Key: HeaderDLQReason, Value: []byte(reasonInvalid)}}},
		src:      dlqSource{topic: schemas.DefaultTopic, pos: dlqPos{p, off}, time: 1_700_000_000_000, reason: reasonInvalid},
		err:      errRefused,
		attempts: 5,
	}
}

// spoolConsumer is a Consumer (its client points at nothing) spooling to
// dir, logging to buf, on the clock now.
func spoolConsumer(t *testing.T, dir string, buf *logtest.Buffer, reg prometheus.Registerer, now *fakeClock) *Consumer {
	t.Helper()
	opts := DefaultOptions()
	opts.Brokers = []string{"127.0.0.1:1"}
	opts.DLQSpoolDir = dir
	opts.Logger = textLogger(buf)
	opts.Registerer = reg
	opts.Now = now.Now
	c, err := New(opts, &recSink{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cl.Close)
	return c
}

// shortFile fails its writes, when fail is set, after writing half.
type shortFile struct {
	*os.File
	fail *bool
}

func (f shortFile) Write(p []byte) (int, error) {
	if *f.fail {
		n, _ := f.File.Write(p[:len(p)/2])
		return n, syscall.ENOSPC
	}
	return f.File.Write(p)
}

// TestSpoolShortWriteIsUndone: a write that fails halfway (a full disk)
// is truncated back, so the next append does not continue a half line.
func TestSpoolShortWriteIsUndone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newSpool(dir)
	fail := false
	s.open = func(path string) (spoolFile, error) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o640)
		return shortFile{f, &fail}, err
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	path, err := s.write(now, []dlqFailure{heldFailure(0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	fail = true
	if _, err := s.write(now, []dlqFailure{heldFailure(0, 2), heldFailure(0, 3)}); err == nil || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("short write: %v, want ENOSPC", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Fatalf("after a failed write the spool file is\n%s\nwant it as before:\n%s", after, before)
	}
	fail = false
	if _, err := s.write(now, []dlqFailure{heldFailure(0, 2), heldFailure(0, 3)}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var offs []int64
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var line spooledRecord
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("corrupt spool line %q: %v", sc.Text(), err)
		}
		offs = append(offs, line.SourceOffset)
	}
	if len(offs) != 3 || offs[0] != 1 || offs[1] != 2 || offs[2] != 3 {
		t.Errorf("spooled source offsets %v, want [1 2 3]", offs)
	}
}

// TestSpoolLineFormat: one line per record, header values in base64 like
// key and value (binary values survive; they became U+FFFD before), and
// the source position and reason in clear.
func TestSpoolLineFormat(t *testing.T) {
	t.Parallel()
	s := newSpool(t.TempDir())
	f := heldFailure(3, 42)
	f.rec.Key = []byte("k")
	f.rec.Headers = append([]kgo.RecordHeader{{Key: "trace", Value: []byte{0xff, 0x00, 0xfe}}, {Key: "empty"}}, f.rec.Headers...)
	path, err := s.write(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC), []dlqFailure{f})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "dlq-20261204.jsonl" {
		t.Errorf("spool file %s, want dlq-20261204.jsonl", path)
	}
	got, _ := os.ReadFile(path)
	want := `{"v":2,"spooled_at":"2026-12-04T12:00:00Z","topic":"costpipe.events.dlq","key":"aw==","value":"eyJldmVudF9pZCI6ImJhZCI=",` +
		`"headers":[{"key":"trace","value":"/wD+"},{"key":"empty","value":null},{"key":"costpipe-dlq-reason","value":"aW52YWxpZA=="}],` +
		`"source_topic":"costpipe.events","source_partition":3,"source_offset":42,"reason":"invalid",` +
		`"error":"TOPIC_AUTHORIZATION_FAILED: denied","attempts":5}` + "\n"
	if string(got) != want {
		t.Errorf("spool line\n%s\nwant\n%s", got, want)
	}
	var line spooledRecord
	if err := json.Unmarshal(got, &line); err != nil || !bytes.Equal(line.Headers[0].Value, []byte{0xff, 0x00, 0xfe}) {
		t.Errorf("binary header read back as %v (%v)", line.Headers, err)
	}
}

// TestSpoolBytesGauge: costpipe_dlq_spool_bytes holds the bytes of the
// spool directory's files, read at each scrape: from the start, after the
// consumer's writes, and after an operator moved the files away.
func TestSpoolBytesGauge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dlq-20261203.jsonl"), bytes.Repeat([]byte("x"), 100), 0o640); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c := spoolConsumer(t, dir, &logtest.Buffer{}, reg, newFakeClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)))
	if got := gauge(t, reg, "costpipe_dlq_spool_bytes"); got != 100 {
		t.Fatalf("costpipe_dlq_spool_bytes at the start = %v, want 100", got)
	}
	c.held.recs = []dlqFailure{heldFailure(0, 1), heldFailure(0, 2)}
	if err := c.spoolHeld(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "dlq-20261204.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if got := gauge(t, reg, "costpipe_dlq_spool_bytes"); got != float64(100+fi.Size()) {
		t.Errorf("costpipe_dlq_spool_bytes after a write = %v, want %d", got, 100+fi.Size())
	}
	// An operator re-produced the records and moved the files away: the
	// gauge (and an alert on it) clears without a restart.
	for _, f := range []string{"dlq-20261203.jsonl", "dlq-20261204.jsonl"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if got := gauge(t, reg, "costpipe_dlq_spool_bytes"); got != 0 {
		t.Errorf("costpipe_dlq_spool_bytes after the files were moved away = %v, want 0", got)
	}
}

// TestSpooledBatchIsOneLogLine: a batch of spooled records is one ERROR
// line naming the file, the first record and what to do; the next batches
// within a minute are counted into the next line.
func TestSpooledBatchIsOneLogLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var buf logtest.Buffer
	now := newFakeClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	c := spoolConsumer(t, dir, &buf, nil, now)
	spool := func(offs ...int64) {
		t.Helper()
		for _, off := range offs {
			c.held.recs = append(c.held.recs, heldFailure(1, off))
		}
		if err := c.spoolHeld(); err != nil {
			t.Fatal(err)
		}
	}
	spool(10, 11, 12)
	now.Advance(10 * time.Second)
	spool(13)
	spool(14, 15)
	now.Advance(50 * time.Second)
	spool(16)
	file := filepath.Join(dir, "dlq-20261204.jsonl")
	action := `action="grant produce on costpipe.events.dlq or create it, then re-produce the records of ` + file + ` (costpipe dlq unspool --dlq-spool ` + dir + `)"`
	want := []string{
		`level=ERROR msg="DLQ records refused by Kafka written to the spool instead" records=3 file=` + file + ` topic=costpipe.events.dlq first_partition=1 first_offset=10 reason=invalid attempts=5 ` +
			`err="TOPIC_AUTHORIZATION_FAILED: denied" ` + action,
		`level=ERROR msg="DLQ records refused by Kafka written to the spool instead" records=4 file=` + file + ` topic=costpipe.events.dlq first_partition=1 first_offset=16 reason=invalid attempts=5 ` +
			`err="TOPIC_AUTHORIZATION_FAILED: denied" ` + action + ` batches=3 in_the_last=1m0s`,
	}
	got := buf.Lines("spool")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestHeldDLQRecordsAreBounded: beyond maxHeldRecords a record refused for
// good is not kept, but its position holds the commits back until it is
// read again; a record held is not sent again when read again.
func TestHeldDLQRecordsAreBounded(t *testing.T) {
	// Not parallel: it lowers maxHeldRecords, which every consumer of the package reads.
	defer func(n int) { maxHeldRecords = n }(maxHeldRecords)
	maxHeldRecords = 2
	dir := filepath.Join(t.TempDir(), "spool")
	now := newFakeClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	var buf logtest.Buffer
	c := spoolConsumer(t, dir, &buf, nil, now)
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil { // the spool breaks
		t.Fatal(err)
	}
	c.dlqOpen = map[dlqPos]struct{}{}
	for _, f := range []dlqFailure{heldFailure(0, 5), heldFailure(0, 7), heldFailure(0, 9), heldFailure(1, 3)} {
		c.dlqOpen[f.src.pos] = struct{}{}
		c.hold(f)
	}
	lim := c.held.commitLimits()
	if len(c.held.recs) != 2 || c.held.dropped != 2 || len(lim) != 2 || lim[0].pos.off != 5 || lim[1].pos.off != 3 {
		t.Fatalf("held %d, dropped %d, commit limits %v; want 2 held, 2 dropped, limits 5 and 3", len(c.held.recs), c.held.dropped, lim)
	}
	if _, ok := c.dlqOpen[dlqPos{0, 9}]; ok {
		t.Error("a record not kept stays open: read again, it would not be sent again")
	}
	// Read again (a rewind), a held record is not sent twice.
	c.dlq(&kgo.Record{Topic: schemas.DefaultTopic, Partition: 0, Offset: 5, Value: []byte("x")}, reasonInvalid, "bad", nil)
	if got := counter(t, c.m.dlq.WithLabelValues(reasonInvalid)); got != 0 || c.dlqPending != 0 {
		t.Errorf("a held record read again was sent again (%v sent, %d pending)", got, c.dlqPending)
	}
	var held *dlqHeldError
	if err := c.spoolHeld(); !errors.As(err, &held) || held.records != 4 || !strings.Contains(err.Error(), dir) {
		t.Fatalf("spoolHeld with the spool broken = %v, want a dlqHeldError of 4 records naming %s", err, dir)
	}
	// The spool works again: the held records go, the dropped ones still
	// hold the commits back until they are read again.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	now.Advance(spoolRetryMin)
	if err := c.spoolHeld(); !errors.As(err, &held) || held.records != 2 {
		t.Fatalf("spoolHeld with only dropped records = %v, want a dlqHeldError of 2 records", err)
	}
	if lim := c.held.commitLimits(); len(lim) != 2 || lim[0].pos.off != 9 || lim[1].pos.off != 3 {
		t.Errorf("commit limits after spooling the held records %v, want 9 and 3 (the dropped ones)", lim)
	}
	c.rereadDropped(t.Context()) // no partition owned: their next owner reads them
	if lim := c.held.commitLimits(); lim != nil || c.held.dropped != 0 {
		t.Errorf("after rereadDropped: limits %v, dropped %d", lim, c.held.dropped)
	}
	if len(buf.Lines("DLQ spool directory writable again")) != 1 {
		t.Errorf("log:\n%s", buf.String())
	}
}
