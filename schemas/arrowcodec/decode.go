package arrowcodec

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/costpipe/costpipe/schemas"
)

// DecoderOptions bound what one Decode call accepts, so a hostile or corrupt
// record cannot exhaust memory.
type DecoderOptions struct {
	// MaxRows caps the rows of one stream, all record batches together.
	// Default 1 048 576.
	MaxRows int
	// MaxBytes caps the bytes decompressed from one stream (LZ4 or ZSTD
	// body compression; uncompressed buffers are read in place and cost
	// nothing). Default 256 MiB.
	MaxBytes int64
}

// DefaultDecoderOptions returns MaxRows 1 048 576 and MaxBytes 256 MiB.
func DefaultDecoderOptions() DecoderOptions {
	return DecoderOptions{MaxRows: 1 << 20, MaxBytes: 256 << 20}
}

// Validate reports an option out of range.
func (o DecoderOptions) Validate() error {
	if o.MaxRows < 1 || o.MaxRows > math.MaxInt32 {
		return fmt.Errorf("cannot use arrow MaxRows %d: want 1 to %d", o.MaxRows, math.MaxInt32)
	}
	if o.MaxBytes < 1<<10 {
		return fmt.Errorf("cannot use arrow MaxBytes %d: want at least 1024", o.MaxBytes)
	}
	return nil
}

// RowError reports one invalid row of an otherwise readable stream. It
// unwraps to the violation, usually a *schemas.FieldError naming the field.
type RowError struct {
	// Row is the index of the row in the stream, counting from 0 across
	// record batches.
	Row int
	// EventID is the row's event_id as read ("" when null or absent).
	EventID string
	// Err is the violation.
	Err error
}

// Error reads like `invalid event at row 3 (event_id "e-3"): invalid field ...`.
func (e *RowError) Error() string {
	id := truncate(e.EventID, 64)
	return "invalid event at row " + strconv.Itoa(e.Row) + " (event_id " + strconv.Quote(id) + "): " + e.Err.Error()
}

// Unwrap returns the violation.
func (e *RowError) Unwrap() error { return e.Err }

// Decoder reads Arrow IPC streams of events. It keeps scratch buffers and
// the last schema seen between calls: reuse one per goroutine. It is not
// safe for concurrent use, and Decode must not be called again from its own
// callback (it panics).
//
// The events it produces share nothing with the input bytes or with the
// Decoder: every string is copied out of the stream (the strings of one
// column of one record batch share one allocation, so keeping one event_id
// keeps its batch's ids alive: about 40 bytes per event), and each
// attributes map is new.
type Decoder struct {
	opts DecoderOptions
	dec  decompressor
	msg  message

	// The last schema, kept while streams repeat it byte for byte.
	schemaMeta []byte
	schema     schemaInfo
	bind       binding
	slotOf     []int // field index → slot, -1 for unknown columns

	dicts   [numStrSlots]dictState
	batches []batch
	shared  sharedCols
	busy    bool
}

// dictState is the current dictionary of a dictionary-encoded string column.
type dictState struct {
	set  bool
	vals []string
}

// NewDecoder returns a Decoder with DefaultDecoderOptions.
func NewDecoder() *Decoder {
	d, err := NewDecoderWithOptions(DefaultDecoderOptions())
	if err != nil {
		panic(err) // unreachable: the defaults are valid
	}
	return d
}

// NewDecoderWithOptions returns a Decoder bounded by opts.
func NewDecoderWithOptions(opts DecoderOptions) (*Decoder, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Decoder{opts: opts}, nil
}

