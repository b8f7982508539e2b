package consumers

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/costpipe/costpipe/schemas"
)

// An eager member rejoins claiming what it owned (franz-go passes nothing),
// so the sticky plan keeps every partition with its owner and gives a new
// member what is left; lost partitions are not claimed.
func TestRejoinClaimsTheLastAssignment(t *testing.T) {
	t.Parallel()
	topics := []string{schemas.DefaultTopic}
	member := func(id string, b kgo.GroupBalancer) kmsg.JoinGroupResponseMember {
		m := kmsg.NewJoinGroupResponseMember()
		m.MemberID = id
		m.ProtocolMetadata = b.JoinGroupMetadata(topics, nil, 7)
		return m
	}
	var la, lb lastAssignment
	la.set(map[string][]int32{schemas.DefaultTopic: {3, 2}, "other": {1}})
	lb.set(map[string][]int32{schemas.DefaultTopic: {5, 4}})
	a, b, c := newStickyBalancer(&la), newStickyBalancer(&lb), newStickyBalancer(&lastAssignment{})
	plan := func() map[string]string {
		mb, _, err := a.MemberBalancer([]kmsg.JoinGroupResponseMember{member("a", a), member("b", b), member("c", c)})
		if err != nil {
			t.Fatal(err)
		}
		into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(map[string]int32{schemas.DefaultTopic: 6})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, sa := range into.IntoSyncAssignment() {
			got, err := a.ParseSyncAssignment(sa.MemberAssignment)
			if err != nil {
				t.Fatal(err)
			}
			out[sa.MemberID] = fmt.Sprint(got[schemas.DefaultTopic])
		}
		return out
	}
	if got, want := fmt.Sprint(plan()), "map[a:[2 3] b:[4 5] c:[0 1]]"; got != want {
		t.Errorf("plan %s, want %s (each keeps what it owned)", got, want)
	}
	la.clear()
	lb.clear()
	if got := la.get(topics); len(got) != 0 {
		t.Errorf("cleared assignment still claims %v", got)
	}
	if got, want := fmt.Sprint(plan()), "map[a:[0 4] b:[1 5] c:[2 3]]"; got != want {
		t.Errorf("plan without claims %s, want %s", got, want)
	}
}
