package consumers

import (
	"testing"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRecordPoolSizes: a batch's slice has room for its records rounded up
// to a power of two (at least 8), and comes back from the pool for a batch
// of the same class. Every batch took room for 256 records (40 KiB), so
// the batches fetched ahead while a restarted aggregator re-warmed its
// dedupe window took hundreds of MiB.
func TestRecordPoolSizes(t *testing.T) {
	t.Parallel()
	var rp recordPool
	for _, c := range []struct{ n, capacity int }{{0, 8}, {1, 8}, {8, 8}, {9, 16}, {300, 512}, {65536, 65536}, {65537, 65537}} {
		s := rp.GetRecords(c.n)
		if len(s) != 0 || cap(s) != c.capacity {
			t.Errorf("GetRecords(%d): len %d cap %d, want 0 and %d", c.n, len(s), cap(s), c.capacity)
		}
	}
	if got := 8 * unsafe.Sizeof(kgo.Record{}); got > 2048 {
		t.Errorf("a batch of one record takes %d bytes", got)
	}
	// Reuse within a class. sync.Pool may drop what it holds at any GC, so
	// look for one reuse in a few tries.
	reused := false
	for i := 0; i < 10 && !reused; i++ {
		s := rp.GetRecords(100)
		s = append(s, kgo.Record{Offset: 1})
		p := &s[:1][0]
		rp.PutRecords(s)
		if t2 := rp.GetRecords(120); cap(t2) == 128 && &t2[:1][0] == p {
			reused = true
		}
	}
	if !reused {
		t.Error("a slice put back was never reused for a batch of its class")
	}
	rp.PutRecords(make([]kgo.Record, 0, 100)) // not a class capacity: dropped
}
