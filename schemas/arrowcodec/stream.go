package arrowcodec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrInvalidStream is matched by errors.Is for every error Decode returns
// because the stream itself cannot be read: truncated or corrupt bytes, a
// schema without a required column or with a column of the wrong type, or a
// stream over the decoder's limits. Such a record goes to the DLQ whole.
var ErrInvalidStream = errors.New("invalid arrow stream")

// streamError carries a readable message and matches ErrInvalidStream.
type streamError struct{ err error }

func (e *streamError) Error() string   { return e.err.Error() }
func (e *streamError) Unwrap() []error { return []error{e.err, ErrInvalidStream} }

func invalidf(format string, args ...any) error {
	return &streamError{fmt.Errorf(format, args...)}
}

// Message header types (Message.fbs, union MessageHeader).
const (
	msgSchema          = 1
	msgDictionaryBatch = 2
	msgRecordBatch     = 3
)

// metadataV4 is the oldest metadata version read (Arrow ≥ 0.8).
const metadataV4 = 3

const continuationMarker = 0xFFFFFFFF

// message is one IPC message: its flatbuffers metadata and its body, both
// aliasing the stream's bytes.
type message struct {
	at     int // byte offset in the stream, for errors
	meta   []byte
	fb     fbuf
	typ    uint8
	header fbTable
	body   []byte
}

// msgReader splits an in-memory IPC stream into messages. Every declared
// length is checked against the bytes present, so a lying header costs
// nothing.
type msgReader struct {
	data []byte
	pos  int
	eos  bool // the end-of-stream marker was read
}

// next returns the next message, or io.EOF at the end-of-stream marker or
// at the end of the data.
func (r *msgReader) next(m *message) error {
	rest := r.data[r.pos:]
	if len(rest) == 0 || r.eos {
		return io.EOF
	}
	m.at = r.pos
	if len(rest) < 4 {
		return fmt.Errorf("truncated message header at byte %d", r.pos)
	}
	hdr := 4
	metaLen := int64(int32(binary.LittleEndian.Uint32(rest)))
	if uint32(metaLen) == continuationMarker {
		if len(rest) < 8 {
			return fmt.Errorf("truncated message header at byte %d", r.pos)
		}
		hdr = 8
		metaLen = int64(int32(binary.LittleEndian.Uint32(rest[4:])))
	}
	if metaLen == 0 {
		r.pos += hdr
		r.eos = true
		return io.EOF
	}
	if metaLen < 0 || metaLen > int64(len(rest)-hdr) {
		return fmt.Errorf("message at byte %d declares %d bytes of metadata, %d remain", r.pos, metaLen, len(rest)-hdr)
	}
	m.meta = rest[hdr : hdr+int(metaLen)]
	m.fb = fbuf{b: m.meta}
	root := m.fb.root()
	version := root.i16(0, 0)
	m.typ = root.u8(1, 0)
	m.header = root.sub(2)
	bodyLen := root.i64(3, 0)
	if m.fb.err != nil {
		return fmt.Errorf("message at byte %d: %w", r.pos, m.fb.err)
	}
	if version < metadataV4 {
		return fmt.Errorf("message at byte %d has metadata version V%d, want V4 or later", r.pos, version+1)
	}
	if !m.header.present() {
		return fmt.Errorf("message at byte %d has no header", r.pos)
	}
	remain := int64(len(rest) - hdr - int(metaLen))
	if bodyLen < 0 || bodyLen > remain {
		return fmt.Errorf("message at byte %d declares a body of %d bytes, %d remain", r.pos, bodyLen, remain)
	}
	start := hdr + int(metaLen)
	m.body = rest[start : start+int(bodyLen) : start+int(bodyLen)]
	r.pos += start + int(bodyLen)
	return nil
}
