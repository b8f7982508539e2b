package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/broker"
	"github.com/costpipe/costpipe/internal/kafkatest"
)

func TestDefaultOptions(t *testing.T) {
	o := broker.DefaultOptions()
	if o.Listen != "127.0.0.1:9092" {
		t.Errorf("Listen = %q, want 127.0.0.1:9092", o.Listen)
	}
	if o.Partitions != 6 {
		t.Errorf("Partitions = %d, want 6", o.Partitions)
	}
	if want := []string{"costpipe.events", "costpipe.events.dlq"}; !slices.Equal(o.Topics, want) {
		t.Errorf("Topics = %q, want %q", o.Topics, want)
	}
	if !o.AutoCreateTopics || o.DataDir != "" || o.AdvertisedHost != "" || o.Logger != nil {
		t.Errorf("unexpected defaults: %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("DefaultOptions().Validate() = %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*broker.Options)
		wantErr string // substring; "" means valid
	}{
		{"defaults", func(*broker.Options) {}, ""},
		{"free port", func(o *broker.Options) { o.Listen = "127.0.0.1:0" }, ""},
		{"all interfaces", func(o *broker.Options) { o.Listen = ":9092" }, ""},
		{"no topics", func(o *broker.Options) { o.Topics = nil }, ""},
		{"missing port", func(o *broker.Options) { o.Listen = "127.0.0.1" }, `cannot parse listen address "127.0.0.1"`},
		{"port not a number", func(o *broker.Options) { o.Listen = "127.0.0.1:kafka" }, `port must be a number`},
		{"port too big", func(o *broker.Options) { o.Listen = "127.0.0.1:70000" }, `"127.0.0.1:70000"`},
		{"zero partitions", func(o *broker.Options) { o.Partitions = 0 }, "cannot use 0 partitions"},
		{"too many partitions", func(o *broker.Options) { o.Partitions = 10001 }, "cannot use 10001 partitions"},
		{"empty topic", func(o *broker.Options) { o.Topics = []string{""} }, "empty name"},
		{"bad topic char", func(o *broker.Options) { o.Topics = []string{"a/b"} }, `cannot create topic "a/b"`},
		{"reserved topic", func(o *broker.Options) { o.Topics = []string{".."} }, "reserved"},
		{"long topic", func(o *broker.Options) { o.Topics = []string{strings.Repeat("x", 250)} }, "longer than 249"},
		{"duplicate topic", func(o *broker.Options) { o.Topics = []string{"a", "b", "a"} }, `cannot create topic "a" twice`},
		{"advertise a name", func(o *broker.Options) { o.AdvertisedHost = "kafka-0.kafka.svc" }, ""},
		{"advertise an IPv6 address", func(o *broker.Options) { o.AdvertisedHost = "::1" }, ""},
		{"advertise with a port", func(o *broker.Options) { o.AdvertisedHost = "broker:9092" }, `cannot advertise host "broker:9092"`},
		{"advertise a space", func(o *broker.Options) { o.AdvertisedHost = "bad host" }, `cannot advertise host "bad host"`},
		{"advertise a URL", func(o *broker.Options) { o.AdvertisedHost = "http://broker" }, "without a port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := broker.DefaultOptions()
			tt.change(&o)
			err := o.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate() = nil, want error containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Validate() = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestStartRejectsInvalidOptions(t *testing.T) {
	o := broker.DefaultOptions()
	o.Partitions = -1
	if b, err := broker.Start(o); err == nil {
		b.Close()
		t.Fatal("Start with -1 partitions succeeded")
	}
}

func TestStartPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	o := broker.DefaultOptions()
	o.Listen = ln.Addr().String()
	b, err := broker.Start(o)
	if err == nil {
		b.Close()
		t.Fatalf("Start on busy %s succeeded", o.Listen)
	}
	if !strings.Contains(err.Error(), o.Listen) {
		t.Errorf("error %q does not name the address %s", err, o.Listen)
	}
}

func TestAddrAndClose(t *testing.T) {
	o := broker.DefaultOptions()
	o.Listen = "0.0.0.0:0"
	b, err := broker.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(b.Addr())
	if err != nil {
		t.Fatalf("Addr() = %q: %v", b.Addr(), err)
	}
	if host != "127.0.0.1" {
		t.Errorf("Addr() host = %q, want 127.0.0.1 for a wildcard listen address", host)
	}
	if port == "0" {
		t.Errorf("Addr() = %q still has port 0", b.Addr())
	}
	conn, err := net.DialTimeout("tcp", b.Addr(), time.Second)
	if err != nil {
		t.Fatalf("cannot dial %s: %v", b.Addr(), err)
	}
	conn.Close()

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(b.Close)
	}
	wg.Wait()
	b.Close()
	if conn, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		conn.Close()
		t.Errorf("still accepting connections on %s after Close", b.Addr())
	}
}

