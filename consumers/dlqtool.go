package consumers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// dlqQuiet is how long readDLQ waits for a partition that has records left
// in its range before it says so: offsets with no record (a compacted or
// transactional topic; the aggregator writes neither) never come.
const dlqQuiet = 30 * time.Second

// readDLQ reads the ranges of topic in offset order within each partition,
// calling fn for each batch of one partition's records (never past the
// range's end). It returns when every range is read, fn fails or ctx ends.
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
	for len(pos) > 0 {
		pctx, cancel := context.WithTimeout(ctx, dlqQuiet)
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
		if fs.NumRecords() == 0 {
			var stuck []string
			for p, at := range pos {
				stuck = append(stuck, fmt.Sprintf("partition %d at offset %d of %d", p, at, ranges[p].to))
			}
			sort.Strings(stuck)
			return fmt.Errorf("no records came from %s for %s although the log holds more (%s)", topic, dlqQuiet, strings.Join(stuck, ", "))
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
			}
			if n < len(recs) {
				at = end
			}
			if at >= end {
				delete(pos, fp.Partition)
			} else {
				pos[fp.Partition] = at
			}
		})
		if batchErr != nil {
			return batchErr
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

// DLQReplayOptions say what ReplayDLQ sends back.
type DLQReplayOptions struct {
	// Topic is the DLQ topic, To the topic the records go back to.
	Topic, To string
	// Group is the consumer group whose committed offsets on Topic say
	// where the last replay stopped: a replay starts there and commits
	// past every record it sent or passed over, so running it again sends
	// nothing twice. It never joins the group (no member is needed).
	Group string
	// Reasons, when not empty, replays only the records refused for one of
	// these reasons; the others are passed over (and the group's offsets
	// move past them too: use another Group to replay them later).
	Reasons []string
	// DryRun reads and counts, sends and commits nothing.
	DryRun bool
	// Progress, when set, is called after each batch.
	Progress func(DLQReplayStats)
}

// DLQReplayStats counts what a replay did, by reason.
type DLQReplayStats struct {
	// Read is every record read, Sent those sent back to To, PassedOver
	// those of other reasons, NoValue those the DLQ holds without their
	// value (too large for it: they cannot be replayed from the DLQ).
	Read, Sent, PassedOver, NoValue map[string]int
	// NoValueSources names the source records of NoValue (at most 100),
	// for finding them in the events topic.
	NoValueSources []string
	// From and To are the offsets read per partition: [From, To).
	From, To map[int32]int64
}

func (s *DLQReplayStats) add(m *map[string]int, reason string) {
	if *m == nil {
		*m = map[string]int{}
	}
	if reason == "" {
		reason = "(none)"
	}
	(*m)[reason]++
}

// Total sums a count map of the stats.
func Total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// ReplayDLQ sends the records of the DLQ topic back to o.To as they were
// first produced (key, value, the original headers, plus
// HeaderReplayedFrom), from where o.Group's last replay stopped to the end
// of each partition as of the call. Each batch is acknowledged by Kafka
// before the group's offset moves past it, so a replay that stops (an
// error, SIGTERM, a crash) resumes where it stopped, sending at most the
// unacknowledged part of one batch twice.
func ReplayDLQ(ctx context.Context, base []kgo.Opt, o DLQReplayOptions) (DLQReplayStats, error) {
	st := DLQReplayStats{From: map[int32]int64{}, To: map[int32]int64{}}
	if o.Topic == "" || o.To == "" || o.Group == "" {
		return st, errors.New("replay needs the DLQ topic, the topic to send to and a group")
	}
	if o.Topic == o.To {
		return st, fmt.Errorf("cannot replay %s into itself", o.Topic)
	}
	adm, err := admin(base)
	if err != nil {
		return st, err
	}
	defer adm.Close()
	committed, err := adm.FetchOffsetsForTopics(ctx, o.Group, o.Topic)
	if err == nil {
		err = committed.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = nil, nil // the first replay of this group
	}
	if err != nil {
		return st, noTopic(err, o.Topic, fmt.Sprintf("cannot read the offsets of group %s on %s", o.Group, o.Topic))
	}
	start := map[int32]int64{}
	committed.Each(func(r kadm.OffsetResponse) {
		if r.Topic == o.Topic && r.At >= 0 {
			start[r.Partition] = r.At
		}
	})
	ranges, err := dlqRanges(ctx, adm, o.Topic, time.Time{}, start)
	if err != nil {
		return st, err
	}
	for p, r := range ranges {
		st.From[p], st.To[p] = r.from, r.to
	}
	want := map[string]bool{}
	for _, r := range o.Reasons {
		want[r] = true
	}
	var pr *kgo.Client
	if !o.DryRun {
		pr, err = kgo.NewClient(append(append([]kgo.Opt(nil), base...),
			kgo.AllowAutoTopicCreation(),
			kgo.RecordDeliveryTimeout(time.Minute),
			kgo.AllowIdempotentProduceCancellation(),
		)...)
		if err != nil {
			return st, fmt.Errorf("cannot create a Kafka client to send to %s: %w", o.To, err)
		}
		defer pr.Close()
	}
	err = readDLQ(ctx, base, o.Topic, ranges, func(p int32, recs []*kgo.Record) error {
		var (
			mu      sync.Mutex
			sendErr error
		)
		for _, r := range recs {
			d := ParseDLQRecord(r)
			st.add(&st.Read, d.Reason)
			switch {
			case len(want) > 0 && !want[d.Reason]:
				st.add(&st.PassedOver, d.Reason)
				continue
			case d.Truncated:
				st.add(&st.NoValue, d.Reason)
				if len(st.NoValueSources) < 100 {
					st.NoValueSources = append(st.NoValueSources, d.Source())
				}
				continue
			}
			st.add(&st.Sent, d.Reason)
			if o.DryRun {
				continue
			}
			hs := append(append([]kgo.RecordHeader(nil), d.Headers...), kgo.RecordHeader{Key: HeaderReplayedFrom, Value: []byte(d.Where())})
			pr.Produce(ctx, &kgo.Record{Topic: o.To, Key: d.Key, Value: d.Value, Headers: hs}, func(_ *kgo.Record, err error) {
				mu.Lock()
				if err != nil && sendErr == nil {
					sendErr = err
				}
				mu.Unlock()
			})
		}
		if !o.DryRun {
			if err := pr.Flush(ctx); err != nil {
				return fmt.Errorf("cannot send to %s: %w", o.To, err)
			}
			mu.Lock()
			err := sendErr
			mu.Unlock()
			if err != nil {
				return fmt.Errorf("cannot send to %s: %w", o.To, err)
			}
			next := recs[len(recs)-1].Offset + 1
			var offs kadm.Offsets
			offs.Add(kadm.Offset{Topic: o.Topic, Partition: p, At: next, LeaderEpoch: -1})
			resp, err := adm.CommitOffsets(ctx, o.Group, offs)
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				return fmt.Errorf("sent up to %s partition %d offset %d, but cannot commit that for group %s (a new run sends that batch again): %w", o.Topic, p, next-1, o.Group, err)
			}
		}
		if o.Progress != nil {
			o.Progress(st)
		}
		return nil
	})
	return st, err
}

