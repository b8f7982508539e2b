package broker_test

// Protocol-level tests of the embedded broker's classic group coordinator,
// one per defect fixed in third_party/kfake (see its PATCHES.md). Each
// drives JoinGroup, SyncGroup, Heartbeat and LeaveGroup by hand, one
// kgo.Client per member (a parked JoinGroup or SyncGroup holds its
// connection), so that the order of events is exact.

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/costpipe/costpipe/broker"
	"github.com/costpipe/costpipe/internal/kafkatest"
)

// A live member waiting in the join barrier for longer than its session
// timeout (here: the barrier waits for a silent member whose session is
// longer) must stay in the group and get its JoinGroup answered. Upstream
// kfake expired it and never answered, and franz-go reported "i/o timeout"
// at rebalance timeout + 10 s.
func TestCoordinatorKeepsMembersWaitingInJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a session timeout")
	}
	t.Parallel()
	b := kafkatest.Start(t, 2)
	ctx := ctxT(t)
	const group = "parked-join"
	a := newRawMember(t, b.Addr(), group, 6*time.Second, 20*time.Second)
	g := newRawMember(t, b.Addr(), group, 9*time.Second, 20*time.Second)

	// A forms the group alone; G joins; both sync: generation 2, Stable.
	a.mustJoin(ctx)
	a.mustSync(ctx, a.id)
	gJoin := g.startJoin(ctx)
	waitGroup(t, a, "PreparingRebalance", a.id, g.id)
	a.mustJoin(ctx)
	if r := <-gJoin; r.err != nil || r.resp.ErrorCode != 0 {
		t.Fatalf("G's join: %v, code %d", r.err, r.resp.ErrorCode)
	}
	gSync := g.startSync(ctx)
	a.mustSync(ctx, a.id, g.id)
	<-gSync
	// G goes silent from here on: its session (9 s) ends at synced+9s.
	synced := time.Now()

	// A newcomer opens a barrier; A learns of it from a heartbeat and
	// rejoins at once, so A's session (6 s) would end at about
	// synced+6.5s, while the barrier waits for G until synced+9s.
	n := newRawMember(t, b.Addr(), group, 6*time.Second, 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	nJoin := n.startJoin(ctx)
	waitGroup(t, a, "PreparingRebalance", a.id, g.id, n.id)
	if code := a.heartbeat(ctx); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("A's heartbeat: code %d, want REBALANCE_IN_PROGRESS", code)
	}
	aJoin := a.startJoin(ctx)

	jctx, cancel := context.WithDeadline(ctx, synced.Add(12*time.Second))
	defer cancel()
	var r joinResult
	select {
	case r = <-aJoin:
	case <-jctx.Done():
		t.Fatalf("A's JoinGroup was not answered %.1fs after the sync (G's session ended at 9s): the coordinator dropped a live member waiting in the join barrier",
			time.Since(synced).Seconds())
	}
	if r.err != nil || r.resp.ErrorCode != 0 {
		t.Fatalf("A's join: %v, code %d (%v)", r.err, r.resp.ErrorCode, kerr.ErrorForCode(r.resp.ErrorCode))
	}
	if el := time.Since(synced); el < 8*time.Second {
		t.Errorf("barrier completed %s after the sync, before G's session ended", el)
	}
	nr := <-nJoin
	if nr.err != nil || nr.resp.ErrorCode != 0 {
		t.Fatalf("N's join: %v, code %d", nr.err, nr.resp.ErrorCode)
	}
	leader := r.resp
	if r.resp.LeaderID != a.id {
		leader = nr.resp
	}
	if got := joinedIDs(leader); !slices.Equal(got, slices.Sorted(slices.Values([]string{a.id, n.id}))) {
		t.Errorf("generation %d members = %v, want A and N", leader.Generation, got)
	}
}

