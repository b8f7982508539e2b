package consumers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/costpipe/costpipe/internal/flock"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DLQUnspoolOptions say what UnspoolDLQ re-produces.
type DLQUnspoolOptions struct {
	// Dir is the spool directory (aggregate --dlq-spool).
	Dir string
	// DryRun reads and counts, sends and moves nothing.
	DryRun bool
	// Progress, when set, is called with the records sent so far (by DLQ
	// topic) every unspoolProgressEvery records and after each file.
	Progress func(sent int)
}

// unspoolProgressEvery is how many records go between Progress calls.
const unspoolProgressEvery = 10000

// unspoolBufferBytes bounds the bytes the unspool's producer holds
// unacknowledged: a file is produced whole before its flush, and spooled
// records can be up to the DLQ topic's size limit each.
const unspoolBufferBytes = 64 << 20

// DLQUnspoolStats counts what UnspoolDLQ did.
type DLQUnspoolStats struct {
	// Files are the spool files sent (or, with DryRun, read), each moved to
	// Dir/sent/ afterwards.
	Files []string
	// Records counts the records sent, by DLQ topic; Truncated those of
	// them sent without their value (too large for the topic).
	Records   map[string]int
	Truncated int
	// Failed are the files that could not be sent; the error says why.
	Failed []string
	// Cut are the lines skipped as cut short ("FILE line N"): an
	// aggregator killed in the middle of an append left part of a record,
	// which it read again and sent whole after its restart, to the DLQ
	// topic or the spool (it commits no offset past a record before the
	// record is in the spool, synced).
	Cut []string
}

// spoolSentDir is where UnspoolDLQ moves the files it sent, under the
// spool directory: out of costpipe_dlq_spool_bytes (regular files of the
// directory itself), kept for the operator to remove.
const spoolSentDir = "sent"

// unspoolingSuffix marks a spool file that UnspoolDLQ took from the
// aggregator and is sending: a file left so by a failed run, without the
// records Kafka took before the first it did not, is sent by the next.
const unspoolingSuffix = ".unspooling"

// ErrUnspoolRunning is returned when another UnspoolDLQ works on the
// directory.
var ErrUnspoolRunning = errors.New("another costpipe dlq unspool is working on this directory")

// UnspoolDLQ sends the records of the spool directory's files to the DLQ
// topics they were refused by, as the aggregator would have (the original
// record with its costpipe-dlq-* headers; a record the topic refuses as too
// large goes without its value, with HeaderDLQTruncated), file by file,
// oldest first. A file is taken from the aggregator first (renamed under
// the lock its writer takes, so an aggregator spooling meanwhile starts a
// new file), read through once to check every line, then sent, each record
// acknowledged, then moved to Dir/sent/. A file that cannot be read or sent
// is left (as *.unspooling-N; one whose sending failed part-way without the
// records Kafka took before the first it did not) and the others are still
// sent; the error names each such file (and the line that cannot be read).
// One UnspoolDLQ works on a directory at a time.
func UnspoolDLQ(ctx context.Context, base []kgo.Opt, o DLQUnspoolOptions) (DLQUnspoolStats, error) {
	st := DLQUnspoolStats{Records: map[string]int{}}
	dir, err := os.Open(o.Dir)
	if err != nil {
		return st, fmt.Errorf("cannot open the spool directory: %w", err)
	}
	defer dir.Close()
	if ok, err := flock.TryLock(dir); err != nil {
		return st, fmt.Errorf("cannot lock the spool directory %s: %w", o.Dir, err)
	} else if !ok {
		return st, fmt.Errorf("%s: %w", o.Dir, ErrUnspoolRunning)
	}
	entries, err := os.ReadDir(o.Dir)
	if err != nil {
		return st, fmt.Errorf("cannot read the spool directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, tailPrefix) && !o.DryRun {
			os.Remove(filepath.Join(o.Dir, n)) // a rewrite a crash cut short; its file is whole
			continue
		}
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
		if pr, err = toolProducer(base, kgo.MaxBufferedBytes(unspoolBufferBytes)); err != nil {
			return st, fmt.Errorf("cannot create a Kafka client: %w", err)
		}
		defer pr.Close()
	}
	var errs []error
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return st, errors.Join(append(errs, err)...)
		}
		err := unspoolFile(ctx, pr, o, name, &st)
		if err != nil {
			st.Failed = append(st.Failed, name)
			errs = append(errs, err)
			continue
		}
		st.Files = append(st.Files, name)
		if o.Progress != nil {
			o.Progress(Total(st.Records))
		}
	}
	return st, errors.Join(errs...)
}

