package consumers

import (
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// stickyBalancer is franz-go's eager sticky balancer, told what this member
// owned before the rebalance. franz-go clears an eager member's assignment
// when it revokes it, before rejoining, so the sticky user data of its
// JoinGroup claims nothing and the leader deals every partition out afresh:
// under churn partitions moved on every rebalance, and each moved partition
// re-read its whole dedupe window (the warm-up) instead of keeping the window
// it was revoked with (retained windows). With the claim the leader keeps
// each partition with its owner whenever the balance allows. The claim only
// steers the plan; any plan is correct, since eager members revoke
// everything before rejoining.
type stickyBalancer struct {
	kgo.GroupBalancer
	last *lastAssignment
}

func newStickyBalancer(last *lastAssignment) kgo.GroupBalancer {
	return stickyBalancer{GroupBalancer: kgo.StickyBalancer(), last: last}
}

// JoinGroupMetadata claims current, or when franz-go passes nothing (an
// eager rejoin), the partitions of this member's last assignment.
func (b stickyBalancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	if len(current) == 0 {
		current = b.last.get(interests)
	}
	return b.GroupBalancer.JoinGroupMetadata(interests, current, generation)
}

// lastAssignment is the member's last assignment from the group (set by
// onAssigned, kept through a revoke, cleared when partitions are lost or
// the member is fenced: another member owns them in a newer generation).
// Safe for concurrent use.
type lastAssignment struct {
	mu sync.Mutex
	m  map[string][]int32
}

func (l *lastAssignment) set(assigned map[string][]int32) {
	m := make(map[string][]int32, len(assigned))
	for t, ps := range assigned {
		if len(ps) > 0 {
			m[t] = slices.Sorted(slices.Values(ps))
		}
	}
	l.mu.Lock()
	l.m = m
	l.mu.Unlock()
}

func (l *lastAssignment) clear() { l.set(nil) }

// get returns a copy of the last assignment of the given topics.
func (l *lastAssignment) get(topics []string) map[string][]int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]int32, len(l.m))
	for _, t := range topics {
		if ps := l.m[t]; len(ps) > 0 {
			out[t] = slices.Clone(ps)
		}
	}
	return out
}
