package consumers_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/costpipe/costpipe/consumers"
	"github.com/costpipe/costpipe/schemas"
)

// withInvalid returns n events (tenant t0, gpt-4o) and their JSON records,
// with an invalid record ({"event_id":"bad-I") after event I wherever
// I%every == at, and the invalid records' values.
func (e *env) withInvalid(n, every, at int) (events []schemas.Event, recs []*kgo.Record, bad []string) {
	for i := 0; i < n; i++ {
		ev := e.event(i, "t0", "gpt-4o")
		events = append(events, ev)
		recs = append(recs, jsonRecord(&ev))
		if i%every == at {
			v := fmt.Sprintf(`{"event_id":"bad-%d"`, i)
			bad = append(bad, v)
			recs = append(recs, &kgo.Record{Value: []byte(v)})
		}
	}
	return events, recs, bad
}

// readDLQ returns every record of the DLQ topic, read to its end.
func (e *env) readDLQ() []consumers.DLQRecord {
	e.t.Helper()
	var out []consumers.DLQRecord
	err := consumers.ReadDLQ(context.Background(), []kgo.Opt{kgo.SeedBrokers(e.brokers)}, consumers.DLQReadOptions{Topic: schemas.DefaultDLQTopic},
		func(d consumers.DLQRecord) error {
			out = append(out, d)
			return nil
		})
	if err != nil {
		e.t.Fatalf("reading the DLQ: %v", err)
	}
	return out
}

// readTopic returns every record of topic, read to its end.
func (e *env) readTopic(topic string) []*kgo.Record {
	e.t.Helper()
	var out []*kgo.Record
	err := consumers.ReadDLQ(context.Background(), []kgo.Opt{kgo.SeedBrokers(e.brokers)}, consumers.DLQReadOptions{Topic: topic},
		func(d consumers.DLQRecord) error {
			out = append(out, &kgo.Record{Topic: d.Topic, Partition: d.Partition, Offset: d.Offset, Key: d.Key, Value: d.Value, Headers: d.Headers})
			return nil
		})
	if err != nil {
		e.t.Fatalf("reading %s: %v", topic, err)
	}
	return out
}