// admin makes an admin client from base.
func admin(base []kgo.Opt) (*kadm.Client, error) {
	cl, err := kgo.NewClient(base...)
	if err != nil {
		return nil, fmt.Errorf("cannot create a Kafka client: %w", err)
	}
	return kadm.NewClient(cl), nil
}

// DLQUnspoolOptions say what UnspoolDLQ re-produces.
type DLQUnspoolOptions struct {
	// Dir is the spool directory (aggregate --dlq-spool).
	Dir string
	// DryRun reads and counts, sends and moves nothing.
	DryRun bool
}

// DLQUnspoolStats counts what UnspoolDLQ did.
type DLQUnspoolStats struct {
	// Files are the spool files sent, each moved to Dir/sent/ afterwards.
	Files []string
	// Records counts the records sent, by DLQ topic.
	Records map[string]int
}

// spoolSentDir is where UnspoolDLQ moves the files it sent, under the
// spool directory: out of costpipe_dlq_spool_bytes (regular files of the
// directory itself), kept for the operator to remove.
const spoolSentDir = "sent"

// unspoolingSuffix marks a spool file that UnspoolDLQ took from the
// aggregator and is sending: a file left so by a failed run is sent by the
// next (records of it that Kafka took the first time go twice, to the DLQ
// topic only).
const unspoolingSuffix = ".unspooling"