// Decode reads the Arrow IPC stream in data and calls fn for each valid
// event, in row order. fn receives the event by value and owns it: nothing
// in it is reused by the Decoder. (By value rather than by pointer: the
// event is assembled in a local variable, which needs no GC write barriers,
// and there is no lifetime rule to get wrong.) An error from fn stops
// decoding and is returned unchanged.
//
// A row that violates the event contract (the invariants of
// schemas.(*Event).Validate, or a null in a required column) is not passed
// to fn: onInvalid is called with its row index and a *RowError wrapping the
// violation (use errors.As for *schemas.FieldError), and decoding goes on.
// If onInvalid is nil, the first invalid row stops decoding and its
// *RowError is returned.
//
// An unreadable stream — corrupt, truncated, a schema missing a required
// column or typing one wrongly, over the Decoder's limits — returns an error
// matching ErrInvalidStream before fn is called for any row: the whole
// stream is read and checked before the first event is delivered.
//
// data is only read, and only during the call; the events do not alias it.
func (d *Decoder) Decode(data []byte, fn func(e schemas.Event) error, onInvalid func(row int, err error)) error {
	if d.busy {
		panic("arrowcodec: Decoder.Decode called concurrently or from its own callback")
	}
	d.busy = true
	defer func() { d.busy = false }()
	nb, err := d.load(data)
	if err != nil {
		return err
	}
	row := 0
	for bi := 0; bi < nb; bi++ {
		b := &d.batches[bi]
		if err := b.emit(row, fn, onInvalid); err != nil {
			return err
		}
		row += b.n
	}
	return nil
}

