package arrowcodec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// This file reads Arrow IPC metadata and record batches directly from the
// stream's bytes. The arrow library's ipc.Reader copies every buffer and
// builds arrow arrays, schemas and dictionaries per stream; for
// ~1000-row Kafka records that per-stream work cost more than decoding the
// rows. Reading the format directly keeps buffers in place (zero copy when
// uncompressed) and checks every offset, so corrupt input is an error and
// never a panic.

// Flatbuffers type tags (Schema.fbs, union Type).
const (
	tagNull            = 1
	tagInt             = 2
	tagFloat           = 3
	tagBinary          = 4
	tagUtf8            = 5
	tagBool            = 6
	tagDecimal         = 7
	tagDate            = 8
	tagTime            = 9
	tagTimestamp       = 10
	tagInterval        = 11
	tagList            = 12
	tagStruct          = 13
	tagUnion           = 14
	tagFixedSizeBinary = 15
	tagFixedSizeList   = 16
	tagMap             = 17
	tagDuration        = 18
	tagLargeBinary     = 19
	tagLargeUtf8       = 20
	tagLargeList       = 21
	tagRunEndEncoded   = 22
	tagBinaryView      = 23
	tagUtf8View        = 24
	tagListView        = 25
	tagLargeListView   = 26
)

// Time units of Timestamp (Schema.fbs, enum TimeUnit).
const (
	unitSecond = iota
	unitMilli
	unitMicro
	unitNano
)

// maxNesting bounds the depth of nested types (and cycles in corrupt
// metadata).
const maxNesting = 32

// ftype is a parsed Arrow type.
type ftype struct {
	tag       uint8
	bitWidth  int32  // Int
	signed    bool   // Int
	precision int16  // FloatingPoint: 0 half, 1 single, 2 double
	unit      int16  // Timestamp
	tz        string // Timestamp
	dense     bool   // Union
}

// field is a parsed schema field.
type field struct {
	name     string
	typ      ftype
	children []field
	dict     bool  // dictionary-encoded: typ is the value type
	dictID   int64 // when dict
	index    ftype // when dict: the index type (an Int)
}

// schemaInfo is what the decoder needs of a stream's schema.
type schemaInfo struct {
	fields     []field
	version    string // costpipe.schema_version metadata, "" when absent
	hasVersion bool
	bigEndian  bool
}

func parseSchema(t fbTable) (schemaInfo, error) {
	var s schemaInfo
	s.bigEndian = t.i16(0, 0) == 1
	n, start := t.vector(1, 4)
	s.fields = make([]field, n)
	for i := range n {
		if err := parseField(&s.fields[i], t.f.vecTable(start, i), 0); err != nil {
			return s, err
		}
	}
	n, start = t.vector(2, 4)
	for i := range n {
		kv := t.f.vecTable(start, i)
		if string(kv.bytes(0)) == MetadataSchemaVersion {
			s.version, s.hasVersion = string(kv.bytes(1)), true
		}
	}
	if t.f.err != nil {
		return s, t.f.err
	}
	return s, nil
}

func parseType(tag uint8, t fbTable) ftype {
	ty := ftype{tag: tag}
	switch tag {
	case tagInt:
		ty.bitWidth, ty.signed = t.i32(0, 0), t.boolean(1)
	case tagFloat:
		ty.precision = t.i16(0, 0)
	case tagTimestamp:
		ty.unit, ty.tz = t.i16(0, 0), string(t.bytes(1))
	case tagUnion:
		ty.dense = t.i16(0, 0) == 1
	}
	return ty
}

func parseField(f *field, t fbTable, depth int) error {
	if depth > maxNesting {
		return errors.New("types nested too deeply")
	}
	if !t.present() {
		return errCorruptMetadata
	}
	f.name = string(t.bytes(0))
	f.typ = parseType(t.u8(2, 0), t.sub(3))
	if de := t.sub(4); de.present() {
		f.dict = true
		f.dictID = de.i64(0, 0)
		f.index = parseType(tagInt, de.sub(1))
		if !de.sub(1).present() { // default index type: int32
			f.index = ftype{tag: tagInt, bitWidth: 32, signed: true}
		}
	}
	n, start := t.vector(5, 4)
	if n > 0 {
		f.children = make([]field, n)
		for i := range n {
			if err := parseField(&f.children[i], t.f.vecTable(start, i), depth+1); err != nil {
				return err
			}
		}
	}
	return t.f.err
}