func TestAdvertisedHost(t *testing.T) {
	o := broker.DefaultOptions()
	o.Listen = "127.0.0.1:0"
	o.AdvertisedHost = "localhost"
	b, err := broker.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !strings.HasPrefix(b.Addr(), "localhost:") {
		t.Fatalf("Addr() = %q, want localhost:PORT", b.Addr())
	}
	adm := newAdmin(t, b.Addr())
	brokers, err := adm.ListBrokers(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(brokers) != 1 || brokers[0].Host != "localhost" {
		t.Fatalf("metadata brokers = %+v, want one with host localhost", brokers)
	}
}

func TestSeededTopics(t *testing.T) {
	b := kafkatest.Start(t, 4)
	adm := newAdmin(t, b.Addr())
	topics, err := adm.ListTopics(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{broker.EventsTopic, broker.DLQTopic} {
		td, ok := topics[name]
		if !ok {
			t.Errorf("topic %q not seeded; have %v", name, topics.Names())
			continue
		}
		if n := len(td.Partitions); n != 4 {
			t.Errorf("topic %q has %d partitions, want 4", name, n)
		}
	}
}

// TestProduceConsume produces keyed records with the default (idempotent)
// producer over TCP and reads them back with a plain consumer.
func TestProduceConsume(t *testing.T) {
	b := kafkatest.Start(t, 6)
	ctx := ctxT(t)
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic(broker.EventsTopic))

	const n = 200
	keyPartition := map[string]int32{}
	for i := range n {
		r := &kgo.Record{
			Key:     fmt.Appendf(nil, "tenant-%d\x00model", i%7),
			Value:   []byte(strconv.Itoa(i)),
			Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}},
		}
		prod.Produce(ctx, r, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// kgo produces idempotently by default: the broker must have handed
	// out a producer id.
	if id, _, err := prod.ProducerID(ctx); err != nil || id < 0 {
		t.Fatalf("ProducerID() = %d, %v; want an idempotent producer id", id, err)
	}

	cons := newClient(t, b.Addr(),
		kgo.ConsumeTopics(broker.EventsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[int]bool{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(seen), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			v, err := strconv.Atoi(string(r.Value))
			if err != nil || v < 0 || v >= n {
				t.Fatalf("unexpected value %q", r.Value)
			}
			if seen[v] {
				t.Fatalf("record %d consumed twice", v)
			}
			seen[v] = true
			if want := fmt.Sprintf("tenant-%d\x00model", v%7); string(r.Key) != want {
				t.Errorf("record %d key = %q, want %q", v, r.Key, want)
			}
			if len(r.Headers) != 1 || string(r.Headers[0].Value) != "application/json" {
				t.Errorf("record %d headers = %+v", v, r.Headers)
			}
			if p, ok := keyPartition[string(r.Key)]; ok && p != r.Partition {
				t.Errorf("key %q on partitions %d and %d", r.Key, p, r.Partition)
			}
			keyPartition[string(r.Key)] = r.Partition
		})
	}
	if len(keyPartition) != 7 {
		t.Errorf("saw %d distinct keys, want 7", len(keyPartition))
	}
	parts := map[int32]bool{}
	for _, p := range keyPartition {
		parts[p] = true
	}
	if len(parts) < 2 {
		t.Errorf("7 keys all landed on partitions %v; the key hash is not spreading", parts)
	}
}

// member is one consumer-group client that tracks its assignment.
type member struct {
	name   string
	client *kgo.Client
	mu     sync.Mutex
	owned  map[int32]bool
}

func (m *member) assigned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int32
	for p := range m.owned {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func newMember(t *testing.T, addr, group, name string) *member {
	m := &member{name: name, owned: map[int32]bool{}}
	m.client = newClient(t, addr,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(broker.EventsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.HeartbeatInterval(100*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range a[broker.EventsTopic] {
				m.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range r[broker.EventsTopic] {
				delete(m.owned, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range l[broker.EventsTopic] {
				delete(m.owned, p)
			}
		}),
	)
	return m
}

// waitAssigned polls until cond holds for the members' assignments, polling
// the clients meanwhile so revocations complete.
func waitAssigned(t *testing.T, what string, cond func() bool, ms ...*member) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			var got []string
			for _, m := range ms {
				got = append(got, fmt.Sprintf("%s=%v", m.name, m.assigned()))
			}
			t.Fatalf("timed out waiting for %s; assignments: %s", what, strings.Join(got, " "))
		}
		for _, m := range ms {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			m.client.PollFetches(ctx)
			cancel()
		}
	}
}

func TestConsumerGroupRebalance(t *testing.T) {
	b := kafkatest.Start(t, 6)
	all := []int32{0, 1, 2, 3, 4, 5}

	a := newMember(t, b.Addr(), "rebalance", "a")
	waitAssigned(t, "a to own all 6 partitions", func() bool { return slices.Equal(a.assigned(), all) }, a)

	c := newMember(t, b.Addr(), "rebalance", "c")
	split := func() bool {
		pa, pc := a.assigned(), c.assigned()
		if len(pa) != 3 || len(pc) != 3 {
			return false
		}
		return slices.Equal(slices.Sorted(slices.Values(append(pa, pc...))), all)
	}
	waitAssigned(t, "a and c to own 3 disjoint partitions each", split, a, c)

	// With both members settled, every record goes to exactly one of them,
	// the one owning its partition.
	ctx := ctxT(t)
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic(broker.EventsTopic))
	const n = 60
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for _, m := range []*member{a, c} {
		owned := m.assigned()
		wg.Go(func() {
			for {
				mu.Lock()
				done := len(seen) >= n
				mu.Unlock()
				if done || ctx.Err() != nil {
					return
				}
				pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				fs := m.client.PollFetches(pctx)
				cancel()
				fs.EachRecord(func(r *kgo.Record) {
					mu.Lock()
					defer mu.Unlock()
					if prev, dup := seen[string(r.Value)]; dup {
						t.Errorf("record %s consumed by %s and %s", r.Value, prev, m.name)
					}
					seen[string(r.Value)] = m.name
					if !slices.Contains(owned, r.Partition) {
						t.Errorf("%s consumed partition %d it does not own (%v)", m.name, r.Partition, owned)
					}
				})
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("consumed %d of %d records", len(seen), n)
	}
	byMember := map[string]int{}
	for _, name := range seen {
		byMember[name]++
	}
	if byMember["a"] == 0 || byMember["c"] == 0 {
		t.Errorf("records per member = %v, want both to consume", byMember)
	}

	// When c leaves, a takes everything back.
	c.client.Close()
	waitAssigned(t, "a to own all 6 partitions after c left", func() bool { return slices.Equal(a.assigned(), all) }, a)
}

func TestCommittedOffsetsSurviveClientRestart(t *testing.T) {
	b := kafkatest.Start(t, 3)
	ctx := ctxT(t)
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic(broker.EventsTopic))
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			prod.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	consume := func(n int) []int {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()),
			kgo.ConsumerGroup("restart"),
			kgo.ConsumeTopics(broker.EventsTopic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var got []int
		for len(got) < n {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %v, want %d records: %v", got, n, ctx.Err())
			}
			fs.EachRecord(func(r *kgo.Record) {
				v, _ := strconv.Atoi(string(r.Value))
				got = append(got, v)
			})
		}
		// Nothing beyond the n expected records.
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { t.Errorf("unexpected extra record %s", r.Value) })
		cancel()
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("cannot commit: %v", err)
		}
		cl.LeaveGroup()
		slices.Sort(got)
		return got
	}

	produce(0, 10)
	if got := consume(10); !slices.Equal(got, seq(0, 10)) {
		t.Fatalf("first client consumed %v, want 0..9", got)
	}

	adm := newAdmin(t, b.Addr())
	offs, err := adm.FetchOffsets(ctx, "restart")
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != 10 {
		t.Fatalf("committed offsets sum to %d, want 10", committed)
	}

	produce(10, 15)
	if got := consume(5); !slices.Equal(got, seq(10, 15)) {
		t.Fatalf("restarted client consumed %v, want 10..14 only", got)
	}
}

