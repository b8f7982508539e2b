package loadgen_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/costpipe/costpipe/broker"
	"github.com/costpipe/costpipe/producers"
	"github.com/costpipe/costpipe/producers/loadgen"
)

// Running the generator in-process, as `costpipe demo` does: a month of
// backdated traffic growing 100×, 2000 events, into Kafka through the SDK.
func Example() {
	bo := broker.DefaultOptions()
	bo.Listen = "127.0.0.1:0"
	b, err := broker.Start(bo)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	po := producers.DefaultOptions()
	po.Brokers = []string{b.Addr()}
	po.Encoding = producers.EncodingArrow
	po.WhenFull, po.MaxEventAge, po.MaxFuture = producers.Block, 0, 0 // a generator: back pressure, its own event times
	p, err := producers.New(po)
	if err != nil {
		log.Fatal(err)
	}

	o := loadgen.DefaultOptions()
	o.Scenario = loadgen.Growth
	o.Rate, o.Duration = 10_000, 200*time.Millisecond // 2000 events over the simulated month
	o.Seed = 7
	gen, err := loadgen.New(o)
	if err != nil {
		log.Fatal(err)
	}
	st, err := loadgen.Run(context.Background(), gen, loadgen.KafkaSink{Producer: p}, o.Rate)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Written, "events written,", p.Stats().Sent, "sent")
	// Output: 2000 events written, 2000 sent
}
