package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/broker"
	"github.com/costpipe/costpipe/schemas"
)

func brokerCommand() *cli.Command {
	return &cli.Command{
		Name:  "broker",
		Usage: "run an embedded Kafka-protocol broker for development (in memory, or kept under --data-dir)",
		Description: `Runs franz-go's kfake, a Kafka wire-protocol broker kept in memory, on --listen,
with the events topic (--topic) and its DLQ (--topic + ".dlq") created with
--partitions partitions. Any Kafka client (franz-go, kcat, librdkafka) can use it.
Data is lost when it stops unless --data-dir is set: then topics, records and
offsets are kept there (not fsynced: a process kill keeps them, an operating
system crash may lose the last writes), topics it lacks are created, and a
topic it has keeps its partition count whatever --partitions says. One broker
at a time uses a directory. Not for production: use Apache Kafka or Redpanda
there.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:9092", EnvVars: []string{"COSTPIPE_BROKER_LISTEN"},
				Usage: "`HOST:PORT` to listen on (port 0 picks a free one)"},
			&cli.IntFlag{Name: "partitions", Value: 6, EnvVars: []string{"COSTPIPE_BROKER_PARTITIONS"},
				Usage: "partitions of each topic created at start"},
			&cli.StringFlag{Name: "advertise", EnvVars: []string{"COSTPIPE_BROKER_ADVERTISE"},
				Usage: "`HOST` clients are told to connect to (default: the --listen host, 127.0.0.1 for a wildcard)"},
			&cli.StringFlag{Name: "data-dir", EnvVars: []string{"COSTPIPE_BROKER_DATA_DIR"},
				Usage: "`DIR` to persist topics, records and offsets in (default: memory only)", TakesFile: true},
		},
		Action: func(c *cli.Context) error {
			log, err := logger(c)
			if err != nil {
				return err
			}
			opts := broker.DefaultOptions()
			opts.Listen = c.String("listen")
			opts.Partitions = c.Int("partitions")
			topic := c.String("topic")
			opts.Topics = []string{topic, dlqTopic(topic)}
			opts.Logger = log
			opts.AdvertisedHost = c.String("advertise")
			opts.DataDir = c.String("data-dir")
			if err := opts.Validate(); err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			b, err := broker.Start(opts)
			if err != nil {
				return err
			}
			defer b.Close()
			var topics []string
			for _, t := range opts.Topics {
				topics = append(topics, fmt.Sprintf("%s (%d partitions)", t, b.Partitions(t)))
			}
			fmt.Fprintf(c.App.Writer, "broker listening on %s (topics %s); Ctrl-C to stop\n", b.Addr(), strings.Join(topics, ", "))
			<-c.Context.Done()
			fmt.Fprintln(c.App.Writer, "broker stopping")
			return nil
		},
	}
}

// dlqTopic is the DLQ topic for an events topic: the default pair is
// costpipe.events → costpipe.events.dlq.
func dlqTopic(topic string) string {
	if topic == schemas.DefaultTopic {
		return schemas.DefaultDLQTopic
	}
	return topic + ".dlq"
}
