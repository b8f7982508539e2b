package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/producers"
	"github.com/costpipe/costpipe/schemas"
	"github.com/costpipe/costpipe/schemas/arrowcodec"
)

// fakeGateway answers POST /v1/events like the ingest gateway, with the
// statuses the test scripts, then 202.
type fakeGateway struct {
	mu       sync.Mutex
	script   []func(w http.ResponseWriter) // answers of the first requests
	calls    int
	events   map[string]int // by event_id
	batches  []int
	gaps     []time.Duration // time since the previous request
	last     time.Time
	badLines int
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if !g.last.IsZero() {
		g.gaps = append(g.gaps, now.Sub(g.last))
	}
	g.last = now
	g.calls++
	if r.Method != http.MethodPost || r.URL.Path != "/v1/events" || r.Header.Get("Authorization") != "Bearer k1" ||
		r.Header.Get("Content-Type") != "application/x-ndjson" {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"accepted":0,"rejected":[],"rejected_count":0,"error":"missing or unknown API key"}`)
		return
	}
	if len(g.script) > 0 {
		f := g.script[0]
		g.script = g.script[1:]
		f(w)
		return
	}
	sc := bufio.NewScanner(r.Body)
	n := 0
	for sc.Scan() {
		var e schemas.Event
		if err := schemas.DecodeJSON(sc.Bytes(), &e); err != nil {
			g.badLines++
			continue
		}
		g.events[e.EventID]++
		n++
	}
	g.batches = append(g.batches, n)
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"accepted":%d,"rejected":[],"rejected_count":0}`, n)
}

func answer(status int, retryAfter, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestHTTPSinkBatchesAndRetries(t *testing.T) {
	gw := &fakeGateway{events: map[string]int{}, script: []func(http.ResponseWriter){
		answer(http.StatusTooManyRequests, "1", `{"accepted":0,"rejected":[],"rejected_count":0,"error":"busy"}`),
		answer(http.StatusServiceUnavailable, "0", `{"accepted":0,"rejected":[],"rejected_count":0,"error":"kafka down"}`),
		answer(http.StatusBadGateway, "", "<html>proxy</html>"),
	}}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	o := DefaultHTTPOptions()
	o.URL, o.APIKey, o.BatchEvents = srv.URL+"/", "k1", 250
	s, err := NewHTTPSink(o)
	if err != nil {
		t.Fatal(err)
	}
	g := newGen(t, nil)
	evs := generate(g, 1000)
	start := time.Now()
	if _, err := s.Write(context.Background(), evs[:600]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(context.Background(), evs[600:]); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("sent everything in %v: Retry-After: 1 was not honored", d)
	}
	if gw.gaps[0] < 900*time.Millisecond {
		t.Errorf("retried after %v, want about the 1s of Retry-After", gw.gaps[0])
	}
	if want := []int{250, 250, 250, 250}; fmt.Sprint(gw.batches) != fmt.Sprint(want) {
		t.Errorf("batches %v, want %v", gw.batches, want)
	}
	for _, e := range evs {
		if gw.events[e.EventID] != 1 {
			t.Fatalf("event %s received %d times", e.EventID, gw.events[e.EventID])
		}
	}
	if st := s.Stats(); st != (HTTPStats{Requests: 7, Retries: 3, Accepted: 1000}) {
		t.Errorf("stats %+v", st)
	}
}

func TestHTTPSinkErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		key    string
		script []func(http.ResponseWriter)
		want   string
		stats  HTTPStats
	}{
		{"unauthorized", "nope", nil, "401 Unauthorized: missing or unknown API key", HTTPStats{Requests: 1}},
		{"forbidden", "k1", []func(http.ResponseWriter){answer(http.StatusForbidden, "",
			`{"accepted":0,"rejected":[{"index":0,"event_id":"x","error":"tenant \"a\" not allowed"}],"rejected_count":10}`)},
			`403 Forbidden: 10 events rejected, first "x": tenant "a" not allowed`, HTTPStats{Requests: 1}},
		{"gives up", "k1", []func(http.ResponseWriter){
			answer(http.StatusServiceUnavailable, "0", `{"error":"kafka down"}`),
			answer(http.StatusServiceUnavailable, "0", `{"error":"kafka down"}`),
			answer(http.StatusServiceUnavailable, "0", `{"error":"kafka down"}`)},
			"(attempt 3): gateway answered 503 Service Unavailable: kafka down", HTTPStats{Requests: 3, Retries: 2}},
		{"partly invalid", "k1", []func(http.ResponseWriter){answer(http.StatusBadRequest, "",
			`{"accepted":8,"rejected":[{"index":3,"event_id":"e3","error":"bad"}],"rejected_count":2}`)},
			"", HTTPStats{Requests: 1, Accepted: 8, Rejected: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := &fakeGateway{events: map[string]int{}, script: tc.script}
			srv := httptest.NewServer(gw)
			defer srv.Close()
			o := DefaultHTTPOptions()
			o.URL, o.APIKey, o.BatchEvents, o.MaxRetries = srv.URL+"/v1/events", tc.key, 10, 2
			s, err := NewHTTPSink(o)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Write(context.Background(), generate(newGen(t, nil), 10))
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Write = %v, want an error containing %q", err, tc.want)
			}
			if st := s.Stats(); st != tc.stats {
				t.Errorf("stats %+v, want %+v", st, tc.stats)
			}
		})
	}
}

