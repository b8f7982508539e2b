package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/consumers"
	"github.com/costpipe/costpipe/render"
)

// dlqCommand is `costpipe dlq`: read, replay and unspool the dead-letter
// queue.
func dlqCommand() *cli.Command {
	return &cli.Command{
		Name:  "dlq",
		Usage: "read the dead-letter queue, send its records back once their cause is fixed, re-produce the local spool",
		Description: `The aggregator sends every record it cannot count to the DLQ topic (--topic + ".dlq";
costpipe.events.dlq for the default topic): the original record, unchanged, with headers
naming the reason (invalid, invalid_rows, too_old, too_far_in_future,
unsupported_content), the error and where it came from. Records the DLQ topic itself
refused for good are in the aggregator's --dlq-spool directory.

  costpipe dlq read                              what the DLQ holds, by reason, and its records
  costpipe dlq read --format values > bad.jsonl  the original events, one per line, to correct
  costpipe produce fixed.jsonl                   send corrected events (they are new records)
  costpipe dlq replay --reason too_far_in_future send records back unchanged once the cause is gone
  costpipe dlq unspool --dlq-spool DIR           re-produce spooled records to the DLQ topic`,
		Subcommands: []*cli.Command{dlqReadCommand(), dlqReplayCommand(), dlqUnspoolCommand()},
	}
}

// dlqReasonsUsage lists the reasons for --reason's help.
const dlqReasonsUsage = "invalid, invalid_rows, too_old, too_far_in_future, unsupported_content"