// The aggregator refuses events older than --max-event-age (a backfill)
// and invalid ones. dlq read shows each with its reason and source record;
// dlq replay of that reason into a backfill topic, which an aggregator
// with a longer max event age reads, sends exactly those, unchanged, and
// they are counted; a second replay sends nothing; the invalid ones are
// passed over.
func TestReplayDLQ(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	var events, old []schemas.Event
	var recs []*kgo.Record
	for i := 0; i < 30; i++ {
		ev := e.event(i, fmt.Sprintf("t%d", i%3), "gpt-4o")
		if i%10 == 3 {
			ev.Timestamp = e.now.Add(-9 * 24 * time.Hour)
			old = append(old, ev)
		} else {
			events = append(events, ev)
		}
		recs = append(recs, jsonRecord(&ev))
		if i%10 == 7 {
			recs = append(recs, &kgo.Record{Key: []byte("k"), Value: []byte(fmt.Sprintf(`{"event_id":"bad-%d"`, i)),
				Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("x")}}})
		}
	}
	for _, r := range recs {
		r.Topic = schemas.DefaultTopic
	}
	stop := e.run("agg", 100*time.Millisecond)
	e.produce(recs...)
	e.waitTotals(truth(events))
	base := []kgo.Opt{kgo.SeedBrokers(e.brokers)}
	var dlq []consumers.DLQRecord
	waitFor(t, "6 DLQ records", 20*time.Second, func() bool {
		dlq = e.readDLQ()
		return len(dlq) == 6
	})
	reasons := map[string]int{}
	for _, d := range dlq {
		reasons[d.Reason]++
		if d.SourceTopic != schemas.DefaultTopic || d.SourceOffset < 0 || d.Error == "" {
			t.Errorf("DLQ record %s: source %q, error %q; want the source record and the error", d.Where(), d.Source(), d.Error)
		}
		for _, h := range d.Headers {
			if strings.HasPrefix(h.Key, "costpipe-dlq-") {
				t.Errorf("DLQ record %s: header %s left among the original ones", d.Where(), h.Key)
			}
		}
		if d.Reason == "invalid" && (len(d.Headers) != 1 || d.Headers[0].Key != "trace" || string(d.Key) != "k") {
			t.Errorf("invalid record %s: key %q headers %v; want the original key and header", d.Where(), d.Key, d.Headers)
		}
	}
	if want := map[string]int{"too_old": 3, "invalid": 3}; !reflect.DeepEqual(reasons, want) {
		t.Fatalf("DLQ reasons %v, want %v", reasons, want)
	}

	const backfill = "costpipe.backfill"
	adm, err := kgo.NewClient(kgo.SeedBrokers(e.brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(context.Background(), 2, 1, nil, backfill); err != nil {
		t.Fatal(err)
	}
	o := consumers.DLQReplayOptions{Topic: schemas.DefaultDLQTopic, To: backfill, Group: "replay",
		Reasons: []string{"too_old"}, DryRun: true}
	st, err := consumers.ReplayDLQ(context.Background(), base, o)
	if err != nil {
		t.Fatal(err)
	}
	if consumers.Total(st.Sent) != 3 || consumers.Total(st.Other) != 3 {
		t.Fatalf("dry run: would send %v, others %v; want 3 and 3", st.Sent, st.Other)
	}
	o.DryRun = false
	st, err = consumers.ReplayDLQ(context.Background(), base, o)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent["too_old"] != 3 || consumers.Total(st.Sent) != 3 || st.Other["invalid"] != 3 {
		t.Fatalf("replay sent %v, others %v; want 3 too_old sent (the dry run sent nothing), 3 invalid left", st.Sent, st.Other)
	}
	// The backfill group: its own topic, a longer max event age.
	stopBackfill := e.runWith("backfill", 100*time.Millisecond, func(o *consumers.Options) {
		o.Topic, o.DLQTopic, o.MaxEventAge = backfill, backfill+".dlq", 30*24*time.Hour
	}, nil)
	e.waitTotals(truth(append(append([]schemas.Event(nil), events...), old...)))
	var replayed int
	for _, r := range e.readTopic(backfill) {
		for _, h := range r.Headers {
			if h.Key == consumers.HeaderReplayedFrom {
				replayed++
				if !strings.HasPrefix(string(h.Value), schemas.DefaultDLQTopic+"/") {
					t.Errorf("%s = %q, want the DLQ record", h.Key, h.Value)
				}
			}
			if strings.HasPrefix(h.Key, "costpipe-dlq-") {
				t.Errorf("replayed record carries %s", h.Key)
			}
		}
	}
	if replayed != 3 {
		t.Errorf("%d replayed records in %s, want 3", replayed, backfill)
	}
	st, err = consumers.ReplayDLQ(context.Background(), base, o)
	if err != nil {
		t.Fatal(err)
	}
	if consumers.Total(st.Sent) != 0 {
		t.Errorf("second replay sent %v; want nothing (the reason's offsets are past them)", st.Sent)
	}
	// Another reason has its own offsets: the first replay did not pass
	// its records by. Both reasons at once send only what was not sent.
	o.Reasons = []string{"too_old", "invalid"}
	if st, err = consumers.ReplayDLQ(context.Background(), base, o); err != nil || consumers.Total(st.Sent) != 3 || st.Sent["invalid"] != 3 || st.Earlier["too_old"] != 3 {
		t.Errorf("replay of too_old and invalid after too_old: sent %v, earlier %v, %v; want the 3 invalid sent, the 3 too_old left", st.Sent, st.Earlier, err)
	}
	if st, err = consumers.ReplayDLQ(context.Background(), base, o); err != nil || consumers.Total(st.Sent) != 0 {
		t.Errorf("replay of both again: sent %v, %v; want nothing", st.Sent, err)
	}
	o.Reasons = []string{"invalid_rows"}
	if _, err := consumers.ReplayDLQ(context.Background(), base, o); !errors.Is(err, consumers.ErrNotReplayable) {
		t.Errorf("replay of invalid_rows: %v, want ErrNotReplayable (its valid rows were counted)", err)
	}
	o.Reasons, o.To = []string{"too_old"}, "costpipe.backfil"
	if _, err := consumers.ReplayDLQ(context.Background(), base, o); err == nil || !strings.Contains(err.Error(), "costpipe.backfil does not exist") {
		t.Errorf("replay into a missing topic: %v, want an error naming it", err)
	}
	for _, s := range []func() error{stop, stopBackfill} {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.readDLQ()); n != 6 {
		t.Errorf("DLQ holds %d records after the replay, want 6", n)
	}
	if _, err := consumers.ReplayDLQ(context.Background(), base, consumers.DLQReplayOptions{Topic: "nope.dlq", To: backfill, Group: "g", Reasons: []string{"invalid"}}); !errors.Is(err, consumers.ErrNoDLQTopic) {
		t.Errorf("replaying a missing topic: %v, want ErrNoDLQTopic", err)
	}
}

// refuseDLQWhile is refuseDLQProduces while *refuse is set.
func (e *env) refuseDLQWhile(refuse *atomic.Bool) {
	e.t.Helper()
	dlqID := e.topicID(schemas.DefaultDLQTopic)
	e.refuseProduces(func(r *kmsg.ProduceRequest) bool {
		return refuse.Load() && len(r.Topics) > 0 && (r.Topics[0].Topic == schemas.DefaultDLQTopic || r.Topics[0].TopicID == dlqID)
	})
}

// refuseProduces answers every produce request for which refuse holds with
// TOPIC_AUTHORIZATION_FAILED for each of its partitions (refused for good);
// the others are served.
func (e *env) refuseProduces(refuse func(*kmsg.ProduceRequest) bool) {
	e.b.Cluster().ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.b.Cluster().KeepControl()
		r := req.(*kmsg.ProduceRequest)
		if !refuse(r) {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
}

// Kafka refuses the DLQ records for good, so the aggregator spools them.
// Once it takes them again, dlq unspool sends them to the DLQ topic as the
// aggregator would have (original record, costpipe-dlq-* headers), moves
// the file out of the spool gauge, and a second run has nothing to send.
func TestUnspoolDLQ(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	var refuse atomic.Bool
	refuse.Store(true)
	e.refuseDLQWhile(&refuse)
	spool := filepath.Join(t.TempDir(), "spool")
	reg := prometheus.NewRegistry()
	stop := e.runWith("agg", 100*time.Millisecond, func(o *consumers.Options) {
		o.Registerer, o.DLQSpoolDir, o.DLQMaxAttempts = reg, spool, 2
	}, nil)
	events, recs, bad := e.withInvalid(20, 5, 4)
	e.produce(recs...)
	e.waitTotals(truth(events))
	waitFor(t, "4 spooled DLQ records", 30*time.Second, func() bool { return metric(t, reg, "costpipe_dlq_spooled_total") == 4 })
	refuse.Store(false)

	base := []kgo.Opt{kgo.SeedBrokers(e.brokers)}
	st, err := consumers.UnspoolDLQ(context.Background(), base, consumers.DLQUnspoolOptions{Dir: spool, DryRun: true})
	if err != nil || st.Records[schemas.DefaultDLQTopic] != 4 {
		t.Fatalf("dry run: %v, %v; want 4 records for %s", st.Records, err, schemas.DefaultDLQTopic)
	}
	st, err = consumers.UnspoolDLQ(context.Background(), base, consumers.DLQUnspoolOptions{Dir: spool})
	if err != nil {
		t.Fatal(err)
	}
	if st.Records[schemas.DefaultDLQTopic] != 4 || len(st.Files) != 1 {
		t.Fatalf("unspool sent %v of files %v; want 4 records of one file", st.Records, st.Files)
	}
	var got []string
	for _, d := range e.readDLQ() {
		got = append(got, string(d.Value))
		if d.Reason != "invalid" || d.SourceTopic != schemas.DefaultTopic || d.SourceOffset < 0 {
			t.Errorf("unspooled record %s: reason %q source %q; want the aggregator's headers", d.Where(), d.Reason, d.Source())
		}
	}
	sort.Strings(got)
	sort.Strings(bad)
	if !reflect.DeepEqual(got, bad) {
		t.Errorf("DLQ topic holds %q, want %q", got, bad)
	}
	if v := metric(t, reg, "costpipe_dlq_spool_bytes"); v != 0 {
		t.Errorf("costpipe_dlq_spool_bytes = %v after unspool, want 0", v)
	}
	sent, _ := filepath.Glob(filepath.Join(spool, "sent", "dlq-*.jsonl.*"))
	if len(sent) != 1 {
		t.Errorf("files in sent/: %v, want the one sent", sent)
	}
	st, err = consumers.UnspoolDLQ(context.Background(), base, consumers.DLQUnspoolOptions{Dir: spool})
	if err != nil || consumers.Total(st.Records) != 0 {
		t.Errorf("second unspool: %v, %v; want nothing sent", st.Records, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// A spool line that cannot be read stops unspool at its file, naming the
// line, and sends nothing of that file; a line cut short (a killed append,
// whose record the aggregator spooled again) is skipped and reported, and
// the rest of its file sent; format 1 lines (header values as text) are
// read.
func TestUnspoolBadLine(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	dir := t.TempDir()
	v1 := `{"spooled_at":"2026-12-01T00:00:00Z","topic":"costpipe.events.dlq","key":null,"value":"e30=","headers":[{"key":"costpipe-dlq-reason","value":"invalid"}],"reason":"invalid"}`
	if err := os.WriteFile(filepath.Join(dir, "dlq-20261201.jsonl"), []byte(v1+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(dir, "dlq-20261202.jsonl")
	if err := os.WriteFile(badFile, []byte(v1+"\n{\"v\":2,\"topic\":]\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	cutFile := filepath.Join(dir, "dlq-20261203.jsonl")
	if err := os.WriteFile(cutFile, []byte("{\"v\":2,\"topic\":\"costpipe.ev\n"+v1+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	base := []kgo.Opt{kgo.SeedBrokers(e.brokers)}
	st, err := consumers.UnspoolDLQ(context.Background(), base, consumers.DLQUnspoolOptions{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "dlq-20261202.jsonl.unspooling-") || !strings.Contains(err.Error(), " line 2: ") {
		t.Fatalf("unspool of a file with a broken line 2: %v; want an error naming line 2", err)
	}
	if st.Records[schemas.DefaultDLQTopic] != 2 || !reflect.DeepEqual(st.Cut, []string{"dlq-20261203.jsonl line 1"}) {
		t.Errorf("sent %v, cut %q; want the records of the good file and of the cut one, its line 1 cut", st.Records, st.Cut)
	}
	dlq := e.readDLQ()
	if len(dlq) != 2 || string(dlq[0].Value) != "{}" || dlq[0].Reason != "invalid" {
		t.Errorf("DLQ topic holds %+v; want two records ({}, reason invalid from its format 1 header)", dlq)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "dlq-20261202.jsonl*"))
	if len(left) != 1 {
		t.Errorf("the bad file: %v; want it left in the spool", left)
	}
}

// A spool file whose sending fails part-way keeps only the records from
// the first one Kafka did not take: the next run does not send again the
// ones Kafka took before it (the whole file was sent again, and they
// reached the DLQ topic twice).
func TestUnspoolFailureKeepsOnlyWhatWasNotSent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	dir := t.TempDir()
	lines := writeSpool(t, filepath.Join(dir, "dlq-20261201.jsonl"), "s", 40)
	// Kafka takes the first produce request and refuses the others for
	// good while refuse is set.
	var requests atomic.Int32
	var refuse atomic.Bool
	refuse.Store(true)
	e.refuseProduces(func(*kmsg.ProduceRequest) bool { return requests.Add(1) > 1 && refuse.Load() })
	// Small batches: the first request cannot hold every record.
	base := []kgo.Opt{kgo.SeedBrokers(e.brokers), kgo.ProducerBatchMaxBytes(1024)}
	st, err := consumers.UnspoolDLQ(context.Background(), base, consumers.DLQUnspoolOptions{Dir: dir})
	if err == nil {
		t.Fatal("unspool with Kafka refusing all but its first request: no error")
	}
	took := consumers.Total(st.Records)
	if took == 0 || took == len(lines) {
		t.Fatalf("sent %d of %d records before the refusals; the test needs some of both (%v)", took, len(lines), err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "dlq-20261201.jsonl*"))
	if len(left) != 1 {
		t.Fatalf("spool files after the failed run: %v", left)
	}
	b, _ := os.ReadFile(left[0])
	if n := strings.Count(string(b), "\n"); n != len(lines)-took {
		t.Errorf("the file keeps %d lines after %d of %d were sent, want %d", n, took, len(lines), len(lines)-took)
	}
	refuse.Store(false)
	if st, err = consumers.UnspoolDLQ(context.Background(), base, consumers.DLQUnspoolOptions{Dir: dir}); err != nil || consumers.Total(st.Records) != len(lines)-took {
		t.Fatalf("second unspool: sent %v, %v; want the %d left", st.Records, err, len(lines)-took)
	}
	seen := map[string]int{}
	for _, d := range e.readDLQ() {
		seen[string(d.Value)]++
	}
	for i := range lines {
		if v := fmt.Sprintf(`{"event_id":"s-%d"}`, i); seen[v] != 1 {
			t.Errorf("%s reached the DLQ topic %d times", v, seen[v])
		}
	}
}

// cancelAfter is a context whose Err reports it cancelled from its n+1st
// call on: it stops eachSpoolLine at a chosen check (one at line 0 and
// every 1000 lines of each pass, one before each file).
type cancelAfter struct {
	context.Context
	calls, n int32
}

func (c *cancelAfter) Err() error {
	if atomic.AddInt32(&c.calls, 1) > c.n {
		return context.Canceled
	}
	return nil
}

// An unspool stopped part-way through a file's sending, every record it
// produced acknowledged, keeps the rest of the file: it moved the whole
// file to sent/ and returned no error (the unread records were lost).
func TestUnspoolStoppedKeepsTheRest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	dir := t.TempDir()
	writeSpool(t, filepath.Join(dir, "dlq-20261201.jsonl"), "r", 1500)
	// Checks: before the file; the first pass at lines 0 and 1000; the
	// second at line 0, then at line 1000: stopped there.
	ctx := &cancelAfter{Context: context.Background(), n: 4}
	st, err := consumers.UnspoolDLQ(ctx, []kgo.Opt{kgo.SeedBrokers(e.brokers)}, consumers.DLQUnspoolOptions{Dir: dir})
	if err == nil {
		t.Fatalf("unspool stopped at line 1000: no error (sent %v)", st.Records)
	}
	if sent, _ := filepath.Glob(filepath.Join(dir, "sent", "*")); len(sent) != 0 {
		t.Fatalf("a file sent up to line 1000 of 1500 was moved to sent/: %v", sent)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "dlq-20261201.jsonl*"))
	if len(left) != 1 {
		t.Fatalf("spool files: %v", left)
	}
	b, _ := os.ReadFile(left[0])
	if n := strings.Count(string(b), "\n"); consumers.Total(st.Records) != 1000 || n != 500 {
		t.Errorf("sent %d, the file keeps %d lines; want 1000 and 500", consumers.Total(st.Records), n)
	}
	if st, err = consumers.UnspoolDLQ(context.Background(), []kgo.Opt{kgo.SeedBrokers(e.brokers)}, consumers.DLQUnspoolOptions{Dir: dir}); err != nil || consumers.Total(st.Records) != 500 {
		t.Fatalf("second unspool: %v, %v; want the 500 left", st.Records, err)
	}
	if n := len(e.readDLQ()); n != 1500 {
		t.Errorf("DLQ topic holds %d records, want 1500", n)
	}
}

// writeSpool writes a spool file at path of n records for the DLQ topic,
// values {"event_id":"PREFIX-I"}, and returns its lines.
func writeSpool(t *testing.T, path, prefix string, n int) []string {
	t.Helper()
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf(`{"v":2,"topic":%q,"key":null,"value":%q,"headers":[]}`, schemas.DefaultDLQTopic,
			base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf(`{"event_id":"%s-%d"}`, prefix, i)))))
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	return lines
}