// unspoolFile sends the spool file name (of o.Dir), counting into st.
func unspoolFile(ctx context.Context, pr *kgo.Client, o DLQUnspoolOptions, name string, st *DLQUnspoolStats) error {
	path := filepath.Join(o.Dir, name)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open spool file: %w", err)
	}
	defer f.Close()
	// Under the lock no aggregator is appending; after the rename its next
	// append creates a new file (it checks, once locked, that its file is
	// still at the path).
	if err := flock.Lock(f); err != nil {
		return fmt.Errorf("cannot lock spool file %s: %w", path, err)
	}
	if fi, err := f.Stat(); err != nil {
		return fmt.Errorf("cannot read spool file %s: %w", path, err)
	} else if now, err := os.Stat(path); err != nil || !os.SameFile(fi, now) {
		return nil // moved meanwhile: nothing of it to send here
	}
	if !o.DryRun && strings.HasSuffix(name, ".jsonl") {
		taken := path + unspoolingSuffix + "-" + strconv.FormatInt(time.Now().UnixNano(), 10)
		if err := os.Rename(path, taken); err != nil {
			return fmt.Errorf("cannot take spool file %s from the aggregator: %w", path, err)
		}
		path = taken
	}
	// The writer appends to a new file now; or, in a dry run, appends
	// to this one meanwhile (the run reads what is there), rather than
	// wait for the whole read with its consumption stopped.
	flock.Unlock(f)
	// First pass: every line must read, or nothing of the file is sent.
	counts := map[string]int{}
	var cut []string
	err = eachSpoolLine(ctx, f, path, func(r *kgo.Record, _, _ int64) error { counts[r.Topic]++; return nil },
		func(line int) { cut = append(cut, fmt.Sprintf("%s line %d", name, line)) })
	if err != nil {
		return err
	}
	if !o.DryRun {
		// A dry run reads while an aggregator may append: its last line
		// may be one being written, not one cut short.
		st.Cut = append(st.Cut, cut...)
	}
	if o.DryRun {
		for t, n := range counts {
			st.Records[t] += n
		}
		return nil
	}
	if _, err := f.Seek(0, 0); err != nil {
		return fmt.Errorf("cannot read %s again: %w", path, err)
	}
	// The records in file order, each with its line's offset; acked[i]
	// once Kafka took records[i] (or its copy without the value).
	type big struct {
		i   int
		rec *kgo.Record
	}
	var (
		mu       sync.Mutex
		sendErr  error
		tooBig   []big
		produced = map[string]int{}
		offsets  []int64 // of each record's line
		acked    []bool
		readTo   int64 // the end of the last line produced
	)
	done := func(i int) func(*kgo.Record, error) {
		return func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				produced[r.Topic]++
				acked[i] = true
			case tooLarge(err) && r.Value != nil:
				tooBig = append(tooBig, big{i, withoutValue(r, err)})
			case sendErr == nil:
				sendErr = fmt.Errorf("cannot send a record of %s to %s: %w", path, r.Topic, err)
			}
		}
	}
	err = eachSpoolLine(ctx, f, path, func(r *kgo.Record, off, end int64) error {
		mu.Lock()
		i := len(offsets)
		offsets, acked, readTo = append(offsets, off), append(acked, false), end
		mu.Unlock()
		pr.Produce(ctx, r, done(i)) // blocks while the client's buffer is full
		if n := i + 1; o.Progress != nil && n%unspoolProgressEvery == 0 {
			mu.Lock()
			sent := Total(produced)
			mu.Unlock()
			o.Progress(Total(st.Records) + sent)
		}
		return nil
	}, nil)
	if err == nil {
		err = pr.Flush(ctx)
	}
	mu.Lock()
	resend := tooBig
	tooBig = nil
	mu.Unlock()
	if err == nil && len(resend) > 0 {
		for _, b := range resend {
			pr.Produce(ctx, b.rec, done(b.i))
		}
		err = pr.Flush(ctx)
	}
	if err != nil {
		settleBriefly(ctx, pr)
	}
	mu.Lock()
	if err == nil {
		err = sendErr
	}
	if len(tooBig) > 0 && err == nil {
		err = fmt.Errorf("%d record(s) of %s are too large for their topic even without their value", len(tooBig), path)
	}
	// The file keeps what follows the records Kafka took up to the first
	// it did not: from that one's line, or, when it took every record
	// produced (the reading stopped: a read error, ctx), from the end of
	// the last line produced.
	n := ackedPrefix(acked)
	keepFrom := readTo
	if n < len(acked) {
		keepFrom = offsets[n]
	}
	mu.Unlock()
	if err != nil {
		for t, k := range produced {
			st.Records[t] += k
		}
		if n > 0 {
			if kerr := keepTail(f, path, keepFrom); kerr != nil {
				return fmt.Errorf("%w; and cannot drop the %d record(s) sent from the file (a new run sends them again): %v", err, n, kerr)
			}
		}
		return fmt.Errorf("%w; the file stays without the %d record(s) sent, and a new run sends the rest", err, n)
	}
	for t, n := range produced {
		st.Records[t] += n
	}
	st.Truncated += len(resend)
	sent := filepath.Join(o.Dir, spoolSentDir)
	if err := os.MkdirAll(sent, 0o750); err != nil {
		return fmt.Errorf("sent %s, but cannot create %s to move it to (move it away by hand, or a new run sends it again): %w", path, sent, err)
	}
	dest := filepath.Join(sent, strings.SplitN(filepath.Base(path), unspoolingSuffix, 2)[0]+"."+time.Now().UTC().Format("20060102T150405.000000000Z"))
	if err := os.Rename(path, dest); err != nil {
		return fmt.Errorf("sent %s, but cannot move it to %s (move it away by hand, or a new run sends it again): %w", path, dest, err)
	}
	return nil
}

