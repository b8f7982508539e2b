package consumers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// watchGroup reads the group's lag every GroupLagInterval and logs the
// warnings of health, until ctx ends. It runs in its own goroutine (Run
// starts it and waits for it before closing the client) and touches only
// health and metrics, never partition state, so it works the same whether
// this instance owns partitions, waits in a rebalance or cannot join.
func (c *Consumer) watchGroup(ctx context.Context) {
	t := time.NewTicker(c.opts.GroupLagInterval)
	defer t.Stop()
	for {
		c.refreshGroupLag(ctx)
		if ctx.Err() != nil {
			return
		}
		c.health.warn(c.opts.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refreshGroupLag reads the group's committed offsets and the topic's log
// start and end offsets, at most GroupLagInterval long, and publishes the
// lag.
func (c *Consumer) refreshGroupLag(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, c.opts.GroupLagInterval)
	defer cancel()
	committed, start, end, err := c.groupOffsets(rctx)
	if ctx.Err() != nil {
		return
	}
	now := c.opts.Now()
	if err != nil {
		c.m.groupLagErrors.Inc()
		c.health.lagFailed(now, err)
		c.log.Debug("cannot read the consumer group's lag", "group", c.opts.Group, "err", err)
		return
	}
	c.m.setGroupLag(c.health.observe(now, committed, start, end))
}

// groupOffsets returns, per partition of the events topic, the group's
// committed offset (absent: none), the log start and the log end offset.
func (c *Consumer) groupOffsets(ctx context.Context) (committed, start, end map[int32]int64, err error) {
	ends, err := c.adm.ListEndOffsets(ctx, c.opts.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cannot list the end offsets of %q: %w", c.opts.Topic, err)
	}
	starts, err := c.adm.ListStartOffsets(ctx, c.opts.Topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cannot list the start offsets of %q: %w", c.opts.Topic, err)
	}
	fetched, err := c.adm.FetchOffsets(ctx, c.opts.Group)
	if err == nil {
		err = fetched.Error()
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cannot fetch the committed offsets of group %q: %w", c.opts.Group, err)
	}
	end, start, committed = map[int32]int64{}, map[int32]int64{}, map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { end[o.Partition] = o.Offset })
	starts.Each(func(o kadm.ListedOffset) { start[o.Partition] = o.Offset })
	if len(end) == 0 {
		return nil, nil, nil, errors.New("topic " + c.opts.Topic + " has no partitions")
	}
	for p := range end {
		if o, ok := fetched.Lookup(c.opts.Topic, p); ok && o.At >= 0 {
			committed[p] = o.At
		}
	}
	return committed, start, end, nil
}

// Ready reports whether this instance is ready: nil, or an error naming
// every reason it is not (no assignment for longer than RebalanceTimeout,
// or not joined yet; the group stalled; its lag unreadable). Safe for
// concurrent use; it is what /readyz serves.
func (c *Consumer) Ready() error { return c.health.ready(c.opts.Now()) }
