package arrowcodec

import (
	"errors"
	"fmt"

	"github.com/costpipe/costpipe/schemas"
)

// mapCol is the attributes column resolved for one batch: row i's entries
// are keys[offs[i]:offs[i+1]] and items[...].
type mapCol struct {
	present   bool
	offs      []int32
	valid     validity
	keys      []string
	items     []string
	itemValid validity
	entryOK   []bool
}

// stringsPrintableASCII reports whether all string data of a (utf8 or
// large_utf8) is printable ASCII, so any of its strings passes
// schemas.ValidText.
func stringsPrintableASCII(t *ftype, a *arr) bool {
	return (t.tag == tagUtf8 || t.tag == tagLargeUtf8) && isPrintableASCII(a.b2)
}

func (m *mapCol) prepare(f *field, a *arr, n int) error {
	m.present = f != nil && n > 0
	if !m.present {
		return nil
	}
	m.valid = a.valid
	offs, err := fixedValues[int32](a.b1, n+1)
	if err != nil {
		return err
	}
	m.offs = offs
	if len(a.children) != 1 || len(a.children[0].children) != 2 {
		return errors.New("map entries are not a struct of key and item")
	}
	kt, it := &f.children[0].children[0].typ, &f.children[0].children[1].typ
	ka, ia := &a.children[0].children[0], &a.children[0].children[1]
	if m.keys, err = appendStrings(m.keys[:0], nil, kt, ka); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if m.items, err = appendStrings(m.items[:0], nil, it, ia); err != nil {
		return fmt.Errorf("items: %w", err)
	}
	m.itemValid = ia.valid
	limit := min(len(m.keys), len(m.items))
	if offs[0] < 0 {
		return fmt.Errorf("negative map offset %d", offs[0])
	}
	prev := offs[0]
	for _, x := range offs[1:] {
		if x < prev {
			return fmt.Errorf("map offsets decrease (%d after %d)", x, prev)
		}
		prev = x
	}
	if int(prev) > limit {
		return fmt.Errorf("map offsets reach entry %d, %d entries exist", prev, limit)
	}
	keysASCII, itemsASCII := stringsPrintableASCII(kt, ka), stringsPrintableASCII(it, ia)
	m.entryOK = m.entryOK[:0]
	for i := 0; i < limit; i++ {
		k, v := m.keys[i], m.items[i]
		ok := k != "" && len(k) <= schemas.MaxLabelLen && (keysASCII || schemas.ValidText(k)) &&
			m.itemValid.valid(i) && len(v) <= schemas.MaxLabelLen && (itemsASCII || schemas.ValidText(v))
		m.entryOK = append(m.entryOK, ok)
	}
	return nil
}

// attributes builds row i's map (a new one per call: events never share
// one); ok is false when an entry breaks a rule. The allocation is most of
// the cost of a row with attributes; the cloning of per-batch templates for
// repeated entry sets was measured and is no cheaper.
func (m *mapCol) attributes(i int) (attrs map[string]string, ok bool) {
	if !m.present || !m.valid.valid(i) {
		return nil, true
	}
	lo, hi := int(m.offs[i]), int(m.offs[i+1])
	if lo == hi {
		return nil, true
	}
	ok = true
	attrs = make(map[string]string, hi-lo)
	for j := lo; j < hi; j++ {
		attrs[m.keys[j]] = m.items[j]
		ok = ok && m.entryOK[j]
	}
	return attrs, ok && len(attrs) <= schemas.MaxAttributes
}

// nullItem reports a null attribute value of row i, which only arrow can
// express (Validate sees an empty string).
func (m *mapCol) nullItem(i int) error {
	if !m.present || !m.valid.valid(i) {
		return nil
	}
	for j := int(m.offs[i]); j < int(m.offs[i+1]); j++ {
		if !m.itemValid.valid(j) {
			return &schemas.FieldError{Field: "attributes." + truncate(m.keys[j], 64), Reason: "must be a string, not null"}
		}
	}
	return nil
}
