package producers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/kafkatest"
)

// In Arrow mode the producer picks each record's partition itself, from a
// partition count it reads every partitionRefresh. When the topic gains
// partitions it read the new count before franz-go's producer had, and
// franz-go failed every record sent to a new partition at once ("invalid
// record partitioning choice"): events lost for up to franz-go's metadata
// age (5 minutes). Not parallel: it shortens partitionRefresh.
func TestArrowAfterPartitionsGrow(t *testing.T) {
	old := partitionRefresh
	partitionRefresh = 200 * time.Millisecond
	t.Cleanup(func() { partitionRefresh = old })
	b := kafkatest.Start(t, 1)
	const topic = "grows"
	p := newTestProducer(t, b.Addr(), func(o *Options) { o.Encoding = EncodingArrow; o.Topic = topic })
	emit := func(from, n int) {
		for i := from; i < from+n; i++ {
			e := testEvent(i)
			e.Tenant = fmt.Sprintf("tenant-%d", i)
			if err := p.Emit(context.Background(), &e); err != nil {
				t.Fatal(err)
			}
		}
		flush(t, p, 20*time.Second)
	}
	emit(0, 100)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreatePartitions(ctx, 7, topic); err != nil {
		t.Fatal(err)
	}
	// Batches sent while the producer learns of the new partitions, then
	// after: none may fail, and the new partitions come into use.
	n := 100
	for round := range 6 {
		time.Sleep(300 * time.Millisecond)
		emit(n, 200)
		n += 200
		if s := p.Stats(); s.Failed != 0 || s.Sent != int64(n) {
			t.Fatalf("round %d after the topic grew from 1 to 8 partitions: stats %+v, want %d sent, none failed", round, s, n)
		}
	}
	used := map[int32]bool{}
	for _, g := range consume(t, b.Addr(), topic, n, 20*time.Second) {
		used[g.partition] = true
	}
	if len(used) != 8 {
		t.Errorf("events on %d partitions after the topic grew to 8", len(used))
	}
}
