package consumers

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDropHeldForgetsRevokedPartitions: at a revoke, the held DLQ records
// (and the positions of those not held) of the revoked partitions go: the
// next owner reads them again from the commit that stopped before them,
// and this member, keeping them, would spool them a second time. The
// others stay, with the commit limits they set.
func TestDropHeldForgetsRevokedPartitions(t *testing.T) {
	t.Parallel()
	c := &Consumer{dlqOpen: map[dlqPos]struct{}{}}
	add := func(part int32, off int64) {
		src := dlqSource{topic: "t", pos: dlqPos{part, off}}
		c.dlqOpen[src.pos] = struct{}{}
		c.hold(dlqFailure{rec: &kgo.Record{Value: []byte("bad")}, src: src})
	}
	add(0, 10)
	add(1, 20)
	add(1, 25)
	c.held.floor = map[int32]dlqSource{1: {pos: dlqPos{1, 30}}, 2: {pos: dlqPos{2, 5}}}
	c.held.dropped = 2
	c.dropHeld([]int32{1, 2})
	if len(c.held.recs) != 1 || c.held.recs[0].src.pos != (dlqPos{0, 10}) {
		t.Errorf("held after revoking 1 and 2: %+v, want only partition 0's", c.held.recs)
	}
	if want := heldSize(&kgo.Record{Value: []byte("bad")}); c.held.bytes != want {
		t.Errorf("held bytes %d, want %d", c.held.bytes, want)
	}
	if _, ok := c.dlqOpen[dlqPos{1, 20}]; ok || len(c.dlqOpen) != 1 {
		t.Errorf("open DLQ positions %v, want partition 0's only", c.dlqOpen)
	}
	if len(c.held.floor) != 0 || c.held.dropped != 0 {
		t.Errorf("floors %v, dropped %d; want none", c.held.floor, c.held.dropped)
	}
	if l := c.held.commitLimits(); len(l) != 1 || l[0].pos.off != 10 {
		t.Errorf("commit limits %v, want partition 0 at 10", l)
	}
}
