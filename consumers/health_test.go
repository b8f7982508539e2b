package consumers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/internal/logtest"
	"github.com/costpipe/costpipe/schemas"
)

func TestGroupLag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                  string
		committed, start, end map[int32]int64
		want                  map[int32]int64
	}{
		{"committed behind the end", map[int32]int64{0: 40, 1: 100}, map[int32]int64{0: 0, 1: 0}, map[int32]int64{0: 100, 1: 100},
			map[int32]int64{0: 60, 1: 0}},
		{"no commit: from the log start", map[int32]int64{}, map[int32]int64{0: 30}, map[int32]int64{0: 100},
			map[int32]int64{0: 70}},
		{"commit below the log start (records deleted): from the log start", map[int32]int64{0: 10}, map[int32]int64{0: 30}, map[int32]int64{0: 100},
			map[int32]int64{0: 70}},
		{"commit past the end (topic recreated): 0", map[int32]int64{0: 500}, map[int32]int64{0: 0}, map[int32]int64{0: 100},
			map[int32]int64{0: 0}},
		{"empty partition", map[int32]int64{}, map[int32]int64{0: 0}, map[int32]int64{0: 0},
			map[int32]int64{0: 0}},
		{"commits of partitions the topic no longer has are ignored", map[int32]int64{0: 5, 7: 3}, map[int32]int64{0: 0}, map[int32]int64{0: 5},
			map[int32]int64{0: 0}},
	} {
		if got := groupLag(tc.committed, tc.start, tc.end); !maps.Equal(got, tc.want) {
			t.Errorf("%s: groupLag = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// testHealth returns a health with a rebalance timeout of 60 s and a stall
// timeout of 2 m, logging into the returned buffer.
func testHealth(now time.Time) (*health, *bytes.Buffer) {
	var buf bytes.Buffer
	opts := DefaultOptions()
	opts.Group = "g"
	opts.Now = func() time.Time { return now }
	opts.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	return newHealth(opts), &buf
}

func mustReady(t *testing.T, h *health, now time.Time, what string) {
	t.Helper()
	if err := h.ready(now); err != nil {
		t.Errorf("%s: not ready: %v", what, err)
	}
}

func mustNotReady(t *testing.T, h *health, now time.Time, what string, wants ...string) {
	t.Helper()
	err := h.ready(now)
	if err == nil {
		t.Errorf("%s: ready, want not ready naming %q", what, wants)
		return
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q does not name %q", what, err, w)
		}
	}
}

// An instance is not ready before its first join, ready while it has an
// assignment (even of no partition) and through a rebalance up to the
// rebalance timeout, and not ready after it, naming the last join error.
func TestReadinessFollowsMembership(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	h, _ := testHealth(t0)
	mustNotReady(t, h, t0.Add(time.Second), "before the first join", `has not joined consumer group "g" yet (for 1s)`)
	if d := h.sinceJoin(t0.Add(5 * time.Second)); d != 5*time.Second {
		t.Errorf("sinceJoin before the first join = %s, want 5s (since the start)", d)
	}

	t1 := t0.Add(3 * time.Second)
	h.join(t1)
	mustReady(t, h, t1, "joined")
	if d := h.unassignedFor(t1.Add(time.Hour)); d != 0 {
		t.Errorf("unassignedFor while joined = %s, want 0", d)
	}
	if d := h.sinceJoin(t1.Add(time.Hour)); d != time.Hour {
		t.Errorf("sinceJoin = %s, want 1h", d)
	}

	t2 := t1.Add(time.Hour)
	h.leave(t2) // a rebalance begins
	mustReady(t, h, t2.Add(60*time.Second), "rebalancing for exactly the rebalance timeout")
	h.sessionFailed(t2.Add(61*time.Second), errors.New("unable to join group session: i/o timeout"))
	mustNotReady(t, h, t2.Add(61*time.Second), "unassigned for longer than the rebalance timeout",
		`no assignment from consumer group "g" for 1m1s, longer than the rebalance timeout 1m0s`, "last error: unable to join group session: i/o timeout")
	if d := h.unassignedFor(t2.Add(90 * time.Second)); d != 90*time.Second {
		t.Errorf("unassignedFor = %s, want 1m30s", d)
	}

	h.join(t2.Add(95 * time.Second))
	mustReady(t, h, t2.Add(95*time.Second), "joined again")

	// franz-go can lose the session without revoking first (a failed
	// heartbeat): the failure itself starts the unassigned time.
	t3 := t2.Add(time.Hour)
	h.sessionFailed(t3, errors.New("UNKNOWN_MEMBER_ID"))
	mustReady(t, h, t3.Add(time.Minute), "a minute after losing the session")
	mustNotReady(t, h, t3.Add(2*time.Minute), "two minutes after losing the session", "for 2m0s", "UNKNOWN_MEMBER_ID")
}

// A partition that lags while its committed offset stands still for the
// stall timeout stalls the group, whoever owns it; a commit that moves or a
// partition that catches up starts the count again.
func TestStallNeedsLagAndAStandingCommit(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	h, _ := testHealth(t0)
	h.join(t0)
	start := map[int32]int64{0: 0, 1: 0, 2: 0}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	observe := func(d time.Duration, c0, c1, end int64) lagSnapshot {
		return h.observe(at(d), map[int32]int64{0: c0, 1: c1}, start, map[int32]int64{0: end, 1: end, 2: 0})
	}
	// Partition 0 keeps committing, 1 stands still, 2 is empty.
	s := observe(0, 10, 10, 20)
	if s.total != 20 || s.lag[0] != 10 || s.lag[1] != 10 || s.lag[2] != 0 || len(s.stalled) != 0 {
		t.Fatalf("first refresh: %+v", s)
	}
	observe(time.Minute, 30, 10, 40)
	s = observe(2*time.Minute-time.Second, 50, 10, 60)
	if len(s.stalled) != 0 || s.longest != 2*time.Minute-time.Second {
		t.Errorf("before the stall timeout: stalled %v, longest %s", s.stalled, s.longest)
	}
	mustReady(t, h, at(2*time.Minute-time.Second), "before the stall timeout")
	s = observe(2*time.Minute, 70, 10, 80)
	if fmt.Sprint(s.stalled) != "[1]" || s.longest != 2*time.Minute || s.total != 80 {
		t.Errorf("at the stall timeout: %+v", s)
	}
	mustNotReady(t, h, at(2*time.Minute), "partition 1 stalled",
		`consumer group "g" stalled: 70 record(s) behind on partition(s) [1], whose committed offsets have not moved for 2m0s (stall timeout 2m0s)`)
	// Partition 1's commit moves: the count starts again.
	s = observe(2*time.Minute+time.Second, 90, 11, 100)
	if len(s.stalled) != 0 || s.longest != 0 {
		t.Errorf("after partition 1 committed: stalled %v, longest %s", s.stalled, s.longest)
	}
	mustReady(t, h, at(2*time.Minute+time.Second), "after partition 1 committed")
	// A partition without lag never stalls, however long its commit stands.
	for d := 3 * time.Minute; d <= 10*time.Minute; d += time.Minute {
		s = observe(d, 100, 100, 100)
	}
	if len(s.stalled) != 0 || s.longest != 0 {
		t.Errorf("caught up: %+v", s)
	}
	// Lag appears on a caught-up partition: counted from the last refresh
	// that saw it caught up.
	observe(11*time.Minute, 100, 100, 150)
	s = observe(12*time.Minute, 100, 100, 200)
	if fmt.Sprint(s.stalled) != "[0 1]" || s.longest != 2*time.Minute {
		t.Errorf("lag on both with no commit for 2m: %+v", s)
	}
	// A partition never committed counts from its first refresh.
	h2, _ := testHealth(t0)
	h2.join(t0)
	h2.observe(t0, nil, map[int32]int64{0: 0}, map[int32]int64{0: 5})
	if s := h2.observe(at(2*time.Minute), nil, map[int32]int64{0: 0}, map[int32]int64{0: 5}); fmt.Sprint(s.stalled) != "[0]" {
		t.Errorf("never committed partition: %+v", s)
	}
}

// A lag that cannot be read for the stall timeout makes the instance not
// ready; one good refresh ends it.
func TestLagUnknown(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	h, _ := testHealth(t0)
	h.join(t0)
	h.lagFailed(t0, errors.New("broker down"))
	h.lagFailed(t0.Add(time.Minute), errors.New("still down"))
	mustReady(t, h, t0.Add(time.Minute), "lag unknown for 1m")
	mustNotReady(t, h, t0.Add(2*time.Minute), "lag unknown for 2m", `cannot read the lag of consumer group "g" for 2m0s: still down`)
	if d := h.lagAge(t0.Add(2 * time.Minute)); d != 2*time.Minute {
		t.Errorf("lagAge with no refresh yet = %s, want 2m (since the start)", d)
	}
	h.observe(t0.Add(3*time.Minute), nil, map[int32]int64{0: 0}, map[int32]int64{0: 0})
	mustReady(t, h, t0.Add(3*time.Minute), "after a good refresh")
	if d := h.lagAge(t0.Add(3*time.Minute + time.Second)); d != time.Second {
		t.Errorf("lagAge = %s, want 1s", d)
	}
}

// A stall that clears and a lag that can be read again say so, once, at
// INFO (both cleared silently before): how long the commits had stood still
// and which partitions; how long the lag could not be read. A stall seen
// again later is a new one.
func TestStallAndLagUnknownClearedAreLogged(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	h, buf := testHealth(t0)
	h.join(t0)
	start := map[int32]int64{0: 0, 1: 0}
	observe := func(d time.Duration, c0, c1, end int64) {
		h.observe(t0.Add(d), map[int32]int64{0: c0, 1: c1}, start, map[int32]int64{0: end, 1: end})
	}
	observe(0, 10, 10, 20)
	observe(2*time.Minute, 10, 20, 30)                // partition 0 stalled since 0
	observe(3*time.Minute, 10, 30, 40)                // still
	observe(3*time.Minute+15*time.Second, 12, 40, 40) // partition 0 committed
	observe(4*time.Minute, 12, 40, 40)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `level=INFO msg="consumer group no longer stalled" group=g state=stalled partitions=[0] after=3m15s`) {
		t.Errorf("log after a stall cleared:\n%s", buf)
	}
	buf.Reset()
	observe(7*time.Minute, 12, 40, 60) // both lag; 0 stood still since 3m15s, 1 since 4m
	observe(8*time.Minute, 80, 50, 80)
	if !strings.Contains(buf.String(), `msg="consumer group no longer stalled" group=g state=stalled partitions="[0 1]" after=4m45s`) {
		t.Errorf("log after a second stall cleared:\n%s", buf)
	}

	buf.Reset()
	h.lagFailed(t0.Add(10*time.Minute), errors.New("broker down"))
	h.observe(t0.Add(11*time.Minute), nil, start, map[int32]int64{0: 0, 1: 0})
	if buf.Len() != 0 {
		t.Errorf("a lag unknown for 1 m, never warned about, logged its end: %s", buf)
	}
	h.lagFailed(t0.Add(12*time.Minute), errors.New("broker down"))
	h.warn(t0.Add(14 * time.Minute))
	h.observe(t0.Add(15*time.Minute), nil, start, map[int32]int64{0: 0, 1: 0})
	if !strings.Contains(buf.String(), `level=INFO msg="reading the consumer group's lag again" group=g state=lag_unknown after=3m0s`) {
		t.Errorf("log after the lag could be read again:\n%s", buf)
	}
}

// Warnings name the state and its duration, at most once per warnEvery per
// state; starting up is no warning.
func TestWarningsAreRateLimited(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	h, buf := testHealth(t0)
	h.warn(t0.Add(10 * time.Second))
	if buf.Len() != 0 {
		t.Errorf("warned while starting up: %s", buf)
	}
	for d := 61 * time.Second; d < 100*time.Second; d += time.Second {
		h.warn(t0.Add(d))
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d warnings in 39 s, want 2 (every 30 s):\n%s", len(lines), buf)
	}
	for i, want := range []string{"for=1m1s", "for=1m31s"} {
		if l := lines[i]; !strings.Contains(l, `level=WARN msg="no assignment from the consumer group for longer than the rebalance timeout" group=g state=unassigned `+want) {
			t.Errorf("warning %d: %s, want state=unassigned %s", i, l, want)
		}
	}
	// Joining ends the state: a new one warns at once.
	h.join(t0.Add(100 * time.Second))
	h.leave(t0.Add(101 * time.Second))
	buf.Reset()
	h.warn(t0.Add(162 * time.Second))
	if !strings.Contains(buf.String(), "state=unassigned for=1m1s") {
		t.Errorf("no warning for a new unassigned state: %q", buf)
	}

	// The failed joins that franz-go reports: the first at once, then once
	// per 10 s with the count of those not logged.
	h2, _ := testHealth(t0)
	var logged []int
	for i := range 25 {
		if _, ok, suppressed := h2.sessionFailed(t0.Add(time.Duration(i)*time.Second), errors.New("x")); ok {
			logged = append(logged, i, suppressed)
		}
	}
	if fmt.Sprint(logged) != "[0 0 10 9 20 9]" {
		t.Errorf("failed joins logged at (second, suppressed) %v, want [0 0 10 9 20 9]", logged)
	}
}

// The poll loop takes franz-go's group session errors out of the fetches,
// counts them and reports the instance as out of the group; other fetch
// errors and records stay.
func TestGroupSessionErrorsLeaveTheFetches(t *testing.T) {
	t.Parallel()
	now := newFakeClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	c, _ := callbackConsumer(t, now)
	c.onAssigned(context.Background(), nil, topicMap(0))
	other := errors.New("NOT_LEADER_FOR_PARTITION")
	fetches := kgo.Fetches{
		{Topics: []kgo.FetchTopic{{Topic: "", Partitions: []kgo.FetchPartition{{Partition: 0, Err: &kgo.ErrGroupSession{Err: errors.New("i/o timeout")}}}}}},
		{Topics: []kgo.FetchTopic{{Topic: schemas.DefaultTopic, Partitions: []kgo.FetchPartition{
			{Partition: 1, Err: other},
			{Partition: 0, Records: []*kgo.Record{{Offset: 7}}},
		}}}},
	}
	got := c.groupSessionErrors(fetches)
	var errs []error
	got.EachError(func(_ string, _ int32, err error) { errs = append(errs, err) })
	if len(errs) != 1 || errs[0] != other {
		t.Errorf("errors left: %v, want only %v", errs, other)
	}
	if n := got.NumRecords(); n != 1 {
		t.Errorf("%d records left, want 1", n)
	}
	if counter(t, c.m.sessionErrors) != 1 {
		t.Errorf("costpipe_group_session_errors_total = %v, want 1", counter(t, c.m.sessionErrors))
	}
	now.Advance(2 * time.Minute)
	if err := c.Ready(); err == nil || !strings.Contains(err.Error(), "i/o timeout") {
		t.Errorf("Ready after a failed join 2 min ago = %v, want the join error", err)
	}
	// Without a session error the fetches are returned as they are.
	plain := kgo.Fetches{fetches[1]}
	if got := c.groupSessionErrors(plain); &got[0] != &plain[0] {
		t.Error("fetches without a session error were copied")
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue metrics
				}
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// The lag watcher reads the group's committed offsets and the log offsets
// from Kafka, for every partition whether or not this instance owns any,
// and publishes them.
func TestGroupLagFromKafka(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 3)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(schemas.DefaultTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for p, n := range map[int32]int{0: 10, 1: 4, 2: 0} {
		for range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	const group = "watched"
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: schemas.DefaultTopic, Partition: 0, At: 6, LeaderEpoch: -1})
	if err := kadm.NewClient(cl).CommitAllOffsets(ctx, group, os); err != nil {
		t.Fatal(err)
	}

	// The clock is read by the client's group callbacks too (the consumer
	// joins the group in the background): an atomic, not a captured var.
	var clock atomic.Int64
	clock.Store(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC).UnixNano())
	opts := DefaultOptions()
	opts.Brokers = []string{b.Addr()}
	opts.Group = group
	opts.Now = func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	opts.Logger = slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	opts.DLQSpoolDir = t.TempDir()
	c, err := New(opts, &recSink{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.cl.Close()
	c.refreshGroupLag(ctx)
	for p, want := range map[string]float64{"0": 4, "1": 4, "2": 0} {
		if got := gauge(t, reg, "costpipe_group_lag_records", "partition", p); got != want {
			t.Errorf("costpipe_group_lag_records{partition=%q} = %v, want %v", p, got, want)
		}
	}
	if got := gauge(t, reg, "costpipe_group_topic_lag_records"); got != 8 {
		t.Errorf("costpipe_group_topic_lag_records = %v, want 8", got)
	}
	if got := gauge(t, reg, "costpipe_group_lag_age_seconds"); got != 0 {
		t.Errorf("costpipe_group_lag_age_seconds = %v, want 0", got)
	}
	clock.Add(int64(3 * time.Minute)) // nothing committed meanwhile
	c.refreshGroupLag(ctx)
	if got := gauge(t, reg, "costpipe_group_stalled_partitions"); got != 2 {
		t.Errorf("costpipe_group_stalled_partitions = %v, want 2", got)
	}
	if got := gauge(t, reg, "costpipe_group_stall_seconds"); got != 180 {
		t.Errorf("costpipe_group_stall_seconds = %v, want 180", got)
	}
	if err := c.Ready(); err == nil || !strings.Contains(err.Error(), "8 record(s) behind on partition(s) [0 1]") {
		t.Errorf("Ready = %v, want the stall of partitions 0 and 1", err)
	}
	if got := gauge(t, reg, "costpipe_ready"); got != 0 {
		t.Errorf("costpipe_ready = %v, want 0", got)
	}

	// Kafka does not answer: counted, the last figures stay.
	b.Close()
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c.refreshGroupLag(rctx)
	if got := counter(t, c.m.groupLagErrors); got != 1 {
		t.Errorf("costpipe_group_lag_errors_total = %v, want 1", got)
	}
	if got := gauge(t, reg, "costpipe_group_topic_lag_records"); got != 8 {
		t.Errorf("costpipe_group_topic_lag_records after a failed refresh = %v, want 8", got)
	}
}

func TestOptionsOfMembership(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		set  func(*Options)
		want string
	}{
		{func(o *Options) { o.InstanceID = "costpipe-aggregator-0" }, ""},
		{func(o *Options) { o.InstanceID = "host.example.com_1" }, ""},
		{func(o *Options) { o.InstanceID = "pod 0" }, `--instance-id "pod 0" must be at most 249 characters`},
		{func(o *Options) { o.InstanceID = "a@b" }, `--instance-id "a@b"`},
		{func(o *Options) { o.InstanceID = ".." }, `--instance-id ".."`},
		{func(o *Options) { o.InstanceID = strings.Repeat("a", 250) }, "at most 249 characters"},
		{func(o *Options) { o.HeartbeatInterval = 16 * time.Second }, "--heartbeat-interval 16s must be between 100ms and a third of --session-timeout 45s"},
		{func(o *Options) { o.GroupLagInterval = 0 }, "--group-lag-interval 0s is below 100ms"},
		{func(o *Options) { o.StallTimeout = 20 * time.Second }, "--stall-timeout 20s must exceed --flush-interval 5s plus --group-lag-interval 15s"},
		{func(o *Options) { o.FlushInterval = time.Hour }, ""}, // the default stall timeout follows
	} {
		o := DefaultOptions()
		tc.set(&o)
		err := o.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", o.InstanceID, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Validate = %v, want %q", err, tc.want)
		}
	}
	o := DefaultOptions()
	if d := o.stallTimeout(); d != 2*time.Minute {
		t.Errorf("default stall timeout %s, want 2m", d)
	}
	o.FlushInterval = time.Hour
	if d := o.stallTimeout(); d != 2*time.Hour+15*time.Second {
		t.Errorf("stall timeout with a 1h flush interval %s, want 2h0m15s", d)
	}
}