func dlqReadCommand() *cli.Command {
	return &cli.Command{
		Name:  "read",
		Usage: "print the records of the DLQ topic, with a count by reason",
		Description: `Reads the DLQ topic (of --topic) from its start, or from --since ago, to its end as of
the start of the command, and prints each record (--format table: when, reason, error,
source record, the start of the value), then the count by reason on stderr. It joins no
consumer group and commits nothing.

--format json prints one JSON object per record: dlq and source positions, reason,
error, rows (of an Arrow batch), truncated, key, headers, and value as text (value_base64
when it is not UTF-8 text). --format values prints the original values alone, one per
line (JSON events as produced), for correcting and sending again with costpipe produce;
values that are not one line of text are left out and counted on stderr.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "since", Usage: "read records from this long ago only, a Go `DURATION` or days (2d); default: the whole topic"},
			&cli.StringSliceFlag{Name: "reason", Usage: "only records of this `REASON` (repeat for several): " + dlqReasonsUsage},
			&cli.IntFlag{Name: "limit", Usage: "print at most `N` records (the count by reason covers all); 0: no limit"},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "output `FORMAT`: table, json or values"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return &exitError{code: 2, msg: "dlq read takes no arguments"}
			}
			format := c.String("format")
			if format != "table" && format != "json" && format != "values" {
				return &exitError{code: 2, msg: fmt.Sprintf("invalid --format %q: want table, json or values", format)}
			}
			if c.Int("limit") < 0 {
				return &exitError{code: 2, msg: fmt.Sprintf("invalid --limit %d: want 0 (no limit) or more", c.Int("limit"))}
			}
			reasons, err := dlqReasons(c)
			if err != nil {
				return err
			}
			var since time.Time
			if s := c.String("since"); s != "" {
				d, err := parseSince(s)
				if err != nil {
					return &exitError{code: 2, msg: fmt.Sprintf("invalid --since %q: %v", s, err)}
				}
				since = time.Now().Add(-d)
			}
			base, err := dlqClientOpts(c)
			if err != nil {
				return err
			}
			topic := dlqTopic(c.String("topic"))
			w := bufio.NewWriter(c.App.Writer)
			defer w.Flush()
			counts := map[string]int{}
			printed, notText := 0, 0
			// The table's header goes before its first row, or at the end
			// of an empty read: not above an error (Kafka down).
			headed := false
			header := func() {
				if format == "table" && !headed {
					headed = true
					fmt.Fprintf(w, "%-20s  %-19s  %-22s  %-28s  %s\n", "DLQ RECORD", "TIME (UTC)", "REASON", "SOURCE", "ERROR / VALUE")
				}
			}
			err = consumers.ReadDLQ(c.Context, base, consumers.DLQReadOptions{Topic: topic, Since: since}, func(d consumers.DLQRecord) error {
				if len(reasons) > 0 && !reasons[d.Reason] {
					return nil
				}
				counts[reasonLabel(d.Reason)]++
				if limit := c.Int("limit"); limit > 0 && printed >= limit {
					return nil
				}
				printed++
				switch format {
				case "values":
					if d.Truncated || !oneLineText(d.Value) {
						notText++
						printed--
						return nil
					}
					w.Write(d.Value)
					w.WriteByte('\n')
				case "json":
					b, err := json.Marshal(dlqJSON(d))
					if err != nil {
						return err
					}
					w.Write(b)
					w.WriteByte('\n')
				default:
					header()
					fmt.Fprintf(w, "%-20s  %-19s  %-22s  %-28s  %s\n", fmt.Sprintf("%d/%d", d.Partition, d.Offset),
						d.Timestamp.UTC().Format("2006-01-02 15:04:05"), reasonLabel(d.Reason), d.Source(), oneLine(d.Error, 100))
					fmt.Fprintf(w, "%-20s  %-19s  %-22s  %-28s  %s\n", "", "", "", "", valueHead(d, 100))
				}
				return nil
			})
			w.Flush()
			if errors.Is(err, consumers.ErrNoDLQTopic) {
				return &exitError{code: 1, msg: fmt.Sprintf("%v: no record was ever sent to the DLQ of --topic %s, or the aggregators cannot create it and spool their DLQ records (see their --dlq-spool directory and costpipe dlq unspool), or --brokers %q is another cluster", err, c.String("topic"), c.String("brokers"))}
			}
			if err != nil {
				return fmt.Errorf("reading %s: %w", topic, err)
			}
			header()
			w.Flush()
			fmt.Fprintf(c.App.ErrWriter, "%s: %s\n", topic, countsLine(counts))
			if notText > 0 {
				fmt.Fprintf(c.App.ErrWriter, "%d record(s) left out: their value is not one line of text, or the DLQ holds it without its value (use --format json)\n", notText)
			}
			return nil
		},
	}
}

func dlqReplayCommand() *cli.Command {
	return &cli.Command{
		Name:  "replay",
		Usage: "send DLQ records back to the events topic, unchanged, once their cause is fixed",
		Description: `Sends the records of the DLQ topic back to --to (default: --topic) as first produced:
same key, value and headers (without the costpipe-dlq-* ones), plus costpipe-replayed-from
naming the DLQ record. For records that were right but refused for a cause since gone:
too_far_in_future after a producer's clock was fixed, unsupported_content after an
upgrade, too_old into a backfill group's topic with a longer --max-event-age. An event
that is itself wrong must be corrected: dlq read --format values, fix, costpipe produce.

Each reason has its own cursor, kept in the compacted topic --cursor-topic (created when
missing; default the DLQ topic's name followed by .replay-cursors) and as the committed
offsets of consumer group PREFIX.REASON (--group is the prefix; the groups are never
joined) on the DLQ topic; a replay starts from the greater of the two, so a cursor
survives Kafka dropping a group's offsets a week after its last commit. A replay sends
the records of each --reason past its cursor, up to the end of the topic as of its
start, and moves the cursors past each batch once Kafka acknowledged it: run again, with
any reasons, it sends no record twice; stopped, it resumes (only a stop between Kafka's
acknowledgement of a batch and the cursor write after it sends that batch again). --to must
exist: a replay creates no topic but its cursor topic. invalid_rows (an Arrow batch with invalid rows) cannot
be replayed: its valid rows were counted, and would be again; correct the rows its
costpipe-dlq-rows header lists and produce them. Records the DLQ holds without their
value (too large for it) cannot be replayed either; their source positions are printed.
--dry-run counts what would be sent.`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "reason", Usage: "replay the records of this `REASON` (required; repeat for several): invalid, too_old, too_far_in_future, unsupported_content"},
			&cli.StringFlag{Name: "to", Usage: "the `TOPIC` to send to, which must exist; default --topic"},
			&cli.StringFlag{Name: "group", Value: "costpipe-dlq-replay", Usage: "`PREFIX` of the consumer groups, PREFIX.REASON, whose offsets on the DLQ topic record what each reason's replays sent"},
			&cli.StringFlag{Name: "cursor-topic", Usage: "the compacted `TOPIC` that keeps the replay cursors for good (created when missing); default the DLQ topic's name followed by " + consumers.CursorTopicSuffix},
			&cli.BoolFlag{Name: "dry-run", Usage: "count what would be sent; send and commit nothing"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return &exitError{code: 2, msg: "dlq replay takes no arguments"}
			}
			reasons, err := dlqReasons(c)
			if err != nil {
				return err
			}
			if c.String("group") == "" {
				return &exitError{code: 2, msg: "invalid --group: empty"}
			}
			base, err := dlqClientOpts(c)
			if err != nil {
				return err
			}
			topic := dlqTopic(c.String("topic"))
			to := c.String("to")
			if to == "" {
				to = c.String("topic")
			}
			o := consumers.DLQReplayOptions{Topic: topic, To: to, Group: c.String("group"), CursorTopic: c.String("cursor-topic"), DryRun: c.Bool("dry-run")}
			for r := range reasons {
				o.Reasons = append(o.Reasons, r)
			}
			if len(o.Reasons) == 0 {
				return &exitError{code: 2, msg: "dlq replay needs --reason: name the reasons whose cause is gone (" + strings.Join(consumers.ReplayReasons, ", ") + ")"}
			}
			sort.Strings(o.Reasons)
			last := time.Now()
			o.Progress = func(st consumers.DLQReplayStats) {
				if time.Since(last) >= progressEvery {
					last = time.Now()
					fmt.Fprintf(c.App.ErrWriter, "sent %d so far\n", consumers.Total(st.Sent))
				}
			}
			st, err := consumers.ReplayDLQ(c.Context, base, o)
			verb := "sent"
			if o.DryRun {
				verb = "would send"
			}
			fmt.Fprintf(c.App.Writer, "%s: %s %d record(s) to %s (%s)\n", topic, verb, consumers.Total(st.Sent), to, countsLine(st.Sent))
			if n := consumers.Total(st.Earlier); n > 0 {
				fmt.Fprintf(c.App.Writer, "left %d sent by an earlier replay (%s)\n", n, countsLine(st.Earlier))
			}
			if n := consumers.Total(st.Other); n > 0 {
				fmt.Fprintf(c.App.Writer, "left %d of other reasons (%s)\n", n, countsLine(st.Other))
			}
			if n := st.Sent["invalid"]; n > 0 {
				fmt.Fprintf(c.App.Writer, "note: %d invalid record(s) went back unchanged: an aggregator of this version refuses them again unless it now accepts them; correct them instead (dlq read --format values, then costpipe produce)\n", n)
			}
			if n := consumers.Total(st.NoValue); n > 0 {
				fmt.Fprintf(c.App.Writer, "cannot replay %d held without their value (too large for the DLQ topic); their source records: %s\n",
					n, strings.Join(st.NoValueSources, ", "))
			}
			if len(st.NoCursor) > 0 {
				cursorTopic := o.CursorTopic
				if cursorTopic == "" {
					cursorTopic = topic + consumers.CursorTopicSuffix
				}
				fmt.Fprintf(c.App.Writer, "note: no cursor for %s (in %s or as the offsets of groups %s.REASON): replayed from the start of %s. That is right for a first replay; "+
					"if these reasons were replayed before (with another --group or --cursor-topic, or by a costpipe without the cursor topic whose group offsets Kafka has since dropped), the records of those replays went again\n",
					strings.Join(st.NoCursor, ", "), cursorTopic, o.Group, topic)
			}
			for _, w := range st.Warnings {
				fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
			}
			if errors.Is(err, consumers.ErrNoDLQTopic) {
				return &exitError{code: 1, msg: fmt.Sprintf("%v: nothing to replay", err)}
			}
			if errors.Is(err, consumers.ErrNotReplayable) {
				return &exitError{code: 2, msg: err.Error()}
			}
			if err != nil {
				return fmt.Errorf("replay stopped (run it again to resume): %w", err)
			}
			return nil
		},
	}
}

func dlqUnspoolCommand() *cli.Command {
	return &cli.Command{
		Name:  "unspool",
		Usage: "re-produce the records of an aggregator's --dlq-spool directory to the DLQ topic",
		Description: `An aggregator writes a DLQ record that Kafka refused for good (the DLQ topic missing,
a record too large even without its value, an ACL) to its --dlq-spool directory
(dlq-YYYYMMDD.jsonl), so that consumption goes on and nothing is lost
(costpipe_dlq_spool_bytes says how much waits). Once Kafka takes them, unspool sends
each file's records to the topic each names, as the aggregator would have, oldest file
first, then moves the file to DIR/sent/ (remove it from there when you like). It can run
while the aggregator does (on Unix systems: elsewhere stop the aggregator first): a file
is taken under a lock, and the aggregator starts a new one; one unspool works on a directory at a time. A file is read through first: a line
that cannot be read leaves the file unsent (named with the line number). A record the
topic refuses as too large goes without its value (header costpipe-dlq-truncated), as
the aggregator does. A file that cannot be sent stays (renamed *.unspooling-N), the
others are still sent, and the next run sends it again (the records Kafka took the first
time then reach the DLQ topic twice). Exit status 1 when a file was left.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dlq-spool", Value: consumers.DefaultOptions().DLQSpoolDir, EnvVars: []string{"COSTPIPE_DLQ_SPOOL"},
				Usage: "the aggregator's spool `DIR`", TakesFile: true},
			&cli.BoolFlag{Name: "dry-run", Usage: "count the spooled records; send and move nothing"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return &exitError{code: 2, msg: "dlq unspool takes no arguments (the directory is --dlq-spool)"}
			}
			dir := c.String("dlq-spool")
			if dir == "" {
				return &exitError{code: 2, msg: "invalid --dlq-spool: empty"}
			}
			base, err := dlqClientOpts(c)
			if err != nil {
				return err
			}
			last := time.Now()
			progress := func(sent int) {
				if time.Since(last) >= progressEvery {
					last = time.Now()
					fmt.Fprintf(c.App.ErrWriter, "sent %d so far\n", sent)
				}
			}
			st, err := consumers.UnspoolDLQ(c.Context, base, consumers.DLQUnspoolOptions{Dir: dir, DryRun: c.Bool("dry-run"), Progress: progress})
			verb := "sent"
			if c.Bool("dry-run") {
				verb = "would send"
			}
			fmt.Fprintf(c.App.Writer, "%s: %s %d record(s) of %d file(s) (%s)\n", dir, verb, consumers.Total(st.Records), len(st.Files), countsLine(st.Records))
			if st.Truncated > 0 {
				fmt.Fprintf(c.App.Writer, "%d of them without their value: too large for the topic (header %s)\n", st.Truncated, consumers.HeaderDLQTruncated)
			}
			if len(st.Cut) > 0 {
				fmt.Fprintf(c.App.Writer, "skipped %d line(s) cut short by an aggregator killed while appending (after its restart it sent their records again, to the DLQ topic or the spool): %s\n",
					len(st.Cut), strings.Join(st.Cut, ", "))
			}
			if len(st.Failed) > 0 {
				fmt.Fprintf(c.App.Writer, "%d file(s) not sent, left in %s: %s\n", len(st.Failed), dir, strings.Join(st.Failed, ", "))
			}
			if errors.Is(err, consumers.ErrUnspoolRunning) {
				return &exitError{code: 1, msg: err.Error()}
			}
			return err
		},
	}
}

