package render

import (
	"fmt"
	"io"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/decimal128"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// moneyType is the Arrow type of Money: ClickHouse's Decimal(38, 12).
var moneyType = &arrow.Decimal128Type{Precision: 38, Scale: 12}

// arrowType is the Arrow type of a column of kind k.
func arrowType(k Kind) (arrow.DataType, error) {
	switch k {
	case KindText:
		return arrow.BinaryTypes.String, nil
	case KindUint:
		return arrow.PrimitiveTypes.Uint64, nil
	case KindInt:
		return arrow.PrimitiveTypes.Int64, nil
	case KindFloat:
		return arrow.PrimitiveTypes.Float64, nil
	case KindMoney:
		return moneyType, nil
	case KindTime:
		return &arrow.TimestampType{Unit: arrow.Second, TimeZone: "UTC"}, nil
	case KindDate:
		return arrow.FixedWidthTypes.Date32, nil
	case KindFloats:
		return arrow.ListOf(arrow.PrimitiveTypes.Float64), nil
	case KindDates:
		return arrow.ListOf(arrow.FixedWidthTypes.Date32), nil
	}
	return nil, fmt.Errorf("render: no Arrow type for kind %d", k)
}

// Schema is the Arrow schema WriteArrow gives t: a field per column shown
// in machine formats, named and typed by the column (see Kind), nullable
// when the column is.
func Schema(t *Table) (*arrow.Schema, error) {
	var fields []arrow.Field
	for _, i := range t.visible(false) {
		c := &t.Columns[i]
		typ, err := arrowType(c.Kind)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		fields = append(fields, arrow.Field{Name: c.Name, Type: typ, Nullable: c.Nullable})
	}
	return arrow.NewSchema(fields, nil), nil
}

// WriteArrow writes t's rows as an Arrow IPC stream of one record batch
// (Schema). A null in a column that is not Nullable, or a value of
// another kind than its column's, is an error.
func WriteArrow(w io.Writer, t *Table) error {
	if err := t.check(); err != nil {
		return err
	}
	schema, err := Schema(t)
	if err != nil {
		return err
	}
	cols := t.visible(false)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, row := range t.Rows {
		for f, i := range cols {
			c := &t.Columns[i]
			if err := appendArrow(b.Field(f), row[i], c); err != nil {
				return fmt.Errorf("render: column %q: %w", c.Name, err)
			}
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	iw := ipc.NewWriter(w, ipc.WithSchema(schema))
	if err := iw.Write(rec); err != nil {
		return fmt.Errorf("cannot write arrow stream: %w", err)
	}
	return iw.Close()
}

// appendArrow appends v to fb, the builder of column c.
func appendArrow(fb array.Builder, v Value, c *Column) error {
	if v.IsNull() {
		if !c.Nullable {
			return fmt.Errorf("null in a column that is not nullable")
		}
		fb.AppendNull()
		return nil
	}
	if v.kind != c.Kind {
		return fmt.Errorf("value of kind %d in a column of kind %d", v.kind, c.Kind)
	}
	switch v.kind {
	case KindText:
		fb.(*array.StringBuilder).Append(v.s)
	case KindUint:
		fb.(*array.Uint64Builder).Append(v.asUint())
	case KindInt:
		fb.(*array.Int64Builder).Append(v.asInt())
	case KindFloat:
		fb.(*array.Float64Builder).Append(v.asFloat())
	case KindMoney:
		hi, lo := v.asMoney().Int128()
		fb.(*array.Decimal128Builder).Append(decimal128.New(hi, lo))
	case KindTime:
		fb.(*array.TimestampBuilder).Append(arrow.Timestamp(v.asTime().Unix()))
	case KindDate:
		fb.(*array.Date32Builder).Append(arrow.Date32FromTime(v.asTime()))
	case KindFloats:
		lb := fb.(*array.ListBuilder)
		lb.Append(true)
		vb := lb.ValueBuilder().(*array.Float64Builder)
		for _, f := range v.asFloats() {
			vb.Append(f)
		}
	case KindDates:
		lb := fb.(*array.ListBuilder)
		lb.Append(true)
		vb := lb.ValueBuilder().(*array.Date32Builder)
		for _, d := range v.asDates() {
			vb.Append(arrow.Date32FromTime(d))
		}
	}
	return nil
}
