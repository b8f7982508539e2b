package consumers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// HeaderReplayedFrom is set on a record that `costpipe dlq replay` sent back
// to the events topic: the DLQ record it came from, "TOPIC/PARTITION/OFFSET".
const HeaderReplayedFrom = "costpipe-replayed-from"

// DLQRecord is a record of the DLQ topic as the DLQ tools read it: where it
// is, the original record (key, value, its own headers) and what the
// aggregator said about it (the costpipe-dlq-* headers).
type DLQRecord struct {
	// Topic, Partition, Offset and Timestamp place the record in the DLQ
	// topic.
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	// Key and Value are the original record's; Value is empty when the DLQ
	// topic refused it as too large (Truncated).
	Key, Value []byte
	// Headers are the original record's headers, without the costpipe-dlq-*
	// ones.
	Headers []kgo.RecordHeader
	// Reason is why the aggregator refused it (invalid, invalid_rows,
	// too_old, too_far_in_future, unsupported_content), Error its message.
	Reason, Error string
	// Rows lists the invalid rows of an Arrow batch (invalid_rows).
	Rows string
	// Source* place the original record in the events topic.
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	// Truncated is set when the DLQ holds the record without its value.
	Truncated bool
}

// ParseDLQRecord splits r, a record of the DLQ topic, into the original
// record and the aggregator's headers. A record without a reason header
// (not written by an aggregator) keeps all its headers and an empty Reason.
func ParseDLQRecord(r *kgo.Record) DLQRecord {
	d := DLQRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp,
		Key: r.Key, Value: r.Value, SourcePartition: -1, SourceOffset: -1}
	for _, h := range r.Headers {
		if !strings.HasPrefix(h.Key, "costpipe-dlq-") {
			d.Headers = append(d.Headers, h)
			continue
		}
		v := string(h.Value)
		switch h.Key {
		case HeaderDLQReason:
			d.Reason = v
		case HeaderDLQError:
			d.Error = v
		case HeaderDLQRows:
			d.Rows = v
		case HeaderDLQSourceTopic:
			d.SourceTopic = v
		case HeaderDLQSourcePartition:
			if n, err := strconv.ParseInt(v, 10, 32); err == nil {
				d.SourcePartition = int32(n)
			}
		case HeaderDLQSourceOffset:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				d.SourceOffset = n
			}
		case HeaderDLQTruncated:
			d.Truncated = true
		default:
			d.Headers = append(d.Headers, h) // a header of a later version: kept
		}
	}
	return d
}

// Where returns "TOPIC/PARTITION/OFFSET" of the record in the DLQ topic.
func (d *DLQRecord) Where() string {
	return fmt.Sprintf("%s/%d/%d", d.Topic, d.Partition, d.Offset)
}

// Source returns "TOPIC/PARTITION/OFFSET" of the original record, or "" when
// the DLQ record does not say.
func (d *DLQRecord) Source() string {
	if d.SourceTopic == "" {
		return ""
	}
	return fmt.Sprintf("%s/%d/%d", d.SourceTopic, d.SourcePartition, d.SourceOffset)
}

// dlqRange is what a DLQ tool reads of one partition: [from, to).
type dlqRange struct{ from, to int64 }

// ErrNoDLQTopic is returned when the DLQ topic does not exist.
var ErrNoDLQTopic = errors.New("the DLQ topic does not exist")

// noTopic returns ErrNoDLQTopic naming topic when err says it does not
// exist, else err after what.
func noTopic(err error, topic, what string) error {
	if errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID) {
		return fmt.Errorf("%w: %s", ErrNoDLQTopic, topic)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// dlqRanges returns, for each partition of topic, the offsets from start
// (or the first at or after since, when set) to the end of the log as of
// now: a tool reads what the topic held when it started, not the records
// that arrive while it runs (a replayed record refused again, say).
func dlqRanges(ctx context.Context, adm *kadm.Client, topic string, since time.Time, start map[int32]int64) (map[int32]dlqRange, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, noTopic(err, topic, "cannot list the end offsets of "+topic)
	}
	if _, ok := ends[topic]; !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoDLQTopic, topic)
	}
	var firsts kadm.ListedOffsets
	if since.IsZero() {
		firsts, err = adm.ListStartOffsets(ctx, topic)
	} else {
		firsts, err = adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), topic)
	}
	if err == nil {
		err = firsts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list the start offsets of %s: %w", topic, err)
	}
	out := map[int32]dlqRange{}
	for p, end := range ends[topic] {
		from := int64(0)
		if f, ok := firsts[topic][p]; ok {
			from = f.Offset
		}
		if s, ok := start[p]; ok && s > from {
			from = s
		}
		if from < 0 || from > end.Offset {
			from = end.Offset
		}
		out[p] = dlqRange{from, end.Offset}
	}
	return out, nil
}