// dlqReasons returns the --reason values as a set, each checked.
func dlqReasons(c *cli.Context) (map[string]bool, error) {
	known := map[string]bool{}
	for _, r := range strings.Split(dlqReasonsUsage, ", ") {
		known[r] = true
	}
	out := map[string]bool{}
	for _, r := range c.StringSlice("reason") {
		for _, r := range splitList(r) {
			if !known[r] {
				return nil, &exitError{code: 2, msg: fmt.Sprintf("invalid --reason %q: want one of %s", r, dlqReasonsUsage)}
			}
			out[r] = true
		}
	}
	return out, nil
}

// dlqClientOpts returns the Kafka client options of c: seed brokers and
// security.
func dlqClientOpts(c *cli.Context) ([]kgo.Opt, error) {
	kopts, err := kafkaClientOpts(c)
	if err != nil {
		return nil, err
	}
	return append([]kgo.Opt{kgo.SeedBrokers(splitList(c.String("brokers"))...)}, kopts...), nil
}

// reasonLabel shows a record without a reason header.
func reasonLabel(r string) string {
	if r == "" {
		return "(none)"
	}
	return r
}

// countsLine renders counts by reason, largest first: "invalid 12, too_old 3".
func countsLine(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + render.Thousands(uint64(m[k]))
	}
	return strings.Join(parts, ", ")
}

