package loadgen

import (
	"context"
	"errors"

	"github.com/costpipe/costpipe/producers"
	"github.com/costpipe/costpipe/schemas"
)

// KafkaSink emits events with the producer SDK. The caller creates and
// closes the Producer; its Options choose brokers, topic, encoding and what
// happens when its buffer is full.
type KafkaSink struct {
	Producer *producers.Producer
}

// Write emits each event and returns how many it emitted. Under the Drop
// policy a full buffer is not an error: the drop is counted in the
// Producer's Stats.
func (s KafkaSink) Write(ctx context.Context, evs []schemas.Event) (int, error) {
	for i := range evs {
		if err := s.Producer.Emit(ctx, &evs[i]); err != nil && !errors.Is(err, producers.ErrBufferFull) {
			return i, err
		}
	}
	return len(evs), nil
}

// Flush waits until Kafka acknowledged or failed every emitted event.
func (s KafkaSink) Flush(ctx context.Context) error { return s.Producer.Flush(ctx) }