// dlqQuiet is how long readDLQ waits for the next record of a range before
// it says so: a partition whose leader is away, or offsets with no record
// (a compacted or transactional topic; the aggregator writes neither).
const dlqQuiet = 30 * time.Second

// readDLQ reads the ranges of topic in offset order within each partition,
// calling fn for each batch of one partition's records (never past the
// range's end). A partition read to its end is paused. It returns when
// every range is read, fn fails, no record of a range came for dlqQuiet, or
// ctx ends.
func readDLQ(ctx context.Context, base []kgo.Opt, topic string, ranges map[int32]dlqRange, fn func(p int32, recs []*kgo.Record) error) error {
	offs := map[int32]kgo.Offset{}
	pos := map[int32]int64{} // the next offset to read, of partitions not done
	for p, r := range ranges {
		if r.from < r.to {
			offs[p] = kgo.NewOffset().At(r.from)
			pos[p] = r.from
		}
	}
	if len(offs) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), base...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
	)...)
	if err != nil {
		return fmt.Errorf("cannot create a Kafka client to read %s: %w", topic, err)
	}
	defer cl.Close()
	progress := time.Now()
	for len(pos) > 0 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("cannot read %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var batchErr error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			at, ok := pos[fp.Partition]
			if batchErr != nil || !ok || len(fp.Records) == 0 {
				return
			}
			end := ranges[fp.Partition].to
			recs := fp.Records
			n := sort.Search(len(recs), func(i int) bool { return recs[i].Offset >= end })
			if n > 0 {
				if batchErr = fn(fp.Partition, recs[:n]); batchErr != nil {
					return
				}
				at = recs[n-1].Offset + 1
				progress = time.Now()
			}
			if n < len(recs) {
				at = end
			}
			if at >= end {
				delete(pos, fp.Partition)
				// Records that arrive meanwhile are not this run's.
				cl.PauseFetchPartitions(map[string][]int32{topic: {fp.Partition}})
			} else {
				pos[fp.Partition] = at
			}
		})
		if batchErr != nil {
			return batchErr
		}
		if len(pos) > 0 && time.Since(progress) > dlqQuiet {
			var stuck []string
			for p, at := range pos {
				stuck = append(stuck, fmt.Sprintf("partition %d at offset %d of %d", p, at, ranges[p].to))
			}
			sort.Strings(stuck)
			return fmt.Errorf("no record came from %s for %s although the log holds more (%s)", topic, dlqQuiet, strings.Join(stuck, ", "))
		}
	}
	return nil
}

// DLQReadOptions say what ReadDLQ reads.
type DLQReadOptions struct {
	// Topic is the DLQ topic.
	Topic string
	// Since, when set, starts each partition at its first record at or
	// after this time; otherwise at the start of the log.
	Since time.Time
}

