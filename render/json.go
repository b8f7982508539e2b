package render

import (
	"encoding/json"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// WriteJSON writes t's rows as a JSON array with one object per row, one
// line per object, keys in column order: `[`, then `  {"tenant": "acme",
// "requests": 3, …}` lines separated by commas, then `]`; `[]` without
// rows. Columns shown only in tables are left out; see Column.JSON for
// nested objects and Kind for the encodings. The array is written in
// pieces of about jsonChunk bytes, so a large answer is not held twice.
func WriteJSON(w io.Writer, t *Table) error {
	if err := t.check(); err != nil {
		return err
	}
	cols := t.visible(false)
	var b strings.Builder
	b.WriteString("[")
	for r, row := range t.Rows {
		if r > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n  {")
		first := true
		key := func(k string) {
			if !first {
				b.WriteString(", ")
			}
			first = false
			writeJSONString(&b, k)
			b.WriteString(": ")
		}
		for j := 0; j < len(cols); {
			c := &t.Columns[cols[j]]
			obj, _, nested := strings.Cut(c.jsonKey(), ".")
			if !nested {
				key(obj)
				writeJSONValue(&b, row[cols[j]])
				j++
				continue
			}
			// The object's members: the consecutive columns of obj.
			end := j
			all := true
			for ; end < len(cols); end++ {
				m := &t.Columns[cols[end]]
				o, _, ok := strings.Cut(m.jsonKey(), ".")
				if !ok || o != obj {
					break
				}
				all = all && row[cols[end]].empty()
			}
			if !all {
				key(obj)
				b.WriteString("{")
				for k := j; k < end; k++ {
					m := &t.Columns[cols[k]]
					_, member, _ := strings.Cut(m.jsonKey(), ".")
					if k > j {
						b.WriteString(",")
					}
					writeJSONString(&b, member)
					b.WriteString(":")
					writeJSONValue(&b, row[cols[k]])
				}
				b.WriteString("}")
			}
			j = end
		}
		b.WriteString("}")
		if b.Len() >= jsonChunk { // a large answer is written as it goes
			if _, err := io.WriteString(w, b.String()); err != nil {
				return err
			}
			b.Reset()
		}
	}
	if len(t.Rows) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// jsonChunk is the size of WriteJSON's writes.
const jsonChunk = 64 << 10

// writeJSONString writes s as a JSON string, escaped as encoding/json does.
func writeJSONString(b *strings.Builder, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}

// writeJSONValue writes v.
func writeJSONValue(b *strings.Builder, v Value) {
	if v.IsNull() {
		b.WriteString("null")
		return
	}
	switch v.kind {
	case KindText:
		writeJSONString(b, v.s)
	case KindUint:
		b.WriteString(strconv.FormatUint(v.asUint(), 10))
	case KindInt:
		b.WriteString(strconv.FormatInt(v.asInt(), 10))
	case KindFloat:
		writeJSONFloat(b, v.asFloat())
	case KindMoney:
		b.WriteString(`"` + v.asMoney().String() + `"`)
	case KindTime:
		b.WriteString(`"` + v.asTime().Format(time.RFC3339) + `"`)
	case KindDate:
		b.WriteString(`"` + v.asTime().Format(time.DateOnly) + `"`)
	case KindFloats:
		b.WriteString("[")
		for i, f := range v.asFloats() {
			if i > 0 {
				b.WriteString(",")
			}
			writeJSONFloat(b, f)
		}
		b.WriteString("]")
	case KindDates:
		b.WriteString("[")
		for i, d := range v.asDates() {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"` + d.Format(time.DateOnly) + `"`)
		}
		b.WriteString("]")
	}
}

// writeJSONFloat writes f as encoding/json does, and null for NaN and ±Inf
// (which JSON cannot hold).
func writeJSONFloat(b *strings.Builder, f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		b.WriteString("null")
		return
	}
	q, _ := json.Marshal(f) // finite floats always marshal
	b.Write(q)
}
