package arrowcodec

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"unsafe"
)

// This file turns loaded arrays into plain Go slices. Every length and
// offset is checked against the buffers before use, so a corrupt stream is
// an error, never an out-of-range read.
//
// Fixed-width buffers are reinterpreted in place ([]byte → []int64, ...).
// Their address inside a Kafka record value may be unaligned; costpipe
// targets amd64 and arm64, where unaligned loads are legal, and the element
// types hold no pointers, so the conversion is sound.

func castSlice[T any](b []byte) []T {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if len(b) < size {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/size)
}

// fixedValues returns the first n values of buffer b as a []T.
func fixedValues[T any](b []byte, n int) ([]T, error) {
	if n == 0 {
		return nil, nil
	}
	vals := castSlice[T](b)
	if len(vals) < n {
		return nil, fmt.Errorf("values buffer holds %d values, %d needed", len(vals), n)
	}
	return vals[:n:n], nil
}

// validity is a null bitmap already checked to cover the array; nil means
// no nulls.
type validity []byte

func (v validity) valid(i int) bool {
	return v == nil || v[i>>3]&(1<<(i&7)) != 0
}

// checkOffsets checks that o (n+1 offsets) never decreases and stays within
// a data buffer of size bytes.
func checkOffsets[O int32 | int64](o []O, size int) error {
	start, end := o[0], o[len(o)-1]
	if start < 0 || end < start || int64(end) > int64(size) {
		return fmt.Errorf("string offsets [%d, %d] outside the %d-byte data buffer", start, end, size)
	}
	prev := start
	for _, x := range o[1:] {
		if x < prev {
			return fmt.Errorf("offsets decrease (%d after %d)", x, prev)
		}
		prev = x
	}
	return nil
}

// appendStrings appends the n strings of a utf8, large_utf8 or string_view
// array to dst; nulls read as "" and, when nulls is not nil, are flagged in
// *nulls. The strings are copied out of the stream into one new allocation
// per call (they outlive the stream), then sliced.
func appendStrings(dst []string, nulls *[]bool, t *ftype, a *arr) ([]string, error) {
	n := a.n
	if n == 0 {
		return dst, nil
	}
	v := validity(a.valid)
	if nulls != nil {
		for i := 0; i < n; i++ {
			*nulls = append(*nulls, !v.valid(i))
		}
	}
	switch t.tag {
	case tagUtf8, tagBinary:
		offs, err := fixedValues[int32](a.b1, n+1)
		if err != nil {
			return dst, err
		}
		return appendOffsetStrings(dst, offs, a.b2, v)
	case tagLargeUtf8, tagLargeBinary:
		offs, err := fixedValues[int64](a.b1, n+1)
		if err != nil {
			return dst, err
		}
		return appendOffsetStrings(dst, offs, a.b2, v)
	case tagUtf8View, tagBinaryView:
		return appendViewStrings(dst, a, v)
	}
	return dst, fmt.Errorf("%s is not a string type", ftypeName(t, nil))
}

func appendOffsetStrings[O int32 | int64](dst []string, o []O, data []byte, v validity) ([]string, error) {
	if err := checkOffsets(o, len(data)); err != nil {
		return dst, err
	}
	start := o[0]
	arena := string(data[start:o[len(o)-1]])
	for i := 0; i < len(o)-1; i++ {
		if !v.valid(i) {
			dst = append(dst, "")
			continue
		}
		dst = append(dst, arena[o[i]-start:o[i+1]-start])
	}
	return dst, nil
}

// viewBytes returns the bytes of view i of a string_view array.
func viewBytes(a *arr, views []byte, i int) ([]byte, error) {
	h := views[16*i : 16*i+16]
	l := int32(binary.LittleEndian.Uint32(h))
	if l < 0 {
		return nil, fmt.Errorf("view %d has length %d", i, l)
	}
	if l <= 12 {
		return h[4 : 4+l], nil
	}
	bi := int32(binary.LittleEndian.Uint32(h[8:]))
	off := int32(binary.LittleEndian.Uint32(h[12:]))
	if bi < 0 || int(bi) >= len(a.views) || off < 0 || int64(off)+int64(l) > int64(len(a.views[bi])) {
		return nil, fmt.Errorf("view %d points outside its data buffers", i)
	}
	return a.views[bi][off : off+l], nil
}

