package arrowcodec

import (
	"encoding/binary"
	"errors"
)

// A minimal, bounds-checked reader of the flatbuffers tables of Arrow IPC
// metadata (format/Schema.fbs, Message.fbs). arrow's generated accessors
// trust their input and panic on a corrupt offset; these record the first
// problem in fbuf.err and return zero values, so a stream is checked once
// after parsing instead of at every access.

var errCorruptMetadata = errors.New("corrupt flatbuffers metadata")

type fbuf struct {
	b   []byte
	err error
}

func (f *fbuf) fail() {
	if f.err == nil {
		f.err = errCorruptMetadata
	}
}

func (f *fbuf) u32(p int) (uint32, bool) {
	if p < 0 || p > len(f.b)-4 {
		f.fail()
		return 0, false
	}
	return binary.LittleEndian.Uint32(f.b[p:]), true
}

// root returns the root table.
func (f *fbuf) root() fbTable {
	off, ok := f.u32(0)
	if !ok {
		return fbTable{}
	}
	return f.table(int(off))
}

// table returns the table starting at p.
func (f *fbuf) table(p int) fbTable {
	so, ok := f.u32(p)
	if !ok {
		return fbTable{}
	}
	vt := p - int(int32(so))
	if vt < 0 || vt > len(f.b)-4 {
		f.fail()
		return fbTable{}
	}
	vlen := int(binary.LittleEndian.Uint16(f.b[vt:]))
	if vlen < 4 || vlen&1 != 0 || vt+vlen > len(f.b) {
		f.fail()
		return fbTable{}
	}
	return fbTable{f: f, pos: p, vt: vt, vlen: vlen}
}

// fbTable is one table; the zero value is an absent table whose fields all
// read as their defaults.
type fbTable struct {
	f    *fbuf
	pos  int
	vt   int
	vlen int
}

func (t fbTable) present() bool { return t.f != nil }

// field returns the position of field slot's value of size bytes, or -1
// when the field is absent (or out of bounds, which is recorded).
func (t fbTable) field(slot, size int) int {
	if t.f == nil {
		return -1
	}
	o := 4 + 2*slot
	if o+2 > t.vlen {
		return -1
	}
	fo := int(binary.LittleEndian.Uint16(t.f.b[t.vt+o:]))
	if fo == 0 {
		return -1
	}
	p := t.pos + fo
	if p > len(t.f.b)-size {
		t.f.fail()
		return -1
	}
	return p
}

func (t fbTable) u8(slot int, def uint8) uint8 {
	if p := t.field(slot, 1); p >= 0 {
		return t.f.b[p]
	}
	return def
}

func (t fbTable) boolean(slot int) bool { return t.u8(slot, 0) != 0 }

func (t fbTable) i16(slot int, def int16) int16 {
	if p := t.field(slot, 2); p >= 0 {
		return int16(binary.LittleEndian.Uint16(t.f.b[p:]))
	}
	return def
}

func (t fbTable) i32(slot int, def int32) int32 {
	if p := t.field(slot, 4); p >= 0 {
		return int32(binary.LittleEndian.Uint32(t.f.b[p:]))
	}
	return def
}

func (t fbTable) i64(slot int, def int64) int64 {
	if p := t.field(slot, 8); p >= 0 {
		return int64(binary.LittleEndian.Uint64(t.f.b[p:]))
	}
	return def
}

// indirect follows the uoffset stored in field slot; -1 when absent.
func (t fbTable) indirect(slot int) int {
	p := t.field(slot, 4)
	if p < 0 {
		return -1
	}
	off, _ := t.f.u32(p)
	q := p + int(off)
	if q < p || q > len(t.f.b) {
		t.f.fail()
		return -1
	}
	return q
}

// sub returns the table in field slot (absent table when missing).
func (t fbTable) sub(slot int) fbTable {
	p := t.indirect(slot)
	if p < 0 {
		return fbTable{}
	}
	return t.f.table(p)
}

// bytes returns the string in field slot, aliasing the buffer.
func (t fbTable) bytes(slot int) []byte {
	p := t.indirect(slot)
	if p < 0 {
		return nil
	}
	n, ok := t.f.u32(p)
	if !ok || int64(n) > int64(len(t.f.b)-p-4) {
		t.f.fail()
		return nil
	}
	return t.f.b[p+4 : p+4+int(n)]
}

// vector returns the element count and first element position of the
// vector in field slot, whose elements are elemSize bytes each.
func (t fbTable) vector(slot, elemSize int) (n, start int) {
	p := t.indirect(slot)
	if p < 0 {
		return 0, 0
	}
	c, ok := t.f.u32(p)
	if !ok || int64(c)*int64(elemSize) > int64(len(t.f.b)-p-4) {
		t.f.fail()
		return 0, 0
	}
	return int(c), p + 4
}

// vecTable returns element i of a vector of tables starting at start.
func (f *fbuf) vecTable(start, i int) fbTable {
	p := start + 4*i
	off, ok := f.u32(p)
	if !ok {
		return fbTable{}
	}
	q := p + int(off)
	if q < p {
		f.fail()
		return fbTable{}
	}
	return f.table(q)
}

func (f *fbuf) i64At(p int) int64 {
	if p < 0 || p > len(f.b)-8 {
		f.fail()
		return 0
	}
	return int64(binary.LittleEndian.Uint64(f.b[p:]))
}