func TestHTTPOptionsValidate(t *testing.T) {
	for _, o := range []HTTPOptions{
		{URL: "ftp://h", BatchEvents: 1},
		{URL: "http://", BatchEvents: 1},
		{URL: "http://h:1", BatchEvents: 0},
		{URL: "http://h:1", BatchEvents: 1, MaxRetries: -1},
	} {
		if _, err := NewHTTPSink(o); err == nil {
			t.Errorf("NewHTTPSink(%+v) accepted invalid options", o)
		}
	}
}

// TestRunToKafka runs the generator into the producer SDK against the
// embedded broker and reads the events back.
func TestRunToKafka(t *testing.T) {
	b := kafkatest.Start(t, 3)
	po := producers.DefaultOptions()
	po.Brokers = []string{b.Addr()}
	po.Encoding = producers.EncodingArrow
	po.WhenFull, po.MaxEventAge, po.MaxFuture = producers.Block, 0, 0 // a generator: back pressure, its own event times
	p, err := producers.New(po)
	if err != nil {
		t.Fatal(err)
	}
	g := newGen(t, func(o *Options) { o.Duration = 200 * time.Millisecond; o.DuplicateRate = 0.01 })
	st, err := Run(context.Background(), g, KafkaSink{Producer: p}, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ps := p.Stats(); st.Written != 1000 || ps.Sent != 1000 {
		t.Fatalf("run %+v, producer %+v: want 1000 written and sent", st, ps)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(schemas.DefaultTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for n < 1000 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			evs, err := arrowcodec.DecodeAll(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			n += len(evs)
		})
	}
	if n != 1000 {
		t.Errorf("read %d events back, want 1000", n)
	}
}

// A run stopped while a batch waits to be sent again keeps the batch: the
// Flush that Run makes with a fresh context delivers it (it was emptied,
// and a Ctrl-C lost up to a batch of events that "wrote N" had counted).
func TestHTTPSinkKeepsTheBatchWhenStopped(t *testing.T) {
	gw, s := scriptedSink(t, answer(http.StatusServiceUnavailable, "5", `{"accepted":0,"rejected":[],"rejected_count":0,"error":"kafka down"}`))
	evs := generate(newGen(t, nil), 10)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if n, err := s.Write(ctx, evs); !errors.Is(err, context.DeadlineExceeded) || n != len(evs) {
		t.Fatalf("Write while the gateway asks to wait 5 s, stopped after 300 ms: took %d, %v; want all %d kept", n, err, len(evs))
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if gw.events[e.EventID] != 1 {
			t.Fatalf("event %s received %d times after the stopped run's flush", e.EventID, gw.events[e.EventID])
		}
	}
}

// A run stopped while the sink holds a batch counts the events the sink
// took: "wrote N" is what the gateway got from the run's final flush (it
// counted none of the stopped Write's events).
func TestRunCountsWhatAStoppedSinkKept(t *testing.T) {
	gw, s := scriptedSink(t, answer(http.StatusServiceUnavailable, "5", `{"accepted":0,"rejected":[],"rejected_count":0,"error":"kafka down"}`))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	st, err := Run(ctx, newGen(t, nil), s, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run stopped while the gateway asks to wait 5 s: %v", err)
	}
	gw.mu.Lock()
	got := len(gw.events)
	gw.mu.Unlock()
	if got != 10 || st.Written != int64(got) {
		t.Errorf("wrote %d, the gateway got %d events; want both 10 (the kept batch)", st.Written, got)
	}
}

// kafkaLikeSink takes events until its limit, then fails as an Emit whose
// context ended does.
type kafkaLikeSink struct{ limit, took int }

func (k *kafkaLikeSink) Write(_ context.Context, evs []schemas.Event) (int, error) {
	n := min(len(evs), k.limit-k.took)
	k.took += n
	if n < len(evs) {
		return n, context.Canceled
	}
	return n, nil
}
func (k *kafkaLikeSink) Flush(context.Context) error { return nil }

// A Write cut short counts the events it took before it failed.
func TestRunCountsACutShortWrite(t *testing.T) {
	k := &kafkaLikeSink{limit: 2500}
	st, err := Run(context.Background(), newGen(t, nil), k, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v, want the sink's error", err)
	}
	if st.Written != 2500 {
		t.Errorf("wrote %d, want the 2500 the sink took", st.Written)
	}
}

// A batch the gateway refuses for good (401) is dropped: the run does not
// count its events as written ("wrote 10" for none delivered).
func TestRunDoesNotCountARefusedBatch(t *testing.T) {
	_, s := scriptedSink(t, answer(http.StatusUnauthorized, "", `{"accepted":0,"rejected":[],"rejected_count":0,"error":"missing or unknown API key"}`))
	st, err := Run(context.Background(), newGen(t, nil), s, 0)
	if err == nil {
		t.Fatal("run against a gateway that refuses the key: no error")
	}
	if st.Written != 0 {
		t.Errorf("wrote %d, want 0: the only batch was refused", st.Written)
	}
}

// scriptedSink is an HTTP sink posting batches of 10 to a fake gateway that
// answers its first request with first and accepts the others.
func scriptedSink(t *testing.T, first func(http.ResponseWriter)) (*fakeGateway, *HTTPSink) {
	t.Helper()
	gw := &fakeGateway{events: map[string]int{}, script: []func(http.ResponseWriter){first}}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	o := DefaultHTTPOptions()
	o.URL, o.APIKey, o.BatchEvents = srv.URL, "k1", 10
	s, err := NewHTTPSink(o)
	if err != nil {
		t.Fatal(err)
	}
	return gw, s
}
