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
}

// LinesReport counts what SendLines did.
type LinesReport struct {
	Sent     int64 // acknowledged by Kafka
	Rejected int64 // invalid lines, never sent
	Failed   int64 // valid lines Kafka did not acknowledge
}

// SendLines reads JSON events, one per line, validates each and produces the
// valid ones to topic with the contract's key and headers. Blank lines are
// skipped. Each rejected or failed line is reported to onReject (called from
// one goroutine at a time) with its line number. It waits for every produced
// record to be acknowledged before it returns. The error is non-nil only when
// reading the input fails or ctx ends; per-line problems are counted instead.
// Events are re-encoded canonically before sending, so what lands on the topic
// is exactly what was validated.
func SendLines(ctx context.Context, cl *kgo.Client, topic string, r io.Reader, onReject func(Rejection)) (LinesReport, error) {
	var (
		rep  LinesReport
		mu   sync.Mutex // serialises onReject
		sent atomic.Int64
		fail atomic.Int64
		wg   sync.WaitGroup
	)
	reject := func(rj Rejection) {
		if onReject != nil {
			mu.Lock()
			onReject(rj)
			mu.Unlock()
		}
	}
	dec := schemas.NewDecoder()
	br := bufio.NewReaderSize(r, 64<<10)
	var ev schemas.Event
	line := 0
	var readErr error
	for {
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
		switch {
		case tooLong:
			rep.Rejected++
			reject(Rejection{Line: line, Err: fmt.Errorf("line longer than %d bytes", MaxLineBytes)})
		case len(bytes.TrimSpace(data)) == 0:
			// blank line: nothing to send
		default:
			if derr := dec.Decode(data, &ev); derr != nil {
				rep.Rejected++
				reject(Rejection{Line: line, Err: derr})
				break
			}
			rec := &kgo.Record{
				Topic:   topic,
				Key:     ev.Key(),
				Value:   schemas.AppendJSON(nil, &ev),
				Headers: []kgo.RecordHeader{{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeJSON)}},
			}
			n := line
			wg.Add(1)
			cl.Produce(ctx, rec, func(_ *kgo.Record, perr error) {
				defer wg.Done()
				if perr != nil {
					fail.Add(1)
					reject(Rejection{Line: n, Err: fmt.Errorf("cannot produce to %q: %w", topic, perr)})
					return
				}
				sent.Add(1)
			})
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	wg.Wait()
	rep.Sent, rep.Failed = sent.Load(), fail.Load()
	return rep, readErr
}

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