// DecodeAll decodes a whole stream strictly: it returns every event, or an
// error for the first invalid row (*RowError) or an unreadable stream
// (ErrInvalidStream). Consumers that must keep the valid rows of a batch
// with an invalid one use Decoder.Decode.
func DecodeAll(data []byte) ([]schemas.Event, error) {
	var out []schemas.Event
	err := NewDecoder().Decode(data, func(e schemas.Event) error {
		out = append(out, e)
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// maxBatches bounds the record batches of one stream: the decoder keeps
// per-batch state until the stream is delivered, and a flood of tiny
// batches would otherwise cost far more memory than its bytes. The Encoder
// writes one; Arrow libraries write one per table chunk.
const maxBatches = 1024

// load reads and checks every message of the stream and prepares its record
// batches; it returns how many.
func (d *Decoder) load(data []byte) (int, error) {
	d.dec.budget, d.dec.limit = d.opts.MaxBytes, d.opts.MaxBytes
	r := msgReader{data: data}
	m := &d.msg
	if err := r.next(m); err != nil {
		if err == io.EOF {
			return 0, invalidf("cannot decode arrow stream: no schema message")
		}
		return 0, invalidf("cannot decode arrow stream: %w", err)
	}
	if m.typ != msgSchema {
		return 0, invalidf("cannot decode arrow stream: first message has type %d, want a schema", m.typ)
	}
	if err := d.useSchema(m); err != nil {
		return 0, err
	}
	for i := range d.dicts {
		d.dicts[i].set = false
	}
	nb, rows := 0, 0
	for {
		err := r.next(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nb, invalidf("cannot decode arrow stream: %w", err)
		}
		switch m.typ {
		case msgDictionaryBatch:
			if err := d.readDictionary(m); err != nil {
				return nb, err
			}
		case msgRecordBatch:
			if nb == maxBatches {
				return nb, invalidf("cannot decode arrow stream: more than %d record batches", maxBatches)
			}
			if nb == len(d.batches) {
				d.batches = append(d.batches, batch{})
			}
			b := &d.batches[nb]
			nb++
			n, err := d.loadBatch(b, m, d.opts.MaxRows-rows)
			if err != nil {
				return nb, err
			}
			rows += n
		default:
			return nb, invalidf("cannot decode arrow stream: unexpected message of type %d at byte %d", m.typ, m.at)
		}
	}
	if r.pos != len(data) {
		return nb, invalidf("cannot decode arrow stream: %d trailing bytes after the end-of-stream marker", len(data)-r.pos)
	}
	return nb, nil
}

// useSchema parses and binds the schema message, or keeps the previous
// stream's when the bytes are the same.
func (d *Decoder) useSchema(m *message) error {
	if d.schemaMeta != nil && bytes.Equal(m.meta, d.schemaMeta) {
		return nil
	}
	d.schemaMeta = nil // cache only a schema that binds
	s, err := parseSchema(m.header)
	if err != nil {
		return invalidf("cannot decode arrow stream: schema: %w", err)
	}
	if s.bigEndian {
		return invalidf("cannot decode arrow stream: big-endian streams are not supported")
	}
	if s.hasVersion && s.version != "1" {
		return invalidf("cannot decode arrow batch: unsupported %s %q, want \"1\"", MetadataSchemaVersion, s.version)
	}
	bind, slotOf, err := bindSchema(s.fields)
	if err != nil {
		return err
	}
	d.schema, d.bind, d.slotOf = s, bind, slotOf
	d.schemaMeta = append(make([]byte, 0, len(m.meta)), m.meta...)
	return nil
}

func (d *Decoder) readDictionary(m *message) error {
	h := m.header
	id := h.i64(0, 0)
	data := h.sub(1)
	delta := h.boolean(2)
	if m.fb.err != nil || !data.present() {
		return invalidf("cannot decode arrow stream: dictionary batch at byte %d: %w", m.at, errCorruptMetadata)
	}
	for slot := range numStrSlots {
		fi := d.bind[slot]
		if fi < 0 || !d.schema.fields[fi].dict || d.schema.fields[fi].dictID != id {
			continue
		}
		f := &d.schema.fields[fi]
		l, length, err := newLoader(data, m.body, &d.dec)
		if err != nil {
			return invalidf("cannot decode arrow stream: dictionary of column %q: %w", f.name, err)
		}
		vf := field{name: f.name, typ: f.typ}
		var a arr
		if err := l.load(&vf, &a, 0); err != nil {
			return invalidf("cannot decode arrow stream: dictionary of column %q: %w", f.name, err)
		}
		if int64(a.n) != length {
			return invalidf("cannot decode arrow stream: dictionary of column %q has %d values, its batch %d", f.name, a.n, length)
		}
		ds := &d.dicts[slot]
		if !delta || !ds.set {
			ds.vals = ds.vals[:0]
		}
		if ds.vals, err = appendStrings(ds.vals, nil, &f.typ, &a); err != nil {
			return invalidf("cannot decode arrow stream: dictionary of column %q: %w", f.name, err)
		}
		if len(ds.vals) > math.MaxInt32-1 {
			return invalidf("cannot decode arrow stream: dictionary of column %q is too large", f.name)
		}
		ds.set = true
	}
	return nil
}

func (d *Decoder) loadBatch(b *batch, m *message, maxRows int) (int, error) {
	l, length, err := newLoader(m.header, m.body, &d.dec)
	if err != nil {
		return 0, invalidf("cannot decode arrow batch at byte %d: %w", m.at, err)
	}
	if length < 0 || length > int64(maxRows) {
		return 0, invalidf("cannot decode arrow stream: more than %d rows (DecoderOptions.MaxRows)", d.opts.MaxRows)
	}
	n := int(length)
	fields := d.schema.fields
	for fi := range fields {
		f := &fields[fi]
		slot := d.slotOf[fi]
		if slot < 0 {
			if err := l.skipField(f, 0, false); err != nil {
				return 0, invalidf("cannot decode arrow batch: column %q: %w", f.name, err)
			}
			continue
		}
		if err := l.load(f, &b.cols[slot], 0); err != nil {
			return 0, invalidf("cannot decode arrow batch: column %q: %w", f.name, err)
		}
		if b.cols[slot].n != n {
			return 0, invalidf("cannot decode arrow batch: column %q has %d rows, the batch %d", f.name, b.cols[slot].n, n)
		}
	}
	// The timestamp column is required and 8 bytes a row: bounding n by its
	// buffer before preparing bounds every allocation proportional to n by
	// the size of the stream.
	if int64(len(b.cols[sTimestamp].b1)) < 8*int64(n) {
		return 0, invalidf("cannot decode arrow batch: column %q holds fewer than %d values", ColTimestamp, n)
	}
	if err := b.prepare(d, n); err != nil {
		return 0, err
	}
	return n, nil
}