// TestTransactions checks kfake's transactional producer: committed records
// are visible to read_committed consumers, aborted ones are not.
func TestTransactions(t *testing.T) {
	b := kafkatest.Start(t, 2)
	ctx := ctxT(t)
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic(broker.EventsTopic), kgo.TransactionalID("costpipe-test"))
	txn := func(commit bool, vals ...string) {
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("cannot end transaction (commit=%v): %v", commit, err)
		}
	}
	txn(true, "c1", "c2")
	txn(false, "aborted")
	txn(true, "c3")

	cons := newClient(t, b.Addr(),
		kgo.ConsumeTopics(broker.EventsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var got []string
	poll := func() {
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		cons.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		cancel()
	}
	// Wait for the three committed records (a loaded CI machine can take
	// seconds), then poll a little longer for an aborted one leaking.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && len(got) < 3; {
		poll()
	}
	for extra := time.Now().Add(time.Second); time.Now().Before(extra); {
		poll()
	}
	slices.Sort(got)
	if want := []string{"c1", "c2", "c3"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed consumer got %q, want %q", got, want)
	}
}

func TestAutoCreateTopics(t *testing.T) {
	for _, auto := range []bool{true, false} {
		t.Run(fmt.Sprintf("auto=%v", auto), func(t *testing.T) {
			o := broker.DefaultOptions()
			o.Listen = "127.0.0.1:0"
			o.Partitions = 3
			o.AutoCreateTopics = auto
			b, err := broker.Start(o)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			cl := newClient(t, b.Addr(), kgo.AllowAutoTopicCreation(), kgo.UnknownTopicRetries(2))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = cl.ProduceSync(ctx, &kgo.Record{Topic: "other", Value: []byte("x")}).FirstErr()
			if !auto {
				if !errors.Is(err, kerr.UnknownTopicOrPartition) {
					t.Fatalf("produce to a missing topic without auto-creation: err = %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("produce with auto-creation: %v", err)
			}
			topics, err := newAdmin(t, b.Addr()).ListTopics(ctx, "other")
			if err != nil {
				t.Fatal(err)
			}
			if n := len(topics["other"].Partitions); n != 3 {
				t.Fatalf("auto-created topic has %d partitions, want 3", n)
			}
		})
	}
}

// TestDataDir checks that records and committed offsets survive a broker
// restart on the same data directory.
func TestDataDir(t *testing.T) {
	dir := t.TempDir()
	o := broker.DefaultOptions()
	o.Listen = "127.0.0.1:0"
	o.DataDir = dir
	b, err := broker.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(broker.EventsTopic))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a", "b", "c"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	var p int32 = -1
	lo, err := adm.ListEndOffsets(ctx, broker.EventsTopic)
	if err != nil {
		t.Fatal(err)
	}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Offset == 3 {
			p = o.Partition
		}
	})
	if p < 0 {
		t.Fatalf("no partition has end offset 3: %+v", lo)
	}
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: broker.EventsTopic, Partition: p, At: 2, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, "persist", commit); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	b.Close()

	b2, err := broker.Start(o)
	if err != nil {
		t.Fatalf("cannot restart on %s: %v", dir, err)
	}
	defer b2.Close()
	adm2 := newAdmin(t, b2.Addr())
	offs, err := adm2.FetchOffsets(ctx, "persist")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := offs.Lookup(broker.EventsTopic, p); !ok || got.At != 2 {
		t.Fatalf("committed offset after restart = %+v (found %v), want 2", got, ok)
	}
	cons := newClient(t, b2.Addr(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{broker.EventsTopic: {p: kgo.NewOffset().AtStart()}}))
	var got []string
	for len(got) < 3 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("after restart consumed %q: %v", got, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("after restart consumed %q, want a b c", got)
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newAdmin(t *testing.T, addr string) *kadm.Client {
	return kadm.NewClient(newClient(t, addr))
}

// TestDataDirTopicsAndLock: a restart on a data directory with another
// --topic creates it (the state loaded from the directory replaced the
// seeded topics, so the new topic was missing and the start line claimed
// it), a topic the directory has keeps its partitions and Partitions says
// so; a second broker on a directory in use is refused.
func TestDataDirTopicsAndLock(t *testing.T) {
	dir := t.TempDir()
	o := broker.DefaultOptions()
	o.Listen = "127.0.0.1:0"
	o.DataDir = dir
	o.AutoCreateTopics = false
	b, err := broker.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broker.Start(o); !errors.Is(err, broker.ErrDataDirInUse) {
		t.Errorf("a second broker on %s: %v, want ErrDataDirInUse", dir, err)
	}
	b.Close()

	o.Topics = []string{broker.EventsTopic, "acme.events"}
	o.Partitions = 12
	b2, err := broker.Start(o)
	if err != nil {
		t.Fatalf("cannot restart on %s: %v", dir, err)
	}
	defer b2.Close()
	if n := b2.Partitions("acme.events"); n != 12 {
		t.Errorf("acme.events has %d partitions after the restart, want 12 (created)", n)
	}
	if n := b2.Partitions(broker.EventsTopic); n != 6 {
		t.Errorf("%s has %d partitions after the restart, want the 6 it was created with", broker.EventsTopic, n)
	}
	topics, err := newAdmin(t, b2.Addr()).ListTopics(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !topics.Has("acme.events") {
		t.Errorf("topics after the restart: %v, want acme.events", topics.Names())
	}
}
