package warehouse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// The insert path writes each input column of a batch in ClickHouse's Native
// format, the layout of a column in a block on the wire, and hands it to the
// driver's column through Decode, as if the server had sent it. The driver
// then holds every column in one allocation of its exact size.
//
// The alternative, the driver's Append, converts value by value (each
// histogram element passes through an interface) and grows every column
// from empty by appending: a catch-up flush of 10k–40k rows allocated about
// 5 KiB per row that way, most of it slices abandoned by their own growth,
// and the fresh memory cost page faults on every flush (docs/BENCHMARKS.md).
//
// The formats used, all little-endian:
//   - UInt32, Int32, UInt64, Int64: the fixed-width integer;
//   - DateTime: seconds since the epoch as UInt32;
//   - Decimal(38, S): the scaled value as a 128-bit two's complement
//     integer, low word first;
//   - String: the length as an unsigned LEB128 varint, then the bytes;
//   - Array(T): the cumulative end offset of every row as UInt64, then all
//     elements of all rows in T's format.

// nativeBuf holds the encoding of one column while the driver decodes it,
// and the reader the driver decodes it from (its 128 KiB read buffer is
// made once, not once per column).
type nativeBuf struct {
	sync.Mutex
	buf []byte
	src bytes.Reader
	r   *proto.Reader // reads src; nil until first used and after an error
}

// decode fills c with the rows encoded in buf, which must hold exactly
// that: bytes left over are an error (an encoder that disagrees with the
// column's type).
func (n *nativeBuf) decode(c column.Interface, rows int) error {
	n.src.Reset(n.buf)
	if n.r == nil {
		n.r = proto.NewReader(&n.src)
	}
	if err := c.Decode(n.r, rows); err != nil {
		n.r = nil // it may hold the rest of this column
		return err
	}
	if _, err := n.r.ReadByte(); !errors.Is(err, io.EOF) {
		n.r = nil
		return fmt.Errorf("%d bytes encoded, fewer decoded", len(n.buf))
	}
	return nil
}

// nativeFn encodes one column of rows in Native format.
type nativeFn struct {
	size func(rows []Rollup) int              // the exact length of the encoding
	put  func(rows []Rollup, b []byte) []byte // appends the encoding to b
}

// encode appends the column's encoding to b, after growing b once by its
// exact size: appended value by value, a buffer too small for the column
// would grow by a quarter at a time, copying it into fresh memory again and
// again (on the first flush of a catch-up that was most of the flush's CPU).
func (n nativeFn) encode(rows []Rollup, b []byte) []byte {
	return n.put(rows, slices.Grow(b, n.size(rows)))
}

// nativeOf returns the Native encoder of a column whose value f reads from a
// row. It panics for a type it cannot encode: a programming error in the
// column list, caught by any test that loads the package.
func nativeOf[T any](f func(r *Rollup) T) nativeFn {
	le := binary.LittleEndian
	switch f := any(f).(type) {
	case func(*Rollup) uint64:
		return nativeEach(f, 8, le.AppendUint64)
	case func(*Rollup) int64:
		return nativeEach(f, 8, func(b []byte, v int64) []byte { return le.AppendUint64(b, uint64(v)) })
	case func(*Rollup) uint32:
		return nativeEach(f, 4, le.AppendUint32)
	case func(*Rollup) int32:
		return nativeEach(f, 4, func(b []byte, v int32) []byte { return le.AppendUint32(b, uint32(v)) })
	case func(*Rollup) time.Time:
		// checkTime has refused times outside DateTime's range.
		return nativeEach(f, 4, func(b []byte, v time.Time) []byte { return le.AppendUint32(b, uint32(v.Unix())) })
	case func(*Rollup) string:
		return nativeString(f)
	case func(*Rollup) pricing.Pico:
		return nativeEach(f, 16, func(b []byte, v pricing.Pico) []byte {
			hi, lo := v.Int128()
			return le.AppendUint64(le.AppendUint64(b, lo), uint64(hi))
		})
	case func(*Rollup) []int16:
		return nativeArray(f, 2, func(b []byte, v int16) []byte { return le.AppendUint16(b, uint16(v)) })
	case func(*Rollup) []uint64:
		return nativeArray(f, 8, le.AppendUint64)
	}
	var zero T
	panic(fmt.Sprintf("warehouse: no Native encoding for a column of %T", zero))
}

// nativeEach encodes a column of fixed layout, width bytes per value: each
// row's value in turn.
func nativeEach[V any](f func(*Rollup) V, width int, put func([]byte, V) []byte) nativeFn {
	return nativeFn{
		size: func(rows []Rollup) int { return width * len(rows) },
		put: func(rows []Rollup, b []byte) []byte {
			for i := range rows {
				b = put(b, f(&rows[i]))
			}
			return b
		},
	}
}

// nativeString encodes a String column: each row's length, then its bytes.
func nativeString(f func(*Rollup) string) nativeFn {
	return nativeFn{
		size: func(rows []Rollup) int {
			n := 0
			for i := range rows {
				v := f(&rows[i])
				n += uvarintLen(uint64(len(v))) + len(v)
			}
			return n
		},
		put: func(rows []Rollup, b []byte) []byte {
			for i := range rows {
				v := f(&rows[i])
				b = append(binary.AppendUvarint(b, uint64(len(v))), v...)
			}
			return b
		},
	}
}

// uvarintLen is the length of v's unsigned LEB128 encoding.
func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// nativeArray encodes an Array column of elements width bytes wide: the
// offsets, then the elements.
func nativeArray[E any](f func(*Rollup) []E, width int, elem func([]byte, E) []byte) nativeFn {
	return nativeFn{
		size: func(rows []Rollup) int {
			n := 0
			for i := range rows {
				n += len(f(&rows[i]))
			}
			return 8*len(rows) + width*n
		},
		put: func(rows []Rollup, b []byte) []byte {
			end := uint64(0)
			for i := range rows {
				end += uint64(len(f(&rows[i])))
				b = binary.LittleEndian.AppendUint64(b, end)
			}
			for i := range rows {
				for _, v := range f(&rows[i]) {
					b = elem(b, v)
				}
			}
			return b
		},
	}
}

// checkTime reports a bucket start that a DateTime column cannot hold.
func checkTime(r *Rollup) error {
	if s := r.TS.Unix(); s < 0 || s > math.MaxUint32 {
		return fmt.Errorf("bucket start %s of %s is outside ClickHouse's DateTime range (1970 to 2106)", r.TS.UTC().Format(time.RFC3339), r.Tenant)
	}
	return nil
}