// eachSpoolLine decodes the lines of a spool file (path names it in
// errors) from its current position, calling fn with each record. A line
// cut short (JSON that ends too early: a killed append) is skipped and
// passed to cut when cut is set; any other line that does not decode is an
// error. It stops when ctx ends.
func eachSpoolLine(ctx context.Context, f *os.File, path string, fn func(r *kgo.Record, off, end int64) error, cut func(line int)) error {
	br := bufio.NewReaderSize(f, 64<<10)
	line := 0
	var off int64 // of the line read next, from the current position
	for {
		if line%1000 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("stopped reading %s at line %d: %w", path, line, err)
			}
		}
		b, err := br.ReadBytes('\n')
		at := off
		off += int64(len(b))
		if len(b) > 0 {
			line++
			if b = bytes.TrimSpace(b); len(b) > 0 {
				r, derr := decodeSpoolLine(b)
				switch {
				case derr != nil && cutShort(derr):
					if cut != nil {
						cut(line)
					}
				case derr != nil:
					return fmt.Errorf("%s line %d: %w (nothing of the file sent; it stays: fix or remove the line, then run again)", path, line, derr)
				default:
					if ferr := fn(r, at, off); ferr != nil {
						return ferr
					}
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot read %s after line %d: %w", path, line, err)
		}
	}
}

// tailPrefix names keepTail's temporary files.
const tailPrefix = ".tail-"

// keepTail rewrites the spool file at path (open as f) to hold only its
// bytes from off: written to a temporary file beside it, synced, renamed
// over it, the directory synced.
func keepTail(f *os.File, path string, off int64) error {
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	// Not named dlq-…: a run finds no spool file in a tail left by a
	// crash (UnspoolDLQ removes those).
	tmp, err := os.CreateTemp(filepath.Dir(path), tailPrefix+"*")
	if err != nil {
		return err
	}
	if err := tmp.Chmod(0o640); err != nil { // as the spool files
		tmp.Close()
		return err
	}
	defer os.Remove(tmp.Name()) // gone by the rename when it succeeds
	if _, err := io.Copy(tmp, f); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// cutShort reports whether err, decodeSpoolLine's, is JSON that ends too
// early: the start of a line whose append was cut off.
func cutShort(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) && se.Error() == "unexpected end of JSON input"
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