// UnspoolDLQ sends the records of the spool directory's files to the DLQ
// topics they were refused by, as the aggregator would have (the original
// record with its costpipe-dlq-* headers), file by file, oldest first. A
// file is taken from the aggregators first (renamed under its lock, so an
// aggregator spooling meanwhile starts a new file), then sent, each record
// acknowledged, then moved to Dir/sent/. A line that cannot be read stops
// at its file, which stays as it is, with an error naming the line.
func UnspoolDLQ(ctx context.Context, base []kgo.Opt, o DLQUnspoolOptions) (DLQUnspoolStats, error) {
	st := DLQUnspoolStats{Records: map[string]int{}}
	entries, err := os.ReadDir(o.Dir)
	if err != nil {
		return st, fmt.Errorf("cannot read the spool directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, "dlq-") && (strings.HasSuffix(n, ".jsonl") || strings.Contains(n, ".jsonl"+unspoolingSuffix)) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return st, nil
	}
	var pr *kgo.Client
	if !o.DryRun {
		pr, err = kgo.NewClient(append(append([]kgo.Opt(nil), base...),
			kgo.RecordDeliveryTimeout(time.Minute),
			kgo.AllowIdempotentProduceCancellation(),
			kgo.ProducerBatchMaxBytes(16<<20),
		)...)
		if err != nil {
			return st, fmt.Errorf("cannot create a Kafka client: %w", err)
		}
		defer pr.Close()
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		n, err := unspoolFile(ctx, pr, o, name, st.Records)
		if err != nil {
			return st, err
		}
		if n > 0 || !o.DryRun {
			st.Files = append(st.Files, name)
		}
	}
	return st, nil
}

// unspoolFile sends the spool file name (of o.Dir), counting its records by
// topic into counts, and returns how many it sent.
func unspoolFile(ctx context.Context, pr *kgo.Client, o DLQUnspoolOptions, name string, counts map[string]int) (int, error) {
	path := filepath.Join(o.Dir, name)
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("cannot open spool file: %w", err)
	}
	defer f.Close()
	// Under the lock no aggregator is appending; after the rename the next
	// append creates a new file.
	if err := lockFile(f); err != nil {
		return 0, fmt.Errorf("cannot lock spool file %s: %w", path, err)
	}
	if !o.DryRun && strings.HasSuffix(name, ".jsonl") {
		taken := path + unspoolingSuffix + "-" + strconv.FormatInt(time.Now().UnixNano(), 10)
		if err := os.Rename(path, taken); err != nil {
			return 0, fmt.Errorf("cannot take spool file %s from the aggregators: %w", path, err)
		}
		path = taken
	}
	recs, err := readSpoolFile(f, path)
	if err != nil {
		return 0, err
	}
	if o.DryRun {
		for _, r := range recs {
			counts[r.Topic]++
		}
		return len(recs), nil
	}
	var (
		mu      sync.Mutex
		sendErr error
	)
	for _, r := range recs {
		pr.Produce(ctx, r, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && sendErr == nil {
				sendErr = fmt.Errorf("%s (record of %s): %w", r.Topic, path, err)
			}
		})
	}
	if err := pr.Flush(ctx); err != nil {
		return 0, fmt.Errorf("cannot send %s: %w", path, err)
	}
	mu.Lock()
	err = sendErr
	mu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("cannot send to %w; the file stays, a new run sends it again", err)
	}
	for _, r := range recs {
		counts[r.Topic]++
	}
	sent := filepath.Join(o.Dir, spoolSentDir)
	if err := os.MkdirAll(sent, 0o750); err != nil {
		return len(recs), fmt.Errorf("sent %s, but cannot create %s to move it to (move it away by hand, or a new run sends it again): %w", path, sent, err)
	}
	dest := filepath.Join(sent, strings.SplitN(filepath.Base(path), unspoolingSuffix, 2)[0]+"."+time.Now().UTC().Format("20060102T150405.000000000Z"))
	if err := os.Rename(path, dest); err != nil {
		return len(recs), fmt.Errorf("sent %s, but cannot move it to %s (move it away by hand, or a new run sends it again): %w", path, dest, err)
	}
	return len(recs), nil
}

// readSpoolFile decodes the lines of a spool file (path names it in
// errors) into the records to send.
func readSpoolFile(f *os.File, path string) ([]*kgo.Record, error) {
	var out []*kgo.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 256<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		r, err := decodeSpoolLine(b)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w (nothing of the file sent; fix or remove the line, then run again)", path, line, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read %s after line %d: %w", path, line, err)
	}
	return out, nil
}

// decodeSpoolLine decodes one spool line of format 1 (header values as
// text) or 2 (base64) into the DLQ record it holds.
func decodeSpoolLine(b []byte) (*kgo.Record, error) {
	var l struct {
		Version int    `json:"v"`
		Topic   string `json:"topic"`
		Key     []byte `json:"key"`
		Value   []byte `json:"value"`
		Headers []struct {
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		} `json:"headers"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("not a spool line: %w", err)
	}
	if l.Version > spoolFormat {
		return nil, fmt.Errorf("spool format %d is newer than this costpipe reads (%d): use the version that wrote it", l.Version, spoolFormat)
	}
	if l.Topic == "" {
		return nil, errors.New("the line names no topic")
	}
	r := &kgo.Record{Topic: l.Topic, Key: l.Key, Value: l.Value}
	for _, h := range l.Headers {
		var v []byte
		if l.Version >= 2 {
			if err := json.Unmarshal(h.Value, &v); err != nil {
				return nil, fmt.Errorf("header %q: %w", h.Key, err)
			}
		} else {
			var sv *string
			if err := json.Unmarshal(h.Value, &sv); err != nil {
				return nil, fmt.Errorf("header %q: %w", h.Key, err)
			}
			if sv != nil {
				v = []byte(*sv)
			}
		}
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: v})
	}
	return r, nil
}