func appendViewStrings(dst []string, a *arr, v validity) ([]string, error) {
	n := a.n
	if int64(len(a.b1)) < 16*int64(n) {
		return dst, fmt.Errorf("views buffer of %d bytes for %d views", len(a.b1), n)
	}
	total := 0
	for i := 0; i < n; i++ {
		if !v.valid(i) {
			continue
		}
		b, err := viewBytes(a, a.b1, i)
		if err != nil {
			return dst, err
		}
		total += len(b)
	}
	buf := make([]byte, 0, total)
	for i := 0; i < n; i++ {
		if v.valid(i) {
			b, _ := viewBytes(a, a.b1, i)
			buf = append(buf, b...)
		}
	}
	arena, pos := unsafe.String(unsafe.SliceData(buf), len(buf)), 0 // buf is never written again
	for i := 0; i < n; i++ {
		if !v.valid(i) {
			dst = append(dst, "")
			continue
		}
		b, _ := viewBytes(a, a.b1, i)
		dst = append(dst, arena[pos:pos+len(b)])
		pos += len(b)
	}
	return dst, nil
}

// appendInts appends the n values of an integer array to dst as int64,
// nulls as 0. uint64 values above MaxInt64 saturate (they are invalid token
// counts either way).
func appendInts(dst []int64, t *ftype, a *arr) ([]int64, error) {
	v := validity(a.valid)
	switch {
	case t.tag != tagInt:
	case t.signed && t.bitWidth == 8:
		return widen(dst, a, v, func(x int8) int64 { return int64(x) })
	case t.signed && t.bitWidth == 16:
		return widen(dst, a, v, func(x int16) int64 { return int64(x) })
	case t.signed && t.bitWidth == 32:
		return widen(dst, a, v, func(x int32) int64 { return int64(x) })
	case t.signed && t.bitWidth == 64:
		return widen(dst, a, v, func(x int64) int64 { return x })
	case !t.signed && t.bitWidth == 8:
		return widen(dst, a, v, func(x uint8) int64 { return int64(x) })
	case !t.signed && t.bitWidth == 16:
		return widen(dst, a, v, func(x uint16) int64 { return int64(x) })
	case !t.signed && t.bitWidth == 32:
		return widen(dst, a, v, func(x uint32) int64 { return int64(x) })
	case !t.signed && t.bitWidth == 64:
		return widen(dst, a, v, func(x uint64) int64 { return int64(min(x, math.MaxInt64)) })
	}
	return dst, fmt.Errorf("%s is not an integer type", ftypeName(t, nil))
}

// appendFloats appends the n values of a float or integer array to dst as
// float64, nulls as 0.
func appendFloats(dst []float64, t *ftype, a *arr) ([]float64, error) {
	v := validity(a.valid)
	if t.tag == tagFloat {
		switch t.precision {
		case 1:
			return widen(dst, a, v, func(x float32) float64 { return float64(x) })
		case 2:
			return widen(dst, a, v, func(x float64) float64 { return x })
		}
		return dst, fmt.Errorf("%s is not a supported float type", ftypeName(t, nil))
	}
	start := len(dst)
	ints, err := appendInts(nil, t, a)
	if err != nil {
		return dst[:start], err
	}
	for _, x := range ints {
		dst = append(dst, float64(x))
	}
	return dst, nil
}

func widen[T, U any](dst []U, a *arr, v validity, conv func(T) U) ([]U, error) {
	vals, err := fixedValues[T](a.b1, a.n)
	if err != nil {
		return dst, err
	}
	var zero U
	for i, x := range vals {
		if !v.valid(i) {
			dst = append(dst, zero)
			continue
		}
		dst = append(dst, conv(x))
	}
	return dst, nil
}