// The join barrier's deadline is the rebalance timeout from when the group
// started rebalancing; members joining meanwhile do not push it back.
// Upstream kfake restarted the timer on every JoinGroup, so members
// restarting more often than the rebalance timeout kept the group waiting
// for a member that will never rejoin.
func TestCoordinatorJoinDeadlineIsNotExtended(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 2)
	ctx := ctxT(t)
	const group = "deadline"
	const rebalance = 2 * time.Second
	// A has a long session and goes silent after forming the group: only
	// the barrier's deadline removes it.
	a := newRawMember(t, b.Addr(), group, 60*time.Second, rebalance)
	a.mustJoin(ctx)
	a.mustSync(ctx, a.id)

	m1 := newRawMember(t, b.Addr(), group, 6*time.Second, rebalance)
	opened := time.Now()
	j1 := m1.startJoin(ctx)
	waitGroup(t, a, "PreparingRebalance", a.id, m1.id)
	// Two more members join before and after the first deadline would
	// have passed had each join restarted it.
	for _, at := range []time.Duration{1200 * time.Millisecond, 2400 * time.Millisecond} {
		time.Sleep(time.Until(opened.Add(at)))
		m := newRawMember(t, b.Addr(), group, 6*time.Second, rebalance)
		m.startJoin(ctx)
	}
	select {
	case r := <-j1:
		if r.err != nil || r.resp.ErrorCode != 0 {
			t.Fatalf("join: %v, code %d", r.err, r.resp.ErrorCode)
		}
		if el := time.Since(opened); el > rebalance+time.Second {
			t.Errorf("barrier completed %s after it opened, want about the rebalance timeout %s", el.Round(time.Millisecond), rebalance)
		}
	case <-time.After(3 * rebalance):
		t.Fatalf("barrier not completed %s after it opened (rebalance timeout %s)", 3*rebalance, rebalance)
	}
}

// A member whose process dies while its JoinGroup waits in the barrier is
// not made part of the next generation. Upstream kfake (and Kafka, which
// cannot see the disconnect) kept it: its partitions went unconsumed until
// its session expired, and with upstream kfake that never happened when
// the JoinGroup response could not be written, since only a written
// response started its session timer.
func TestCoordinatorDropsMemberKilledWhileJoining(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 2)
	ctx := ctxT(t)
	const group = "killed-joining"
	a := newRawMember(t, b.Addr(), group, 6*time.Second, 10*time.Second)
	a.mustJoin(ctx)
	a.mustSync(ctx, a.id)

	k := newRawMember(t, b.Addr(), group, 6*time.Second, 10*time.Second)
	k.startJoin(ctx)
	waitGroup(t, a, "PreparingRebalance", a.id, k.id)
	k.cl.Close() // SIGKILL: the connection closes, no LeaveGroup
	time.Sleep(200 * time.Millisecond)

	if code := a.heartbeat(ctx); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat: code %d, want REBALANCE_IN_PROGRESS", code)
	}
	resp := a.mustJoin(ctx)
	if resp.LeaderID != a.id {
		t.Fatalf("leader %s, want the only live member %s", resp.LeaderID, a.id)
	}
	if got := joinedIDs(resp); !slices.Equal(got, []string{a.id}) {
		t.Errorf("generation %d members = %v, want only %s (the killed member's JoinGroup can never be answered)", resp.Generation, got, a.id)
	}
	a.mustSync(ctx, a.id)
	waitGroup(t, a, "Stable", a.id)
}

// Likewise a member that dies while its SyncGroup waits for the leader is
// removed when the next rebalance starts, instead of holding that
// rebalance's barrier open for its session timeout.
func TestCoordinatorDropsMemberKilledWhileSyncing(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 2)
	ctx := ctxT(t)
	const group = "killed-syncing"
	a := newRawMember(t, b.Addr(), group, 6*time.Second, 10*time.Second)
	a.mustJoin(ctx)
	a.mustSync(ctx, a.id)
	k := newRawMember(t, b.Addr(), group, 6*time.Second, 10*time.Second)
	kJoin := k.startJoin(ctx)
	waitGroup(t, a, "PreparingRebalance", a.id, k.id)
	a.mustJoin(ctx) // generation 2; A is the leader and does not sync yet
	if r := <-kJoin; r.err != nil || r.resp.ErrorCode != 0 {
		t.Fatalf("join: %v, code %d", r.err, r.resp.ErrorCode)
	}
	k.startSync(ctx)
	waitParkedSync(t, a, k)
	k.cl.Close() // SIGKILL while waiting for the leader's assignment
	time.Sleep(200 * time.Millisecond)

	n := newRawMember(t, b.Addr(), group, 6*time.Second, 10*time.Second)
	nJoin := n.startJoin(ctx) // a newcomer starts the next rebalance
	waitGroup(t, a, "PreparingRebalance", a.id, n.id)
	start := time.Now()
	a.mustJoin(ctx)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("rejoin took %s: the barrier waited for the killed member", el.Round(time.Millisecond))
	}
	if r := <-nJoin; r.err != nil || r.resp.ErrorCode != 0 {
		t.Fatalf("join: %v, code %d", r.err, r.resp.ErrorCode)
	}
}

