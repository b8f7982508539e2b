package producers

// This file: SendLines, the line-oriented sender behind `costpipe produce`.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/schemas"
)

// MaxLineBytes is the longest JSON line SendLines accepts; longer lines are
// rejected (and skipped) rather than buffered without bound.
const MaxLineBytes = 1 << 20

// Rejection is one input line that was not sent.
type Rejection struct {
	Line int   // 1-based line number in the input
	Err  error // why: a decode/validation error, a line too long, or a Kafka error
	// Delivery is true when the line was valid but Kafka did not
	// acknowledge it (Err is the Kafka error); false for invalid lines.
	Delivery bool
}

// LinesReport counts what SendLines did.
type LinesReport struct {
	Read     int64 // input lines read (blank ones included)
	Sent     int64 // acknowledged by Kafka
	Rejected int64 // invalid lines, never sent
	Failed   int64 // valid lines Kafka did not acknowledge
}

// DefaultMaxConsecutiveFailures is how many delivery failures in a row make
// SendLines give up when LinesOptions.MaxConsecutiveFailures is 0.
const DefaultMaxConsecutiveFailures = 100

// maxLinesInFlight bounds the records SendLines has produced whose callback
// has not run yet (franz-go's default MaxBufferedRecords).
const maxLinesInFlight = 10000

// ErrDeliveryStopped is returned (wrapped) by SendLinesWith when it stopped
// reading because Kafka failed to acknowledge too many records in a row.
var ErrDeliveryStopped = errors.New("kafka did not acknowledge")

// LinesOptions tunes SendLinesWith.
type LinesOptions struct {
	// OnReject is called (from one goroutine at a time) for each rejected
	// or failed line.
	OnReject func(Rejection)
	// MaxConsecutiveFailures stops the run after this many delivery
	// failures in a row with no acknowledgement in between: 0 means
	// DefaultMaxConsecutiveFailures, a negative value never stops.
	MaxConsecutiveFailures int
	// OnProgress, if set, is called every ProgressEvery (default 5s) from
	// another goroutine with the counts so far.
	OnProgress    func(LinesReport)
	ProgressEvery time.Duration
	// OnEvent, if set, is called (from the reading goroutine) with each
	// valid event and its line number before the line is produced; e is
	// reused once it returns.
	OnEvent func(line int, e *schemas.Event)
}

// SendLines reads JSON events, one per line, validates each and produces the
// valid ones to topic with the contract's key and headers. Blank lines are
// skipped. Each rejected or failed line is reported to onReject (called from
// one goroutine at a time) with its line number. It waits for every produced
// record to be acknowledged before it returns. The error is non-nil when
// reading the input fails, ctx ends, or delivery stopped after
// DefaultMaxConsecutiveFailures failures in a row (ErrDeliveryStopped);
// other per-line problems are counted instead.
//
// A line that validates is sent as it was read, minus surrounding
// whitespace, so fields this version does not know (the contract's forward
// compatibility) reach the topic intact.
func SendLines(ctx context.Context, cl *kgo.Client, topic string, r io.Reader, onReject func(Rejection)) (LinesReport, error) {
	return SendLinesWith(ctx, cl, topic, r, LinesOptions{OnReject: onReject})
}