// ReadDLQ calls fn for every record of the DLQ topic from o.Since to the end
// of each partition as of the call, partition by partition, in offset
// order. base are the client options (seed brokers, TLS, SASL).
func ReadDLQ(ctx context.Context, base []kgo.Opt, o DLQReadOptions, fn func(DLQRecord) error) error {
	adm, err := admin(base)
	if err != nil {
		return err
	}
	defer adm.Close()
	ranges, err := dlqRanges(ctx, adm, o.Topic, o.Since, nil)
	if err != nil {
		return err
	}
	return readDLQ(ctx, base, o.Topic, ranges, func(_ int32, recs []*kgo.Record) error {
		for _, r := range recs {
			if err := fn(ParseDLQRecord(r)); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReplayReasons are the DLQ reasons whose records ReplayDLQ can send back:
// all but invalid_rows, an Arrow batch whose valid rows were counted (sent
// back whole, they would be counted twice).
var ReplayReasons = []string{reasonInvalid, reasonTooOld, reasonFuture, reasonContentType}

// ErrNotReplayable is returned for a reason ReplayDLQ cannot send back.
var ErrNotReplayable = errors.New("cannot be replayed")

// DLQReplayOptions say what ReplayDLQ sends back.
type DLQReplayOptions struct {
	// Topic is the DLQ topic, To the topic the records go back to, which
	// must exist (a mistyped name would swallow them).
	Topic, To string
	// Each reason has a cursor on each partition of Topic: the offset up
	// to where that reason was replayed. A replay sends a record only past
	// its reason's cursor and moves the cursor past what Kafka
	// acknowledged, so no record is sent twice by two runs, whatever
	// reasons each names. The cursors are kept in CursorTopic and as the
	// committed offsets of the groups GROUP.REASON (never joined: no
	// member is needed); a replay starts from the greater of the two.
	Group string
	// CursorTopic keeps the cursors for good (a compacted topic, created
	// when missing), where Kafka drops a group's offsets a week (its
	// offsets.retention.minutes) after the last replay. Default Topic
	// followed by CursorTopicSuffix.
	CursorTopic string
	// Reasons are the reasons whose records go back, at least one of
	// ReplayReasons.
	Reasons []string
	// DryRun reads and counts, sends and commits nothing.
	DryRun bool
	// Progress, when set, is called after each batch.
	Progress func(DLQReplayStats)
}

// DLQReplayStats counts what a replay did, by reason.
type DLQReplayStats struct {
	// Sent are the records Kafka acknowledged on To (with DryRun, those
	// that would be sent); Earlier those an earlier replay sent; NoValue
	// those the DLQ holds without their value (too large for it), which
	// cannot be replayed; Other the records of reasons not asked for.
	Sent, Earlier, NoValue, Other map[string]int
	// NoValueSources names the source records of NoValue (at most 100),
	// for finding them in the events topic.
	NoValueSources []string
	// NoCursor are the reasons with no cursor, neither in the cursor topic
	// nor as their group's offsets, replayed from the start of the DLQ
	// topic: a first replay (or one whose cursor topic was deleted).
	NoCursor []string
	// Warnings are what the replay could not do but went on without: a
	// group's offsets it could not commit after the cursor topic took the
	// same cursor (a missing ACL on the group, say), a cursor topic whose
	// configuration it could not read, a stored cursor it ignored.
	Warnings []string
}

func count(m *map[string]int, reason string, n int) {
	if *m == nil {
		*m = map[string]int{}
	}
	if reason == "" {
		reason = "(none)"
	}
	(*m)[reason] += n
}

// Total sums a count map of the stats.
func Total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// ReplayDLQ sends the records of o.Reasons in the DLQ topic back to o.To as
// they were first produced (key, value, the original headers, plus
// HeaderReplayedFrom), from each reason's cursor (o.Group) to the end
// of each partition as of the call. Each batch is acknowledged by Kafka
// before the cursors move past it: a replay that stops (an error,
// SIGTERM, a crash) resumes where it stopped, and only a stop between
// Kafka's acknowledgement of a batch and the cursor write after it sends
// that batch again.
func ReplayDLQ(ctx context.Context, base []kgo.Opt, o DLQReplayOptions) (DLQReplayStats, error) {
	var st DLQReplayStats
	if o.Topic == "" || o.To == "" || o.Group == "" {
		return st, errors.New("replay needs the DLQ topic, the topic to send to and a group")
	}
	if o.Topic == o.To {
		return st, fmt.Errorf("cannot replay %s into itself", o.Topic)
	}
	if len(o.Reasons) == 0 {
		return st, fmt.Errorf("name the reasons to replay (one or more of %s)", strings.Join(ReplayReasons, ", "))
	}
	want := map[string]bool{}
	for _, r := range o.Reasons {
		if r == reasonInvalidRows {
			return st, fmt.Errorf("%s records %w: an Arrow batch with invalid rows is in the DLQ whole, but its valid rows were counted; sent back, they would be counted twice. Correct the rows its %s header lists and produce them", r, ErrNotReplayable, HeaderDLQRows)
		}
		if !slices.Contains(ReplayReasons, r) {
			return st, fmt.Errorf("unknown reason %q: want one of %s", r, strings.Join(ReplayReasons, ", "))
		}
		want[r] = true
	}
	if o.CursorTopic == "" {
		o.CursorTopic = o.Topic + CursorTopicSuffix
	}
	if o.CursorTopic == o.Topic || o.CursorTopic == o.To {
		return st, fmt.Errorf("the replay cursor topic cannot be %s, which the replay reads or writes", o.CursorTopic)
	}
	adm, err := admin(base)
	if err != nil {
		return st, err
	}
	defer adm.Close()
	if !o.DryRun {
		if err := topicExists(ctx, adm, o.To); err != nil {
			return st, err
		}
	}
	// Before anything is created: a DLQ topic that does not exist (a
	// mistyped --topic) has nothing to replay.
	topicID, err := dlqTopicID(ctx, adm, o.Topic)
	if err != nil {
		return st, err
	}
	saved, err := loadCursors(ctx, base, adm, o.CursorTopic, o.Topic, topicID)
	if err != nil {
		return st, err
	}
	if !o.DryRun {
		warn, err := ensureCursorTopic(ctx, adm, o.CursorTopic, saved.exists)
		if err != nil {
			return st, err
		}
		if warn != "" {
			st.Warnings = append(st.Warnings, warn)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, o.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return st, noTopic(err, o.Topic, "cannot list the end offsets of "+o.Topic)
	}
	// cursors[reason][partition]: the next offset of that reason to send
	// (none: from the start of the log), the greater of the group's
	// offset and the cursor topic's.
	cursors := map[string]map[int32]int64{}
	for r := range want {
		group := o.Group + "." + r
		committed, err := adm.FetchOffsetsForTopics(ctx, group, o.Topic)
		if err == nil {
			err = committed.Error()
		}
		if errors.Is(err, kerr.GroupIDNotFound) {
			committed, err = nil, nil // the first replay of this reason
		}
		if err != nil {
			return st, noTopic(err, o.Topic, fmt.Sprintf("cannot read the offsets of group %s on %s", group, o.Topic))
		}
		cursors[r] = map[int32]int64{}
		committed.Each(func(c kadm.OffsetResponse) {
			if c.Topic == o.Topic && c.At >= 0 {
				cursors[r][c.Partition] = c.At
			}
		})
		for p, next := range saved.next[group] {
			// Past the end of the log: a cursor of this topic's name
			// before it was deleted and created again, on a broker
			// without topic IDs.
			if end, ok := ends.Lookup(o.Topic, p); ok && next > end.Offset {
				st.Warnings = append(st.Warnings, fmt.Sprintf("ignored the cursor of group %s on %s partition %d, offset %d, past the end of the partition (%d): the topic was deleted and created again?",
					group, o.Topic, p, next, end.Offset))
				continue
			}
			if c, ok := cursors[r][p]; !ok || next > c {
				cursors[r][p] = next
			}
		}
		if len(cursors[r]) == 0 {
			st.NoCursor = append(st.NoCursor, r)
		}
	}
	slices.Sort(st.NoCursor)
	// Each partition is read from the least cursor of its reasons.
	start := map[int32]int64{}
	for p := range cursors[o.Reasons[0]] {
		least := int64(-1)
		for r := range want {
			c, ok := cursors[r][p]
			if !ok {
				least = 0
				break
			}
			if least < 0 || c < least {
				least = c
			}
		}
		start[p] = least
	}
	ranges, err := dlqRanges(ctx, adm, o.Topic, time.Time{}, start)
	if err != nil {
		return st, err
	}
	var pr *kgo.Client
	if !o.DryRun {
		if pr, err = toolProducer(base, kgo.RecordPartitioner(replayPartitioner())); err != nil {
			return st, fmt.Errorf("cannot create a Kafka client to send to %s: %w", o.To, err)
		}
		defer pr.Close()
		// The cursors only the groups' offsets hold go to the cursor topic
		// before anything is sent: a partition with nothing new to replay
		// would otherwise keep its cursor only there, until Kafka drops
		// it. It also finds out that the cursor topic takes writes.
		var seed []cursorRecord
		now := time.Now().UTC()
		for _, r := range o.Reasons {
			group := o.Group + "." + r
			for p, c := range cursors[r] {
				if s, ok := saved.next[group][p]; !ok || s < c {
					seed = append(seed, cursorRecord{Topic: o.Topic, TopicID: topicID, Group: group, Partition: p, Next: c, At: now})
				}
			}
		}
		if err := saveCursors(ctx, pr, o.CursorTopic, seed); err != nil {
			return st, fmt.Errorf("%w (nothing was sent)", err)
		}
	}
	var mu sync.Mutex // guards st.Sent, sendErr and done, written by produce callbacks
	groupWarned := false
	progress := func() error {
		if o.Progress != nil {
			mu.Lock()
			o.Progress(st)
			mu.Unlock()
		}
		return nil
	}
	err = readDLQ(ctx, base, o.Topic, ranges, func(p int32, recs []*kgo.Record) error {
		var sendErr error
		// done[i]: recs[i] needs nothing more (acknowledged, or not sent).
		done := make([]bool, len(recs))
		for i, r := range recs {
			d := ParseDLQRecord(r)
			switch {
			case !want[d.Reason]:
				count(&st.Other, d.Reason, 1)
				done[i] = true
				continue
			case d.Offset < cursors[d.Reason][p]:
				count(&st.Earlier, d.Reason, 1)
				done[i] = true
				continue
			case d.Truncated:
				count(&st.NoValue, d.Reason, 1)
				if len(st.NoValueSources) < 100 {
					st.NoValueSources = append(st.NoValueSources, d.Source())
				}
				done[i] = true
				continue
			}
			if o.DryRun {
				count(&st.Sent, d.Reason, 1)
				done[i] = true
				continue
			}
			hs := append(append([]kgo.RecordHeader(nil), d.Headers...), kgo.RecordHeader{Key: HeaderReplayedFrom, Value: []byte(d.Where())})
			reason := d.Reason
			// A record without a key (an Arrow batch: its events' key's
			// partition) goes back to its source partition (replayPartitioner).
			out := &kgo.Record{Topic: o.To, Key: d.Key, Value: d.Value, Headers: hs, Partition: d.SourcePartition}
			pr.Produce(ctx, out, func(_ *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if sendErr == nil {
						sendErr = err
					}
					return
				}
				done[i] = true
				count(&st.Sent, reason, 1)
			})
		}
		if o.DryRun {
			return progress()
		}
		err := pr.Flush(ctx)
		if err != nil {
			settleBriefly(ctx, pr)
		}
		mu.Lock()
		if err == nil {
			err = sendErr
		}
		// The records up to the first one not acknowledged are sent: the
		// offsets move past them even when the batch failed, so the next
		// run does not send them again.
		acked := ackedPrefix(done)
		mu.Unlock()
		if acked > 0 {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			gerr, cerr := commitReplayed(cctx, adm, pr, o, topicID, want, cursors, p, recs[acked-1].Offset+1)
			cancel()
			if cerr != nil {
				return cerr
			}
			if gerr != nil && !groupWarned {
				groupWarned = true // once: the same cause fails every batch
				mu.Lock()
				st.Warnings = append(st.Warnings, gerr.Error()+"; the cursor topic holds the cursors, so the replay went on")
				mu.Unlock()
			}
		}
		if err != nil {
			if acked > 0 {
				return fmt.Errorf("cannot send to %s (%s partition %d is sent up to offset %d): %w", o.To, o.Topic, p, recs[acked-1].Offset, err)
			}
			return fmt.Errorf("cannot send to %s: %w", o.To, err)
		}
		return progress()
	})
	mu.Lock()
	defer mu.Unlock()
	return st, err
}

// settleBriefly gives the records pr still has in flight, when a send
// stopped (an error, ctx), up to 10 s to be acknowledged or fail, so that
// what Kafka took is known before the tool records how far it got.
func settleBriefly(ctx context.Context, pr *kgo.Client) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	pr.Flush(fctx)
}

// ackedPrefix is how many of the records, in order, need nothing more
// (done: acknowledged, or not to be sent) before the first that does.
func ackedPrefix(done []bool) int {
	n := 0
	for n < len(done) && done[n] {
		n++
	}
	return n
}

// commitReplayed moves the cursors of o's reasons on partition p of the
// DLQ topic to next, where they are behind it: first in the cursor topic
// (through pr), then the groups' offsets. It fails when the cursor topic
// did not take them (after committing the groups' offsets all the same,
// so that a new run resumes there); groupErr is the first group whose
// offsets could not be committed after the cursor topic took them, which
// is no failure.
func commitReplayed(ctx context.Context, adm *kadm.Client, pr *kgo.Client, o DLQReplayOptions, topicID string, want map[string]bool, cursors map[string]map[int32]int64, p int32, next int64) (groupErr, err error) {
	var moved []string
	var cs []cursorRecord
	now := time.Now().UTC()
	for r := range want {
		if next > cursors[r][p] { // else this reason's replay is ahead already
			moved = append(moved, r)
			cs = append(cs, cursorRecord{Topic: o.Topic, TopicID: topicID, Group: o.Group + "." + r, Partition: p, Next: next, At: now})
		}
	}
	if len(cs) == 0 {
		return nil, nil
	}
	saveErr := saveCursors(ctx, pr, o.CursorTopic, cs)
	for _, r := range moved {
		group := o.Group + "." + r
		var offs kadm.Offsets
		offs.Add(kadm.Offset{Topic: o.Topic, Partition: p, At: next, LeaderEpoch: -1})
		resp, err := adm.CommitOffsets(ctx, group, offs)
		if err == nil {
			err = resp.Error()
		}
		switch {
		case err == nil:
			cursors[r][p] = next
		case saveErr != nil:
			return nil, fmt.Errorf("sent %s up to partition %d offset %d, but %w, nor commit that for group %s (a new run sends that batch again): %v", o.Topic, p, next-1, saveErr, group, err)
		case groupErr == nil:
			groupErr = fmt.Errorf("cannot commit the offsets of group %s on %s: %w", group, o.Topic, err)
		}
		if saveErr == nil {
			cursors[r][p] = next
		}
	}
	if saveErr != nil {
		return nil, fmt.Errorf("sent %s up to partition %d offset %d and committed that for the groups, but %w: a new run resumes there, but those offsets expire a week after the last replay; let the replay write to the cursor topic, or name another with --cursor-topic", o.Topic, p, next-1, saveErr)
	}
	return groupErr, nil
}

// topicExists returns nil when topic exists, else an error that says so.
func topicExists(ctx context.Context, adm *kadm.Client, topic string) error {
	ts, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("cannot look up topic %s: %w", topic, err)
	}
	if d, ok := ts[topic]; !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("topic %s does not exist: create it first (a replay creates no topic, so that a mistyped name does not take the records)", topic)
	} else if d.Err != nil {
		return fmt.Errorf("cannot look up topic %s: %w", topic, d.Err)
	}
	return nil
}

// toolProducer is the producing client of the DLQ tools: a record not
// acknowledged within a minute fails (franz-go would otherwise retry it
// for as long as the broker is away, and the tool would never end).
// extra are options of one tool.
func toolProducer(base []kgo.Opt, extra ...kgo.Opt) (*kgo.Client, error) {
	opts := append(append([]kgo.Opt(nil), base...),
		kgo.RecordDeliveryTimeout(time.Minute),
		kgo.AllowIdempotentProduceCancellation(),
	)
	return kgo.NewClient(append(opts, extra...)...)
}

// replayPartitioner places a replayed record as its producer did: a record
// with a key on the partition Kafka's key partitioner (murmur2) gives it,
// as for every keyed record the producers send; a record without a key
// (an Arrow batch, which the SDK sends to the partition of its events'
// key) on the partition set on it, its source partition, when the topic
// has it, else on a random one. Franz-go's default partitioner sent an
// Arrow batch to any partition, away from its key's other events (and
// from the dedupe of the partition they are on).
func replayPartitioner() kgo.Partitioner {
	keyed := kgo.StickyKeyPartitioner(nil)
	return kgo.BasicConsistentPartitioner(func(topic string) func(*kgo.Record, int) int {
		tp := keyed.ForTopic(topic)
		return func(r *kgo.Record, n int) int {
			switch {
			case r.Key != nil:
				return tp.Partition(r, n)
			case r.Partition >= 0 && int(r.Partition) < n:
				return int(r.Partition)
			}
			return rand.IntN(n)
		}
	})
}

// admin makes an admin client from base.
func admin(base []kgo.Opt) (*kadm.Client, error) {
	cl, err := kgo.NewClient(base...)
	if err != nil {
		return nil, fmt.Errorf("cannot create a Kafka client: %w", err)
	}
	return kadm.NewClient(cl), nil
}