// When the previous leader is gone, one member is elected leader and every
// JoinGroup response names it. Upstream kfake named each member itself.
func TestCoordinatorElectsOneLeader(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 2)
	ctx := ctxT(t)
	const group = "one-leader"
	a := newRawMember(t, b.Addr(), group, 6*time.Second, 10*time.Second)
	a.mustJoin(ctx)
	a.mustSync(ctx, a.id)

	m1 := newRawMember(t, b.Addr(), group, 6*time.Second, 10*time.Second)
	m2 := newRawMember(t, b.Addr(), group, 6*time.Second, 10*time.Second)
	j1, j2 := m1.startJoin(ctx), m2.startJoin(ctx)
	waitGroup(t, a, "PreparingRebalance", a.id, m1.id, m2.id)
	a.leave(ctx) // the leader leaves: m1 and m2 complete the barrier
	r1, r2 := <-j1, <-j2
	for _, r := range []joinResult{r1, r2} {
		if r.err != nil || r.resp.ErrorCode != 0 {
			t.Fatalf("join: %v, code %d", r.err, r.resp.ErrorCode)
		}
	}
	if r1.resp.LeaderID != r2.resp.LeaderID {
		t.Fatalf("JoinGroup responses of generation %d name different leaders: %s and %s", r1.resp.Generation, r1.resp.LeaderID, r2.resp.LeaderID)
	}
	if l := r1.resp.LeaderID; l != m1.id && l != m2.id {
		t.Fatalf("leader %q is not a member", l)
	}
}

// A member removed while its SyncGroup is parked gets an answer, and the
// next barrier completes as soon as the remaining members rejoin. Upstream
// kfake left the SyncGroup unanswered and its count of joining members went
// negative, so the next barrier waited for its full deadline.
func TestCoordinatorRemovingSyncingMember(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 2)
	ctx := ctxT(t)
	const group = "syncing-leaves"
	a := newRawMember(t, b.Addr(), group, 6*time.Second, 10*time.Second)
	m := newRawMember(t, b.Addr(), group, 6*time.Second, 10*time.Second)
	a.mustJoin(ctx)
	a.mustSync(ctx, a.id)
	mJoin := m.startJoin(ctx)
	waitGroup(t, a, "PreparingRebalance", a.id, m.id)
	a.mustJoin(ctx) // generation 2, A stays leader
	if r := <-mJoin; r.err != nil || r.resp.ErrorCode != 0 {
		t.Fatalf("join: %v, code %d", r.err, r.resp.ErrorCode)
	}

	mSync := m.startSync(ctx) // parked until the leader syncs
	waitParkedSync(t, a, m)
	m.leave(ctx)
	select {
	case r := <-mSync:
		if r.err != nil {
			t.Fatalf("parked SyncGroup: %v", r.err)
		}
		if r.code != kerr.UnknownMemberID.Code {
			t.Errorf("parked SyncGroup of a removed member: code %d, want UNKNOWN_MEMBER_ID", r.code)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("SyncGroup of a member removed while it waited was never answered")
	}

	start := time.Now()
	a.mustJoin(ctx)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("the only member's rejoin took %s: the barrier waited for its deadline", el.Round(time.Millisecond))
	}
}

// rawMember is one classic group member driven request by request.
type rawMember struct {
	t                  *testing.T
	cl                 *kgo.Client
	group              string
	session, rebalance time.Duration
	id                 string
	gen                int32
	protocol           string
}

func newRawMember(t *testing.T, addr, group string, session, rebalance time.Duration) *rawMember {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	r := &rawMember{t: t, cl: cl, group: group, session: session, rebalance: rebalance}
	// Get a member ID first (KIP-394), so that tests know it before the
	// real JoinGroup parks.
	req := r.joinRequest()
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("first JoinGroup: code %d, want MEMBER_ID_REQUIRED", resp.ErrorCode)
	}
	r.id = resp.MemberID
	return r
}

func (r *rawMember) joinRequest() *kmsg.JoinGroupRequest {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{broker.EventsTopic}
	proto := kmsg.NewJoinGroupRequestProtocol()
	proto.Name = "range"
	proto.Metadata = meta.AppendTo(nil)
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = r.group
	req.MemberID = r.id
	req.SessionTimeoutMillis = int32(r.session.Milliseconds())
	req.RebalanceTimeoutMillis = int32(r.rebalance.Milliseconds())
	req.ProtocolType = "consumer"
	req.Protocols = []kmsg.JoinGroupRequestProtocol{proto}
	return req
}

type joinResult struct {
	resp *kmsg.JoinGroupResponse
	err  error
}

// startJoin sends a JoinGroup; the returned channel receives its response,
// whenever the coordinator answers.
func (r *rawMember) startJoin(ctx context.Context) <-chan joinResult {
	req := r.joinRequest()
	ch := make(chan joinResult, 1)
	go func() {
		resp, err := req.RequestWith(ctx, r.cl)
		if err == nil && resp.ErrorCode == 0 {
			r.gen = resp.Generation
			if resp.Protocol != nil {
				r.protocol = *resp.Protocol
			}
		}
		ch <- joinResult{resp, err}
	}()
	return ch
}