// TestLastFlushSuccessTimestamp: costpipe_last_flush_success_timestamp_seconds
// is 0 before the first flush and the flush's time after one that landed
// (an idle one too), so an alert on its age tells a landing that fails or
// a stuck flush loop from no traffic.
func TestLastFlushSuccessTimestamp(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 1)
	at := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	opts := DefaultOptions()
	opts.Brokers = []string{b.Addr()}
	opts.Now = func() time.Time { return at }
	var logs logtest.Buffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	opts.DLQSpoolDir = t.TempDir()
	c, err := New(opts, &recSink{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.cl.Close()
	if got := gauge(t, reg, "costpipe_last_flush_success_timestamp_seconds"); got != 0 {
		t.Errorf("before any flush: %v, want 0", got)
	}
	// The client joins the group in the background and its callback
	// registers the partition; flushing here, outside the poll loop that
	// keeps callbacks away, must wait for it. The log line it writes
	// afterwards (through the buffer's lock) orders the two.
	deadline := time.Now().Add(30 * time.Second)
	for len(logs.Lines("partitions assigned")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no partition assigned within 30 s; log:\n%s", strings.Join(logs.Lines(""), "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx := context.Background()
	if err := c.flushOrAbandon(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := gauge(t, reg, "costpipe_last_flush_success_timestamp_seconds"), float64(at.Unix()); got != want {
		t.Errorf("after an idle flush: %v, want %v", got, want)
	}
}
