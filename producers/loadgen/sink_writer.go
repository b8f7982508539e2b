package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/costpipe/costpipe/schemas"
)

// WriterSink writes events as JSON lines (the canonical encoding of
// schemas.AppendJSON), buffered. It is what `costpipe loadgen --output
// stdout` uses; `costpipe produce` reads the same format.
type WriterSink struct {
	w   *bufio.Writer
	buf []byte
}

// NewWriterSink returns a sink writing to w.
func NewWriterSink(w io.Writer) *WriterSink {
	return &WriterSink{w: bufio.NewWriterSize(w, 64<<10), buf: make([]byte, 0, 512)}
}

// Write encodes evs, one line each.
func (s *WriterSink) Write(_ context.Context, evs []schemas.Event) (int, error) {
	for i := range evs {
		s.buf = append(schemas.AppendJSON(s.buf[:0], &evs[i]), '\n')
		if _, err := s.w.Write(s.buf); err != nil {
			return i, fmt.Errorf("cannot write events: %w", err)
		}
	}
	return len(evs), nil
}

// Flush writes out the buffer.
func (s *WriterSink) Flush(context.Context) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("cannot write events: %w", err)
	}
	return nil
}