func (r *rawMember) mustJoin(ctx context.Context) *kmsg.JoinGroupResponse {
	r.t.Helper()
	res := <-r.startJoin(ctx)
	if res.err != nil || res.resp.ErrorCode != 0 {
		r.t.Fatalf("join: %v, code %d", res.err, res.resp.ErrorCode)
	}
	return res.resp
}

type syncResult struct {
	code int16
	err  error
}

// startSync sends a SyncGroup assigning the given members nothing (the
// leader's plan content does not matter to the coordinator).
func (r *rawMember) startSync(ctx context.Context, assign ...string) <-chan syncResult {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group = r.group
	req.MemberID = r.id
	req.Generation = r.gen
	req.ProtocolType = kmsg.StringPtr("consumer")
	req.Protocol = kmsg.StringPtr(r.protocol)
	empty := kmsg.NewConsumerMemberAssignment()
	for _, id := range assign {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID = id
		a.MemberAssignment = empty.AppendTo(nil)
		req.GroupAssignment = append(req.GroupAssignment, a)
	}
	ch := make(chan syncResult, 1)
	go func() {
		resp, err := req.RequestWith(ctx, r.cl)
		if err != nil {
			ch <- syncResult{err: err}
			return
		}
		ch <- syncResult{code: resp.ErrorCode}
	}()
	return ch
}

func (r *rawMember) mustSync(ctx context.Context, assign ...string) {
	r.t.Helper()
	if res := <-r.startSync(ctx, assign...); res.err != nil || res.code != 0 {
		r.t.Fatalf("sync: %v, code %d", res.err, res.code)
	}
}

func (r *rawMember) heartbeat(ctx context.Context) int16 {
	r.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group = r.group
	req.MemberID = r.id
	req.Generation = r.gen
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp.ErrorCode
}

func (r *rawMember) leave(ctx context.Context) {
	r.t.Helper()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = r.group
	req.MemberID = r.id
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = r.id
	req.Members = append(req.Members, m)
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		r.t.Fatal(err)
	}
	if resp.ErrorCode != 0 {
		r.t.Fatalf("leave: code %d", resp.ErrorCode)
	}
}

func describeGroup(ctx context.Context, r *rawMember) (kmsg.DescribeGroupsResponseGroup, error) {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{r.group}
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return kmsg.DescribeGroupsResponseGroup{}, err
	}
	return resp.Groups[0], nil
}

// waitGroup waits until the group is in state with exactly the given
// members (parked joins included).
func waitGroup(t *testing.T, via *rawMember, state string, ids ...string) {
	t.Helper()
	want := slices.Sorted(slices.Values(ids))
	var got []string
	var gotState string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		g, err := describeGroup(context.Background(), via)
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, m := range g.Members {
			got = append(got, m.MemberID)
		}
		slices.Sort(got)
		gotState = g.State
		if g.State == state && slices.Equal(got, want) {
			return
		}
	}
	t.Fatalf("group %s with members %v, want %s with %v", gotState, got, state, want)
}

// waitParkedSync waits until m's SyncGroup has reached the coordinator. A
// parked request holds m's group connection, and the coordinator answers
// nothing else on it meanwhile, so we can only wait a moment.
func waitParkedSync(t *testing.T, via, m *rawMember) {
	t.Helper()
	waitGroup(t, via, "CompletingRebalance", via.id, m.id)
	time.Sleep(200 * time.Millisecond)
}

func joinedIDs(resp *kmsg.JoinGroupResponse) []string {
	var ids []string
	for _, m := range resp.Members {
		ids = append(ids, m.MemberID)
	}
	slices.Sort(ids)
	return ids
}

// When the last member's session expires while a member is pending (it got
// MEMBER_ID_REQUIRED and has not joined yet), the group goes Empty: the
// Redpanda bug CORE-9252, where the group was stuck instead. kfake handles
// it (no patch needed); this keeps it so.
func TestCoordinatorLastMemberExpiresWithPendingMember(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a session timeout")
	}
	t.Parallel()
	b := kafkatest.Start(t, 2)
	ctx := ctxT(t)
	const group = "pending-only"
	a := newRawMember(t, b.Addr(), group, 6*time.Second, 10*time.Second)
	a.mustJoin(ctx)
	a.mustSync(ctx, a.id)
	// p is pending from here on: it has its member ID but never joins.
	p := newRawMember(t, b.Addr(), group, 6*time.Second, 10*time.Second)
	// a goes silent; its session ends 6 s after its sync.
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, err := describeGroup(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if g.State == "Empty" && len(g.Members) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s with %d members 10 s after its only member went silent, want Empty", g.State, len(g.Members))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
