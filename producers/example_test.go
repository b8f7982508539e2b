package producers_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/costpipe/costpipe/broker"
	"github.com/costpipe/costpipe/producers"
	"github.com/costpipe/costpipe/schemas"
)

// Instrumenting a service: one Producer per process, one Emit per inference
// call, Close at shutdown.
func Example() {
	// A development broker on a free port; in production, your Kafka brokers.
	bo := broker.DefaultOptions()
	bo.Listen = "127.0.0.1:0"
	b, err := broker.Start(bo)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	opts := producers.DefaultOptions()
	opts.Brokers = []string{b.Addr()}
	opts.Encoding = producers.EncodingArrow // many events per record; EncodingJSON for kcat-readable records
	opts.WhenFull = producers.Drop          // never slow the request path; count what is dropped
	opts.OnError = func(err *producers.LossError) { log.Print(err) }
	p, err := producers.New(opts)
	if err != nil {
		log.Fatal(err)
	}

	// After each inference call (the Event may be reused: Emit copies it):
	ctx := context.Background()
	start := time.Now()
	ev := schemas.Event{
		EventID:   "req-7f3a9c",
		Timestamp: start,
		Tenant:    "acme-corp",
		Provider:  "anthropic",
		Model:     "claude-sonnet-4-5-20250929",
		Status:    schemas.StatusOK,

		Application:       "support-assistant",
		InputTokens:       1834,
		CachedInputTokens: 1024,
		OutputTokens:      412,
		LatencyMs:         2314.7, HasLatency: true,
		TTFTMs: 412.3, HasTTFT: true,
	}
	if err := p.Emit(ctx, &ev); err != nil {
		log.Print(err) // invalid event, or dropped because the buffer is full
	}

	// At shutdown: deliver what is buffered, waiting at most 10 seconds.
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.Close(closeCtx); err != nil {
		log.Print(err)
	}
	fmt.Printf("%+v\n", p.Stats())
	// Output: {Sent:1 Failed:0 Dropped:0 Buffered:0}
}