// typeName spells a type like arrow does, for error messages.
func typeName(f *field) string {
	if f.dict {
		return "dictionary<" + ftypeName(&f.index, nil) + ", " + ftypeName(&f.typ, f.children) + ">"
	}
	return ftypeName(&f.typ, f.children)
}

func ftypeName(t *ftype, children []field) string {
	child := func(i int) string {
		if i < len(children) {
			return typeName(&children[i])
		}
		return "?"
	}
	switch t.tag {
	case tagNull:
		return "null"
	case tagInt:
		name := "int"
		if !t.signed {
			name = "uint"
		}
		return name + strconv.Itoa(int(t.bitWidth))
	case tagFloat:
		return [...]string{"float16", "float32", "float64"}[min(max(t.precision, 0), 2)]
	case tagBinary:
		return "binary"
	case tagUtf8:
		return "utf8"
	case tagBool:
		return "bool"
	case tagDecimal:
		return "decimal"
	case tagDate:
		return "date"
	case tagTime:
		return "time"
	case tagTimestamp:
		unit := "unit?"
		if t.unit >= 0 && t.unit <= unitNano {
			unit = [...]string{"s", "ms", "us", "ns"}[t.unit]
		}
		if t.tz == "" {
			return "timestamp[" + unit + "]"
		}
		return "timestamp[" + unit + ", tz=" + t.tz + "]"
	case tagInterval:
		return "interval"
	case tagList:
		return "list<" + child(0) + ">"
	case tagStruct:
		names := make([]string, len(children))
		for i := range children {
			names[i] = children[i].name + ": " + typeName(&children[i])
		}
		return "struct<" + strings.Join(names, ", ") + ">"
	case tagUnion:
		return "union"
	case tagFixedSizeBinary:
		return "fixed_size_binary"
	case tagFixedSizeList:
		return "fixed_size_list<" + child(0) + ">"
	case tagMap:
		if len(children) == 1 && len(children[0].children) == 2 {
			return "map<" + typeName(&children[0].children[0]) + ", " + typeName(&children[0].children[1]) + ">"
		}
		return "map"
	case tagDuration:
		return "duration"
	case tagLargeBinary:
		return "large_binary"
	case tagLargeUtf8:
		return "large_utf8"
	case tagLargeList:
		return "large_list<" + child(0) + ">"
	case tagRunEndEncoded:
		return "run_end_encoded"
	case tagBinaryView:
		return "binary_view"
	case tagUtf8View:
		return "string_view"
	case tagListView:
		return "list_view<" + child(0) + ">"
	case tagLargeListView:
		return "large_list_view<" + child(0) + ">"
	}
	return "type #" + strconv.Itoa(int(t.tag))
}

// arr is one array of a record batch with its buffers resolved: slices of
// the message body (or decompressed copies).
type arr struct {
	n        int
	valid    []byte // validity bitmap; nil when the array has no nulls
	b1       []byte // values, offsets or views
	b2       []byte // string data
	views    [][]byte
	children []arr
}

// Compression codecs (Message.fbs, enum CompressionType).
const (
	codecNone = -1
	codecLZ4  = 0
	codecZSTD = 1
)

// loader walks the nodes and buffers of one RecordBatch in schema order.
type loader struct {
	fb                  *fbuf
	nNodes, nodes       int
	nBufs, bufs         int
	nVariadic, variadic int
	inode, ibuf, ivar   int
	body                []byte
	codec               int
	dec                 *decompressor
}