// resolveIndices returns the dictionary indices of a (index type t) as
// int32: in place for int32 indices without nulls, else converted into buf
// with null slots set to nullIdx. An index outside [0, dictLen) in a valid
// slot is an error.
func resolveIndices(buf []int32, t *ftype, a *arr, dictLen int, nullIdx int32) (idx, newBuf []int32, err error) {
	v := validity(a.valid)
	n := a.n
	if t.signed && t.bitWidth == 32 {
		vals, err := fixedValues[int32](a.b1, n)
		if err != nil {
			return nil, buf, err
		}
		// Indices compare as uint32, so negative ones count as huge; hi
		// stays -1 when every slot is null.
		hi := int64(-1)
		if v == nil {
			if n > 0 {
				hi = int64(maxUint32(vals))
			}
			idx = vals
		} else {
			buf = slices.Grow(buf[:0], n)[:n]
			for i := 0; i < n; i += 8 {
				end := min(i+8, n)
				switch v[i>>3] {
				case 0xff:
					copy(buf[i:end], vals[i:end])
					if end > i {
						hi = max(hi, int64(maxUint32(vals[i:end])))
					}
				case 0:
					for k := i; k < end; k++ {
						buf[k] = nullIdx
					}
				default:
					for k := i; k < end; k++ {
						x := vals[k]
						if v[k>>3]&(1<<(k&7)) == 0 {
							x = nullIdx
						} else {
							hi = max(hi, int64(uint32(x)))
						}
						buf[k] = x
					}
				}
			}
			idx = buf
		}
		if hi >= int64(dictLen) {
			return nil, buf, fmt.Errorf("dictionary index %d out of range (dictionary has %d values)", int32(uint32(hi)), dictLen)
		}
		return idx, buf, nil
	}
	ints, err := appendInts(nil, t, a)
	if err != nil {
		return nil, buf, err
	}
	buf = buf[:0]
	for i, x := range ints {
		if !v.valid(i) {
			buf = append(buf, nullIdx)
			continue
		}
		if x < 0 || x >= int64(dictLen) {
			return nil, buf, fmt.Errorf("dictionary index %d out of range (dictionary has %d values)", x, dictLen)
		}
		buf = append(buf, int32(x))
	}
	return buf, buf, nil
}

// maxUint32 returns the largest of vals (not empty) read as uint32, with
// four independent accumulators.
func maxUint32(vals []int32) uint32 {
	var m0, m1, m2, m3 uint32
	i := 0
	for ; i+4 <= len(vals); i += 4 {
		m0 = max(m0, uint32(vals[i]))
		m1 = max(m1, uint32(vals[i+1]))
		m2 = max(m2, uint32(vals[i+2]))
		m3 = max(m3, uint32(vals[i+3]))
	}
	for ; i < len(vals); i++ {
		m0 = max(m0, uint32(vals[i]))
	}
	return max(m0, m1, m2, m3)
}

// isPrintableASCII reports whether every byte of b is printable ASCII
// (0x20–0x7E), so any slice of b passes schemas.ValidText. It looks at eight
// bytes at a time: a byte is flagged when it is ≥ 0x80 (w), 0x7F (w+1
// reaches 0x80) or < 0x20 (w−0x20 borrows).
func isPrintableASCII(b []byte) bool {
	const lsb = 0x0101010101010101
	var acc uint64
	i := 0
	for ; i+16 <= len(b); i += 16 {
		w0, w1 := binary.LittleEndian.Uint64(b[i:]), binary.LittleEndian.Uint64(b[i+8:])
		acc |= w0 | (w0 + lsb) | ((w0 - lsb*0x20) &^ w0) | w1 | (w1 + lsb) | ((w1 - lsb*0x20) &^ w1)
	}
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		acc |= w | (w + lsb) | ((w - lsb*0x20) &^ w)
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return acc&0x8080808080808080 == 0
}