// oneLineText reports whether b is valid UTF-8 text without line breaks or
// other control characters (tab allowed).
func oneLineText(b []byte) bool {
	if len(b) == 0 || !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// oneLine shows s on one line of at most n runes, control characters
// escaped (an error may quote the record).
func oneLine(s string, n int) string {
	q := s
	if !oneLineText([]byte(s)) {
		q = strconv.Quote(s)
		q = q[1 : len(q)-1]
	}
	if utf8.RuneCountInString(q) > n {
		r := []rune(q)
		q = string(r[:n-1]) + "…"
	}
	return q
}

// valueHead shows the start of a DLQ record's value.
func valueHead(d consumers.DLQRecord, n int) string {
	switch {
	case d.Truncated:
		return "(value not held: too large for the DLQ topic)"
	case len(d.Value) == 0:
		return "(empty value)"
	case utf8.Valid(d.Value):
		return oneLine(string(d.Value), n)
	default:
		return fmt.Sprintf("(%d bytes, not text)", len(d.Value))
	}
}

// dlqJSONRecord is a DLQ record in `dlq read --format json`.
type dlqJSONRecord struct {
	DLQ         string          `json:"dlq"`
	Time        time.Time       `json:"time"`
	Reason      string          `json:"reason"`
	Error       string          `json:"error,omitempty"`
	Rows        string          `json:"rows,omitempty"`
	Source      string          `json:"source,omitempty"`
	Truncated   bool            `json:"truncated,omitempty"`
	Key         *string         `json:"key,omitempty"`
	KeyBase64   []byte          `json:"key_base64,omitempty"`
	Headers     []dlqJSONHeader `json:"headers,omitempty"`
	Value       *string         `json:"value,omitempty"`
	ValueBase64 []byte          `json:"value_base64,omitempty"`
}

type dlqJSONHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func dlqJSON(d consumers.DLQRecord) dlqJSONRecord {
	out := dlqJSONRecord{DLQ: d.Where(), Time: d.Timestamp.UTC(), Reason: d.Reason, Error: d.Error, Rows: d.Rows,
		Source: d.Source(), Truncated: d.Truncated}
	text := func(b []byte) (*string, []byte) {
		if b == nil {
			return nil, nil
		}
		if utf8.Valid(b) {
			s := string(b)
			return &s, nil
		}
		return nil, b
	}
	out.Key, out.KeyBase64 = text(d.Key)
	out.Value, out.ValueBase64 = text(d.Value)
	for _, h := range d.Headers {
		out.Headers = append(out.Headers, dlqJSONHeader{Key: h.Key, Value: string(h.Value)})
	}
	return out
}