func newLoader(rb fbTable, body []byte, dec *decompressor) (loader, int64, error) {
	l := loader{fb: rb.f, body: body, codec: codecNone, dec: dec}
	if !rb.present() {
		return l, 0, errCorruptMetadata
	}
	length := rb.i64(0, 0)
	l.nNodes, l.nodes = rb.vector(1, 16)
	l.nBufs, l.bufs = rb.vector(2, 16)
	if c := rb.sub(3); c.present() {
		l.codec = int(int8(c.u8(0, 0)))
		if l.codec != codecLZ4 && l.codec != codecZSTD {
			return l, 0, fmt.Errorf("unknown compression codec %d", l.codec)
		}
		if method := c.u8(1, 0); method != 0 {
			return l, 0, fmt.Errorf("unknown compression method %d", method)
		}
	}
	l.nVariadic, l.variadic = rb.vector(4, 8)
	if rb.f.err != nil {
		return l, 0, rb.f.err
	}
	return l, length, nil
}

func (l *loader) node() (length, nulls int64, err error) {
	if l.inode >= l.nNodes {
		return 0, 0, errors.New("fewer field nodes than the schema needs")
	}
	p := l.nodes + 16*l.inode
	l.inode++
	length, nulls = l.fb.i64At(p), l.fb.i64At(p+8)
	if length < 0 || length > 1<<31-1 || nulls < 0 || nulls > length {
		return 0, 0, fmt.Errorf("field node %d: length %d, null count %d", l.inode-1, length, nulls)
	}
	return length, nulls, nil
}

func (l *loader) skipBuffers(n int) error {
	if l.ibuf+n > l.nBufs {
		return errors.New("fewer buffers than the schema needs")
	}
	l.ibuf += n
	return nil
}

func (l *loader) buffer() ([]byte, error) {
	if l.ibuf >= l.nBufs {
		return nil, errors.New("fewer buffers than the schema needs")
	}
	p := l.bufs + 16*l.ibuf
	l.ibuf++
	off, n := l.fb.i64At(p), l.fb.i64At(p+8)
	if off < 0 || n < 0 || off > int64(len(l.body)) || n > int64(len(l.body))-off {
		return nil, fmt.Errorf("buffer %d at [%d, +%d) outside the %d-byte body", l.ibuf-1, off, n, len(l.body))
	}
	b := l.body[off : off+n : off+n]
	if l.codec == codecNone || n == 0 {
		return b, nil
	}
	if n < 8 {
		return nil, fmt.Errorf("compressed buffer %d shorter than its length prefix", l.ibuf-1)
	}
	size := int64(binary.LittleEndian.Uint64(b))
	if size == -1 {
		return b[8:], nil
	}
	return l.dec.decompress(l.codec, b[8:], size)
}

// validity returns the bitmap of an array of n slots with nulls nulls.
func (l *loader) validity(n, nulls int64) ([]byte, error) {
	if nulls == 0 {
		return nil, l.skipBuffers(1)
	}
	b, err := l.buffer()
	if err != nil {
		return nil, err
	}
	if int64(len(b))*8 < n {
		return nil, fmt.Errorf("validity bitmap of %d bytes for %d slots", len(b), n)
	}
	return b, nil
}

// load reads the array of field f (the indices when f is dictionary-encoded).
func (l *loader) load(f *field, a *arr, depth int) error {
	if depth > maxNesting {
		return errors.New("types nested too deeply")
	}
	n, nulls, err := l.node()
	if err != nil {
		return err
	}
	*a = arr{n: int(n), children: a.children[:0], views: a.views[:0]}
	tag := f.typ.tag
	if f.dict {
		tag = tagInt
	}
	if a.valid, err = l.validity(n, nulls); err != nil {
		return err
	}
	switch tag {
	case tagUtf8, tagBinary, tagLargeUtf8, tagLargeBinary:
		if a.b1, err = l.buffer(); err != nil {
			return err
		}
		a.b2, err = l.buffer()
		return err
	case tagUtf8View, tagBinaryView:
		if a.b1, err = l.buffer(); err != nil {
			return err
		}
		if l.ivar >= l.nVariadic {
			return errors.New("missing variadic buffer count")
		}
		nv := l.fb.i64At(l.variadic + 8*l.ivar)
		l.ivar++
		if nv < 0 || nv > int64(l.nBufs-l.ibuf) {
			return fmt.Errorf("variadic buffer count %d", nv)
		}
		for range nv {
			b, err := l.buffer()
			if err != nil {
				return err
			}
			a.views = append(a.views, b)
		}
		return nil
	case tagMap, tagList, tagLargeList:
		if a.b1, err = l.buffer(); err != nil {
			return err
		}
	case tagStruct:
	case tagInt, tagFloat, tagTimestamp:
		a.b1, err = l.buffer()
		return err
	default: // bindSchema only lets the types above through
		return fmt.Errorf("cannot load a %s array", typeName(f))
	}
	if cap(a.children) < len(f.children) {
		a.children = make([]arr, len(f.children))
	}
	a.children = a.children[:len(f.children)]
	for i := range f.children {
		if err := l.load(&f.children[i], &a.children[i], depth+1); err != nil {
			return err
		}
	}
	return nil
}