// SendLinesWith is SendLines with options.
func SendLinesWith(ctx context.Context, cl *kgo.Client, topic string, r io.Reader, o LinesOptions) (LinesReport, error) {
	var (
		rep     LinesReport
		mu      sync.Mutex // serialises OnReject
		read    atomic.Int64
		rejd    atomic.Int64
		sent    atomic.Int64
		fail    atomic.Int64
		consec  atomic.Int64                            // delivery failures since the last success
		slots   = make(chan struct{}, maxLinesInFlight) // records awaiting their callback
		stopped atomic.Bool
		wg      sync.WaitGroup
	)
	maxConsec := int64(o.MaxConsecutiveFailures)
	if maxConsec == 0 {
		maxConsec = DefaultMaxConsecutiveFailures
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reject := func(rj Rejection) {
		if o.OnReject != nil {
			mu.Lock()
			o.OnReject(rj)
			mu.Unlock()
		}
	}
	snapshot := func() LinesReport {
		return LinesReport{Read: read.Load(), Sent: sent.Load(), Rejected: rejd.Load(), Failed: fail.Load()}
	}
	if o.OnProgress != nil {
		every := o.ProgressEvery
		if every <= 0 {
			every = 5 * time.Second
		}
		done := make(chan struct{})
		var pwg sync.WaitGroup
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					o.OnProgress(snapshot())
				}
			}
		}()
		defer pwg.Wait()
		defer close(done)
	}
	dec := schemas.NewDecoder()
	br := bufio.NewReaderSize(r, 64<<10)
	var ev schemas.Event
	line := 0
	var readErr error
	for {
		if stopped.Load() {
			break
		}
		if ctx.Err() != nil {
			readErr = ctx.Err()
			break
		}
		data, tooLong, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			readErr = fmt.Errorf("cannot read input after line %d: %w", line, err)
			break
		}
		if len(data) == 0 && !tooLong && errors.Is(err, io.EOF) {
			break
		}
		line++
		read.Store(int64(line))
		if line == 1 {
			// A byte order mark, as editors on Windows save UTF-8.
			data = bytes.TrimPrefix(data, utf8BOM)
		}
		trimmed := bytes.TrimSpace(data)
		switch {
		case tooLong:
			rejd.Add(1)
			reject(Rejection{Line: line, Err: fmt.Errorf("line longer than %d bytes", MaxLineBytes)})
		case len(trimmed) == 0:
			// blank line: nothing to send
		default:
			if derr := dec.Decode(trimmed, &ev); derr != nil {
				rejd.Add(1)
				reject(Rejection{Line: line, Err: derr})
				break
			}
			if o.OnEvent != nil {
				o.OnEvent(line, &ev)
			}
			// Forward the line as read (readLine returns a fresh buffer
			// per line), not a re-encoding: unknown fields must survive.
			rec := &kgo.Record{
				Topic:   topic,
				Key:     ev.Key(),
				Value:   trimmed,
				Headers: []kgo.RecordHeader{{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeJSON)}},
			}
			// Bound the records awaiting their callback: franz-go frees
			// its buffer before it runs the callbacks, so without this
			// the input would race far ahead of the failures that stop it.
			acquired := false
			select {
			case slots <- struct{}{}:
				acquired = true
			case <-pctx.Done():
			}
			if !acquired || stopped.Load() {
				if acquired {
					<-slots
				}
				// Not sent: the line does not count as read, so the report
				// (sent + failed + rejected + blank = read) and a resume
				// after the last read line do not skip it.
				line--
				read.Store(int64(line))
				break // the loop's next check ends the run
			}
			n := line
			wg.Add(1)
			cl.Produce(pctx, rec, func(_ *kgo.Record, perr error) {
				defer wg.Done()
				defer func() { <-slots }()
				if perr != nil {
					fail.Add(1)
					if maxConsec > 0 && consec.Add(1) >= maxConsec && !stopped.Swap(true) {
						cancel() // unblock a Produce waiting for buffer space
					}
					reject(Rejection{Line: n, Err: fmt.Errorf("cannot produce to %q: %w", topic, perr), Delivery: true})
					return
				}
				consec.Store(0)
				sent.Add(1)
			})
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	wg.Wait()
	rep = snapshot()
	if stopped.Load() && readErr == nil {
		readErr = fmt.Errorf("%w: stopped after %d delivery failures in a row (last read line %d)", ErrDeliveryStopped, maxConsec, line)
	}
	return rep, readErr
}

// utf8BOM is the byte order mark some editors write at the start of a
// UTF-8 file.
var utf8BOM = []byte("\xEF\xBB\xBF")

// readLine returns the next line without its newline. A line longer than
// MaxLineBytes is consumed and reported as tooLong with no data.
func readLine(br *bufio.Reader) (data []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxLineBytes+1 {
			tooLong = true
			buf = buf[:0]
		} else if !tooLong {
			buf = append(buf, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if tooLong {
			return nil, true, err
		}
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		buf = bytes.TrimSuffix(buf, []byte("\r"))
		return buf, false, err
	}
}
