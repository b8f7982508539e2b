package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/producers"
)

func produceCommand() *cli.Command {
	return &cli.Command{
		Name:      "produce",
		Usage:     "send JSON-lines events from a file or stdin to Kafka",
		ArgsUsage: "[FILE|-]",
		Description: `Reads one JSON event per line (FILE, or stdin when FILE is - or absent),
validates each against the event contract and produces the valid ones to --topic
with key tenant+"\x00"+model and header content-type: application/json, waiting
for Kafka to acknowledge every record. Rejected lines are printed to stderr with
their line number and reason; the summary counts sent, rejected and failed.
Exit status: 0 all sent, 1 some line rejected or failed, 2 usage error.`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, EnvVars: []string{"COSTPIPE_PRODUCE_TIMEOUT"},
				Usage: "per-record delivery timeout"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return &exitError{code: 2, msg: "produce takes at most one FILE argument"}
			}
			var in io.Reader = os.Stdin
			if d := c.Duration("timeout"); d < time.Second {
				return &exitError{code: 2, msg: fmt.Sprintf("invalid --timeout %s: want at least 1s", d)}
			}
			name := "stdin"
			if f := c.Args().First(); f != "" && f != "-" {
				fh, err := os.Open(f)
				if err != nil {
					return &exitError{code: 2, msg: fmt.Sprintf("cannot open input: %v", err)}
				}
				defer fh.Close()
				in, name = fh, f
			}
			kopts, err := kafkaClientOpts(c)
			if err != nil {
				return err
			}
			cl, err := kgo.NewClient(append([]kgo.Opt{
				kgo.SeedBrokers(splitList(c.String("brokers"))...),
				kgo.RecordDeliveryTimeout(c.Duration("timeout")),
				kgo.ProducerLinger(5 * time.Millisecond),
			}, kopts...)...)
			if err != nil {
				return &exitError{code: 2, msg: fmt.Sprintf("cannot create kafka client for --brokers %q: %v", c.String("brokers"), err)}
			}
			defer cl.Close()
			topic := c.String("topic")
			rep, err := producers.SendLines(c.Context, cl, topic, in, func(r producers.Rejection) {
				fmt.Fprintf(c.App.ErrWriter, "%s:%d: %v\n", name, r.Line, r.Err)
			})
			fmt.Fprintf(c.App.Writer, "sent %d, rejected %d, failed %d (topic %s)\n", rep.Sent, rep.Rejected, rep.Failed, topic)
			if err != nil {
				return err
			}
			if rep.Rejected > 0 || rep.Failed > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