// skipField consumes the nodes and buffers of a field the decoder does not
// read; nodeDone says its own node was already consumed.
func (l *loader) skipField(f *field, depth int, nodeDone bool) error {
	if depth > maxNesting {
		return errors.New("types nested too deeply")
	}
	if !nodeDone {
		if _, _, err := l.node(); err != nil {
			return err
		}
	}
	if f.dict {
		return l.skipBuffers(2)
	}
	var bufs int
	switch f.typ.tag {
	case tagNull, tagRunEndEncoded:
	case tagUnion:
		bufs = 1
		if f.typ.dense {
			bufs = 2
		}
	case tagUtf8, tagBinary, tagLargeUtf8, tagLargeBinary, tagListView, tagLargeListView:
		bufs = 3
	case tagUtf8View, tagBinaryView:
		if l.ivar >= l.nVariadic {
			return errors.New("missing variadic buffer count")
		}
		nv := l.fb.i64At(l.variadic + 8*l.ivar)
		l.ivar++
		if nv < 0 || nv > int64(l.nBufs) {
			return fmt.Errorf("variadic buffer count %d", nv)
		}
		bufs = 2 + int(nv)
	case tagStruct, tagFixedSizeList:
		bufs = 1
	case tagInt, tagFloat, tagBool, tagDecimal, tagDate, tagTime, tagTimestamp, tagInterval,
		tagFixedSizeBinary, tagDuration, tagList, tagLargeList, tagMap:
		bufs = 2
	default:
		return fmt.Errorf("column %q has an unknown type tag %d", f.name, f.typ.tag)
	}
	if err := l.skipBuffers(bufs); err != nil {
		return err
	}
	for i := range f.children {
		if err := l.skipField(&f.children[i], depth+1, false); err != nil {
			return err
		}
	}
	return nil
}

// decompressor decompresses IPC body buffers within a byte budget.
type decompressor struct {
	budget int64 // bytes still allowed for this stream
	limit  int64
	zstd   *zstd.Decoder
	lz4    *lz4.Reader
	src    bytes.Reader
}

func (d *decompressor) decompress(codec int, src []byte, size int64) ([]byte, error) {
	if size < 0 || size > d.budget {
		return nil, fmt.Errorf("compressed buffer declares %d bytes, more than the %d-byte limit (DecoderOptions.MaxBytes)", size, d.limit)
	}
	d.budget -= size
	dst := make([]byte, size)
	d.src.Reset(src)
	var r io.Reader
	switch codec {
	case codecLZ4:
		if d.lz4 == nil {
			d.lz4 = lz4.NewReader(nil)
		}
		d.lz4.Reset(&d.src)
		r = d.lz4
	case codecZSTD:
		if d.zstd == nil {
			zd, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxMemory(uint64(d.limit)), zstd.WithDecoderMaxWindow(64<<20))
			if err != nil {
				return nil, err
			}
			d.zstd = zd
		}
		if err := d.zstd.Reset(&d.src); err != nil {
			return nil, err
		}
		r = d.zstd
	}
	if _, err := io.ReadFull(r, dst); err != nil {
		return nil, fmt.Errorf("cannot decompress buffer: %w", err)
	}
	return dst, nil
}
