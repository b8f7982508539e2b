package warehouse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
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

// nativeFn appends the Native encoding of one column of rows to b.
type nativeFn func(rows []Rollup, b []byte) []byte

// nativeOf returns the Native encoder of a column whose value f reads from a
// row. It panics for a type it cannot encode: a programming error in the
// column list, caught by any test that loads the package.
func nativeOf[T any](f func(r *Rollup) T) nativeFn {
	le := binary.LittleEndian
	switch f := any(f).(type) {
	case func(*Rollup) uint64:
		return nativeEach(f, le.AppendUint64)
	case func(*Rollup) int64:
		return nativeEach(f, func(b []byte, v int64) []byte { return le.AppendUint64(b, uint64(v)) })
	case func(*Rollup) uint32:
		return nativeEach(f, le.AppendUint32)
	case func(*Rollup) int32:
		return nativeEach(f, func(b []byte, v int32) []byte { return le.AppendUint32(b, uint32(v)) })
	case func(*Rollup) time.Time:
		// checkTime has refused times outside DateTime's range.
		return nativeEach(f, func(b []byte, v time.Time) []byte { return le.AppendUint32(b, uint32(v.Unix())) })
	case func(*Rollup) string:
		return nativeEach(f, func(b []byte, v string) []byte { return append(binary.AppendUvarint(b, uint64(len(v))), v...) })
	case func(*Rollup) pricing.Pico:
		return nativeEach(f, func(b []byte, v pricing.Pico) []byte {
			hi, lo := v.Int128()
			return le.AppendUint64(le.AppendUint64(b, lo), uint64(hi))
		})
	case func(*Rollup) []int16:
		return nativeArray(f, func(b []byte, v int16) []byte { return le.AppendUint16(b, uint16(v)) })
	case func(*Rollup) []uint64:
		return nativeArray(f, le.AppendUint64)
	}
	var zero T
	panic(fmt.Sprintf("warehouse: no Native encoding for a column of %T", zero))
}

// nativeEach encodes a column of fixed layout: each row's value in turn.
func nativeEach[V any](f func(*Rollup) V, put func([]byte, V) []byte) nativeFn {
	return func(rows []Rollup, b []byte) []byte {
		for i := range rows {
			b = put(b, f(&rows[i]))
		}
		return b
	}
}

// nativeArray encodes an Array column: the offsets, then the elements.
func nativeArray[E any](f func(*Rollup) []E, elem func([]byte, E) []byte) nativeFn {
	return func(rows []Rollup, b []byte) []byte {
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
	}
}

// checkTime reports a bucket start that a DateTime column cannot hold.
func checkTime(r *Rollup) error {
	if s := r.TS.Unix(); s < 0 || s > math.MaxUint32 {
		return fmt.Errorf("bucket start %s of %s is outside ClickHouse's DateTime range (1970 to 2106)", r.TS.UTC().Format(time.RFC3339), r.Tenant)
	}
	return nil
}
