package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/producers"
	"github.com/costpipe/costpipe/schemas"
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
Lines are sent as given (minus surrounding whitespace), so fields this version
does not know are kept. Gzip input (file or stdin) is detected and decompressed.
Events older than --max-event-age or further ahead than --max-future (the
aggregators' bounds, from the same variables) are sent, with a warning on stderr:
the aggregators send them to their DLQ unless theirs are wider (a backfill group).
After 100 delivery failures in a row produce stops; only the first 20 delivery
errors are printed. A long run from a file reports progress every 5s on stderr.
Exit status: 0 all sent, 1 some line rejected or failed, 2 usage error.`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, EnvVars: []string{"COSTPIPE_PRODUCE_TIMEOUT"},
				Usage: "per-record delivery timeout"},
			&cli.DurationFlag{Name: "max-event-age", Value: producers.DefaultOptions().MaxEventAge, EnvVars: []string{"COSTPIPE_MAX_EVENT_AGE"},
				Usage: "events older than this are sent with a warning: the aggregators send them to their DLQ (too_old) unless theirs is longer; 0 for no warning"},
			&cli.DurationFlag{Name: "max-future", Value: producers.DefaultOptions().MaxFuture, EnvVars: []string{"COSTPIPE_MAX_FUTURE"},
				Usage: "events further ahead than this are sent with a warning: the aggregators send them to their DLQ (too_far_in_future); 0 for no warning"},
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
			inFile := os.Stdin
			if f := c.Args().First(); f != "" && f != "-" {
				fh, err := os.Open(f)
				if err != nil {
					return &exitError{code: 2, msg: fmt.Sprintf("cannot open input: %v", err)}
				}
				defer fh.Close()
				in, name, inFile = fh, f, fh
			}
			in, err := maybeGunzip(in)
			if err != nil {
				return &exitError{code: 2, msg: fmt.Sprintf("cannot read %s: %v", name, err)}
			}
			gz, gzipped := in.(*gzip.Reader)
			if gzipped {
				defer gz.Close()
			}
			kopts, err := kafkaClientOpts(c)
			if err != nil {
				return err
			}
			cl, err := kgo.NewClient(append([]kgo.Opt{
				kgo.SeedBrokers(splitList(c.String("brokers"))...),
				// As the SDK does: a cluster that allows it creates a missing topic.
				kgo.AllowAutoTopicCreation(),
				kgo.RecordDeliveryTimeout(c.Duration("timeout")),
				// Without this franz-go never fails a record whose request was
				// written to a connection that then broke, so the timeout would
				// not bound anything in exactly the outage it is set for.
				kgo.AllowIdempotentProduceCancellation(),
				kgo.ProducerLinger(5 * time.Millisecond),
			}, kopts...)...)
			if err != nil {
				return &exitError{code: 2, msg: fmt.Sprintf("cannot create kafka client for --brokers %q: %v", c.String("brokers"), err)}
			}
			defer cl.Close()
			topic := c.String("topic")
			var shownFailures, hiddenFailures int64
			opts := producers.LinesOptions{
				OnReject: func(r producers.Rejection) {
					if r.Delivery {
						if shownFailures >= maxShownFailures {
							hiddenFailures++
							return
						}
						shownFailures++
					}
					fmt.Fprintf(c.App.ErrWriter, "%s:%d: %v\n", name, r.Line, r.Err)
				},
			}
			if inFile != os.Stdin || isTerminal(os.Stderr) {
				// Progress for long runs only: the first report comes after
				// progressEvery, so short runs (and tests) stay quiet.
				opts.OnProgress = func(p producers.LinesReport) {
					fmt.Fprintf(c.App.ErrWriter, "%s: read %d lines, sent %d, rejected %d, failed %d so far\n",
						name, p.Read, p.Sent, p.Rejected, p.Failed)
				}
				opts.ProgressEvery = progressEvery
			}
			// The aggregators' bounds: such events are sent (a backfill
			// group may take them), and counted for a warning.
			maxAge, maxFuture := c.Duration("max-event-age"), c.Duration("max-future")
			var old, ahead, firstOld, firstAhead int
			opts.OnEvent = func(line int, e *schemas.Event) {
				now := time.Now()
				if maxAge > 0 && now.Sub(e.Timestamp) > maxAge {
					if old++; old == 1 {
						firstOld = line
					}
				} else if maxFuture > 0 && e.Timestamp.Sub(now) > maxFuture {
					if ahead++; ahead == 1 {
						firstAhead = line
					}
				}
			}
			rep, err := producers.SendLinesWith(c.Context, cl, topic, in, opts)
			if old > 0 {
				fmt.Fprintf(c.App.ErrWriter, "%s: warning: %d event(s) older than --max-event-age %s (the first on line %d): the aggregators send them to their DLQ as too_old unless their --max-event-age is longer\n",
					name, old, maxAge, firstOld)
			}
			if ahead > 0 {
				fmt.Fprintf(c.App.ErrWriter, "%s: warning: %d event(s) more than --max-future %s ahead (the first on line %d): the aggregators send them to their DLQ as too_far_in_future (is the clock of what wrote them right?)\n",
					name, ahead, maxFuture, firstAhead)
			}
			if hiddenFailures > 0 {
				fmt.Fprintf(c.App.ErrWriter, "%s: %d more delivery failures not shown\n", name, hiddenFailures)
			}
			fmt.Fprintf(c.App.Writer, "sent %d, rejected %d, failed %d (topic %s)\n", rep.Sent, rep.Rejected, rep.Failed, topic)
			if errors.Is(err, producers.ErrDeliveryStopped) {
				return &exitError{code: 1, msg: fmt.Sprintf(
					"Kafka (--brokers %q) did not acknowledge %d records in a row; stopped after reading %d lines of %s: sent %d, failed %d, rejected %d",
					c.String("brokers"), producers.DefaultMaxConsecutiveFailures, rep.Read, name, rep.Sent, rep.Failed, rep.Rejected)}
			}
			if err != nil && gzipped && c.Context.Err() == nil {
				return fmt.Errorf("%s (gzip, possibly corrupt or truncated): %w", name, err)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if rep.Rejected > 0 || rep.Failed > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
}

// maxShownFailures caps the per-line delivery errors printed; the rest are
// counted in one line.
const maxShownFailures = 20

// progressEvery is how often produce reports progress on a long run.
const progressEvery = 5 * time.Second

// maybeGunzip returns r, or a gzip reader over it when it starts with the
// gzip magic bytes.
func maybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("corrupt gzip: %w", err)
		}
		return gz, nil
	}
	return br, nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
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
