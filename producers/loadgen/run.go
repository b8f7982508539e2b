package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/costpipe/costpipe/schemas"
)

// Sink receives generated events. Write returns how many of evs it took
// (sent, or kept for its Flush to send): all of them unless it fails, and
// on a failure the events it took before it, so the run counts what the
// sink will still deliver. Write may keep nothing of evs after it returns
// (Run reuses the slice). Flush sends anything the sink batches and waits
// until it is delivered. Run calls both from one goroutine.
type Sink interface {
	Write(ctx context.Context, evs []schemas.Event) (int, error)
	Flush(ctx context.Context) error
}

// Stats report a run.
type Stats struct {
	Counts                // what the generator made
	Written int64         // events the sink took (sent or kept for its flush)
	Elapsed time.Duration // since Run started
}

// Rate returns the achieved events per second.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Written) / s.Elapsed.Seconds()
}

// maxRunBatch bounds the events generated and written per step.
const maxRunBatch = 1000

// Run generates events with gen and writes them to sink at rate events per
// second (rate ≤ 0: as fast as the sink takes them) for gen's
// Options.Duration, or until ctx ends when the duration is 0. With a
// duration and a sink that keeps up, it writes exactly round(rate ×
// duration) events. Pacing uses the real clock, in steps of at most about
// 10 ms or 1000 events. Options.Progress is called about once a second and
// at the end. At the end, Run flushes the sink (ctx permitting) and returns
// the stats with the first error of the sink, or ctx's error when ctx
// ended the run.
func Run(ctx context.Context, gen *Generator, sink Sink, rate float64) (Stats, error) {
	opts := gen.Options()
	start := time.Now()
	batch := maxRunBatch
	if rate > 0 {
		batch = int(min(maxRunBatch, max(1, math.Ceil(rate/100))))
	}
	total := int64(-1) // events to write; -1: unbounded
	if opts.Duration > 0 && rate > 0 {
		total = int64(math.Round(rate * opts.Duration.Seconds()))
	}
	evs := make([]schemas.Event, batch)
	var written int64
	stats := func() Stats {
		return Stats{Counts: gen.Counts(), Written: written, Elapsed: time.Since(start)}
	}
	nextProgress := start.Add(time.Second)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var runErr error
loop:
	for {
		if err := ctx.Err(); err != nil {
			runErr = err
			break
		}
		now := time.Now()
		elapsed := now.Sub(start)
		if opts.Progress != nil && !now.Before(nextProgress) {
			opts.Progress(stats())
			nextProgress = now.Add(time.Second)
		}
		ended := opts.Duration > 0 && elapsed >= opts.Duration
		var due int64
		switch {
		case rate <= 0:
			due = int64(batch)
		case ended:
			due = total - written
		default:
			due = int64(rate*elapsed.Seconds()) - written
			if total >= 0 {
				due = min(due, total-written)
			}
		}
		if due <= 0 {
			if ended || total >= 0 && written >= total {
				break
			}
			// Sleep until the next event is due (at least 1 ms).
			wait := time.Duration(float64(written+1)/rate*1e9) - elapsed
			timer.Reset(max(wait, time.Millisecond))
			select {
			case <-ctx.Done():
				runErr = ctx.Err()
				break loop
			case <-timer.C:
			}
			continue
		}
		k := int(min(due, int64(batch)))
		for i := 0; i < k; i++ {
			gen.Next(&evs[i])
		}
		n, err := sink.Write(ctx, evs[:k])
		written += int64(n)
		if err != nil {
			runErr = err
			break
		}
		if ended && rate <= 0 {
			break
		}
	}
	fctx := ctx
	if errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded) {
		// The run was stopped: still deliver what the sink holds, briefly.
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
	}
	if err := sink.Flush(fctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("cannot flush the sink: %w", err)
	}
	st := stats()
	if opts.Progress != nil {
		opts.Progress(st)
	}
	return st, runErr
}
