package arrowcodec

import (
	"errors"
	"math"
	"time"
	"unicode/utf8"

	"github.com/costpipe/costpipe/schemas"
)

// Column slots. The string slots come first so they index batch.strs.
const (
	sEventID = iota
	sTenant
	sProvider
	sModel
	sStatus
	sErrorType
	sApplication
	sOperation
	sRegion
	sServiceTier
	sTimestamp
	sInput
	sCached
	sCacheWrite
	sOutput
	sReasoning
	sCacheWrite1h
	sLatency
	sTTFT
	sGPU
	sAttributes
	numSlots
	numStrSlots = sServiceTier + 1
)

type kind uint8

const (
	kindString kind = iota
	kindTimestamp
	kindInt
	kindFloat
	kindMap
)

// want is how a type error describes the expected type.
var want = [...]string{
	kindString:    "utf8 or dictionary<int32, utf8>",
	kindTimestamp: "timestamp[ns, tz=UTC]",
	kindInt:       "int64",
	kindFloat:     "float64",
	kindMap:       "map<utf8, utf8>",
}

type colSpec struct {
	name     string
	kind     kind
	required bool
	max      int // string columns: longest valid value in bytes
}

var specs = [numSlots]colSpec{
	sEventID:      {ColEventID, kindString, true, schemas.MaxEventIDLen},
	sTenant:       {ColTenant, kindString, true, schemas.MaxTenantLen},
	sProvider:     {ColProvider, kindString, true, schemas.MaxProviderLen},
	sModel:        {ColModel, kindString, true, schemas.MaxModelLen},
	sStatus:       {ColStatus, kindString, true, 0},
	sErrorType:    {ColErrorType, kindString, false, schemas.MaxLabelLen},
	sApplication:  {ColApplication, kindString, false, schemas.MaxApplicationLen},
	sOperation:    {ColOperation, kindString, false, schemas.MaxLabelLen},
	sRegion:       {ColRegion, kindString, false, schemas.MaxLabelLen},
	sServiceTier:  {ColServiceTier, kindString, false, schemas.MaxServiceTierLen},
	sTimestamp:    {ColTimestamp, kindTimestamp, true, 0},
	sInput:        {ColInputTokens, kindInt, false, 0},
	sCached:       {ColCachedInputTokens, kindInt, false, 0},
	sCacheWrite:   {ColCacheWriteTokens, kindInt, false, 0},
	sOutput:       {ColOutputTokens, kindInt, false, 0},
	sReasoning:    {ColReasoningTokens, kindInt, false, 0},
	sCacheWrite1h: {ColCacheWrite1hTokens, kindInt, false, 0},
	sLatency:      {ColLatencyMs, kindFloat, false, 0},
	sTTFT:         {ColTTFTMs, kindFloat, false, 0},
	sGPU:          {ColGPUMs, kindFloat, false, 0},
	sAttributes:   {ColAttributes, kindMap, false, 0},
}

var slotByName = func() map[string]int {
	m := make(map[string]int, numSlots)
	for i, s := range specs {
		m[s.name] = i
	}
	return m
}()

// binding maps each slot to a field index of the stream's schema, -1 when
// the column is absent.
type binding [numSlots]int

func isStringType(t *ftype) bool {
	switch t.tag {
	case tagUtf8, tagLargeUtf8, tagUtf8View:
		return true
	}
	return false
}

func isIntType(t *ftype) bool {
	switch t.bitWidth {
	case 8, 16, 32, 64:
		return t.tag == tagInt
	}
	return false
}

func typeFits(k kind, f *field) bool {
	if f.dict {
		return k == kindString && isIntType(&f.index) && isStringType(&f.typ)
	}
	switch k {
	case kindString:
		return isStringType(&f.typ)
	case kindTimestamp:
		return f.typ.tag == tagTimestamp && f.typ.unit >= unitSecond && f.typ.unit <= unitNano
	case kindInt:
		return isIntType(&f.typ)
	case kindFloat:
		return (f.typ.tag == tagFloat && (f.typ.precision == 1 || f.typ.precision == 2)) || isIntType(&f.typ)
	case kindMap:
		if f.typ.tag != tagMap || len(f.children) != 1 {
			return false
		}
		entries := &f.children[0]
		if entries.typ.tag != tagStruct || entries.dict || len(entries.children) != 2 {
			return false
		}
		k, v := &entries.children[0], &entries.children[1]
		return !k.dict && !v.dict && isStringType(&k.typ) && isStringType(&v.typ)
	}
	return false
}

// bindSchema checks the fields against the contract: required columns
// present, known columns of a usable type. Unknown columns are ignored.
func bindSchema(fields []field) (binding, []int, error) {
	var b binding
	for i := range b {
		b[i] = -1
	}
	slotOf := make([]int, len(fields))
	for i := range fields {
		f := &fields[i]
		slotOf[i] = -1
		slot, ok := slotByName[f.name]
		if !ok {
			continue
		}
		if b[slot] >= 0 {
			return b, nil, invalidf("cannot decode arrow batch: column %q appears twice", f.name)
		}
		if !typeFits(specs[slot].kind, f) {
			return b, nil, invalidf("cannot decode arrow batch: column %q has type %s, want %s", f.name, typeName(f), want[specs[slot].kind])
		}
		b[slot] = i
		slotOf[i] = slot
	}
	for slot, spec := range specs {
		if spec.required && b[slot] < 0 {
			return b, nil, invalidf("cannot decode arrow batch: missing required column %q", spec.name)
		}
	}
	return b, slotOf, nil
}

// sharedCols are read-only slices standing in for absent columns or
// columns without nulls; they grow to the largest batch seen.
type sharedCols struct {
	zeroI64 []int64
	zeroF64 []float64
	zeroI32 []int32
	falses  []bool
	trues   []bool
	iota    []int32
}

func (s *sharedCols) ensure(n int) {
	if n <= len(s.iota) {
		return
	}
	n = max(n, 2*len(s.iota))
	// New slices, never grown in place: batches of this stream may still
	// hold the old ones.
	s.zeroI64 = make([]int64, n)
	s.zeroF64 = make([]float64, n)
	s.zeroI32 = make([]int32, n)
	s.falses = make([]bool, n)
	s.trues = make([]bool, n)
	s.iota = make([]int32, n)
	for i := range n {
		s.trues[i] = true
		s.iota[i] = int32(i)
	}
}

// strCol is a string column resolved for one batch, in one of two forms.
// Offsets form (event_id as utf8 without nulls, as the Encoder writes it,
// a distinct value per row): row i is
// arena[offs[i]-base : offs[i+1]-base], checked per row. Values form
// (dictionaries and everything else): row i is vals[idx[i]], valid iff
// ok[idx[i]], checked once per distinct value.
type strCol struct {
	plain    bool
	arena    string
	offs     []int32
	base     int32
	ascii    bool // arena is printable ASCII, so every slice of it passes schemas.ValidText
	required bool
	max      int

	vals   []string
	ok     []bool
	status []schemas.Status // status column only
	idx    []int32
	idxBuf []int32
}

// at returns row i's value and whether it passes the column's checks;
// values form only (inlined in the row loop).
func (c *strCol) at(i int) (string, bool) {
	j := c.idx[i]
	return c.vals[j], c.ok[j]
}

// plainAt is at for the offsets form.
func (c *strCol) plainAt(i int) (string, bool) {
	s := c.arena[c.offs[i]-c.base : c.offs[i+1]-c.base]
	return s, (s != "" || !c.required) && len(s) <= c.max && (c.ascii || schemas.ValidText(s))
}

// batch is one record batch made ready for the row loop: all structure
// checked, each column reduced to plain Go slices.
type batch struct {
	cols [numSlots]arr
	n    int
	strs [numStrSlots]strCol

	ts     []int64
	tsUnit int16
	tsNull validity
	// bad flags rows found invalid while preparing (null or out-of-range
	// timestamp).
	bad []bool

	toks    [numTokenCols][]int64
	tokBufs [numTokenCols][]int64

	lat, ttft, gpu          []float64
	hasLat, hasTTFT         []bool
	latBuf, ttftBuf, gpuBuf []float64
	hasLatBuf, hasTTFTBuf   []bool

	attrs mapCol
}

func (b *batch) prepare(d *Decoder, n int) error {
	b.n = n
	sh := &d.shared
	sh.ensure(n)
	if cap(b.bad) < n {
		b.bad = make([]bool, n)
	}
	b.bad = b.bad[:n]
	clear(b.bad)
	for slot := range numSlots {
		spec := &specs[slot]
		var f *field
		var a *arr
		if fi := d.bind[slot]; fi >= 0 {
			f, a = &d.schema.fields[fi], &b.cols[slot]
		}
		var err error
		switch {
		case slot < numStrSlots:
			var dict *dictState
			if f != nil && f.dict {
				dict = &d.dicts[slot]
				if !dict.set {
					return invalidf("cannot decode arrow batch: column %q: dictionary %d was not sent before the record batch", spec.name, f.dictID)
				}
			}
			err = b.strs[slot].prepare(spec, f, a, dict, n, sh)
		case slot == sTimestamp:
			err = b.prepareTimestamps(f, a)
		case spec.kind == kindInt:
			t := slot - sInput
			b.toks[t], b.tokBufs[t], err = prepareInts(f, a, n, b.tokBufs[t], sh)
		case slot == sLatency:
			b.lat, b.hasLat, b.latBuf, b.hasLatBuf, err = prepareFloats(f, a, n, b.latBuf, b.hasLatBuf, true, sh)
		case slot == sTTFT:
			b.ttft, b.hasTTFT, b.ttftBuf, b.hasTTFTBuf, err = prepareFloats(f, a, n, b.ttftBuf, b.hasTTFTBuf, true, sh)
		case slot == sGPU:
			b.gpu, _, b.gpuBuf, _, err = prepareFloats(f, a, n, b.gpuBuf, nil, false, sh)
		case slot == sAttributes:
			err = b.attrs.prepare(f, a, n)
		}
		if err != nil {
			return invalidf("cannot decode arrow batch: column %q: %w", spec.name, err)
		}
	}
	return nil
}

func (c *strCol) prepare(spec *colSpec, f *field, a *arr, dict *dictState, n int, sh *sharedCols) error {
	c.plain, c.required, c.max = false, spec.required, spec.max
	c.vals = c.vals[:0]
	var err error
	switch {
	case f == nil: // absent optional column
		c.vals = append(c.vals, "")
		c.idx = sh.zeroI32[:n]
	case dict != nil:
		c.vals = append(c.vals, dict.vals...)
		m := len(c.vals)
		c.vals = append(c.vals, "") // null slots point here
		if c.idx, c.idxBuf, err = resolveIndices(c.idxBuf, &f.index, a, m, int32(m)); err != nil {
			return err
		}
	case f.typ.tag == tagUtf8 && a.valid == nil && spec.name == ColEventID && n > 0:
		offs, err := fixedValues[int32](a.b1, n+1)
		if err != nil {
			return err
		}
		if err := checkOffsets(offs, len(a.b2)); err != nil {
			return err
		}
		raw := a.b2[offs[0]:offs[n]]
		c.plain, c.offs, c.base = true, offs, offs[0]
		c.ascii = isPrintableASCII(raw)
		c.arena = string(raw)
		return nil
	default:
		if c.vals, err = appendStrings(c.vals, nil, &f.typ, a); err != nil {
			return err
		}
		c.idx = sh.iota[:n]
	}
	c.ok = c.ok[:0]
	if spec.name == ColStatus {
		c.status = c.status[:0]
		for _, s := range c.vals {
			st, ok := schemas.ParseStatus(s)
			c.status = append(c.status, st)
			c.ok = append(c.ok, ok)
		}
		return nil
	}
	ascii := false
	if f != nil {
		if f.dict {
			ascii = allPrintableASCII(c.vals)
		} else {
			ascii = stringsPrintableASCII(&f.typ, a)
		}
	}
	tier := spec.name == ColServiceTier
	for _, s := range c.vals {
		ok := len(s) <= spec.max && (ascii || schemas.ValidText(s))
		if tier {
			ok = ok && schemas.ValidServiceTier(s)
		}
		if s == "" {
			ok = !spec.required
		}
		c.ok = append(c.ok, ok)
	}
	return nil
}

// allPrintableASCII reports whether every string of vals is printable
// ASCII (see isPrintableASCII).
func allPrintableASCII(vals []string) bool {
	for _, s := range vals {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c >= 0x7f {
				return false
			}
		}
	}
	return true
}

// Timestamps of every unit are accepted; one without time zone is read as
// UTC. The valid range is years 1970–9999, as for Validate.
var maxTimestamp = [...]int64{
	unitSecond: 253402300799,
	unitMilli:  253402300799_999,
	unitMicro:  253402300799_999_999,
	unitNano:   math.MaxInt64,
}

func (b *batch) prepareTimestamps(f *field, a *arr) error {
	vals, err := fixedValues[int64](a.b1, a.n)
	if err != nil {
		return err
	}
	v := validity(a.valid)
	b.ts, b.tsUnit, b.tsNull = vals, f.typ.unit, v
	hi := maxTimestamp[f.typ.unit]
	for i, x := range vals {
		if x < 0 || x > hi || !v.valid(i) {
			b.bad[i] = true
		}
	}
	return nil
}

func toTime(v int64, unit int16) time.Time {
	switch unit {
	case unitNano:
		return time.Unix(0, v).UTC()
	case unitMicro:
		return time.Unix(v/1e6, (v%1e6)*1e3).UTC()
	case unitMilli:
		return time.Unix(v/1e3, (v%1e3)*1e6).UTC()
	}
	return time.Unix(v, 0).UTC()
}

func prepareInts(f *field, a *arr, n int, buf []int64, sh *sharedCols) (vals, newBuf []int64, err error) {
	if f == nil || n == 0 {
		return sh.zeroI64[:n], buf, nil
	}
	if f.typ.bitWidth == 64 && f.typ.signed && a.valid == nil {
		vals, err := fixedValues[int64](a.b1, n) // no nulls: read in place
		return vals, buf, err
	}
	buf, err = appendInts(buf[:0], &f.typ, a)
	return buf, buf, err
}

// prepareFloats resolves a float column, nulls read as 0; with wantHas, has
// reports the non-null rows.
func prepareFloats(f *field, a *arr, n int, buf []float64, hasBuf []bool, wantHas bool, sh *sharedCols) (vals []float64, has []bool, newBuf []float64, newHas []bool, err error) {
	if f == nil || n == 0 {
		return sh.zeroF64[:n], sh.falses[:n], buf, hasBuf, nil
	}
	v := validity(a.valid)
	if f.typ.tag == tagFloat && f.typ.precision == 2 && v == nil {
		vals, err := fixedValues[float64](a.b1, n)
		return vals, sh.trues[:n], buf, hasBuf, err
	}
	if buf, err = appendFloats(buf[:0], &f.typ, a); err != nil {
		return nil, nil, buf, hasBuf, err
	}
	has = sh.trues[:n]
	if wantHas && v != nil {
		hasBuf = hasBuf[:0]
		for i := 0; i < n; i++ {
			hasBuf = append(hasBuf, v.valid(i))
		}
		has = hasBuf
	}
	return buf, has, buf, hasBuf, nil
}

// emit assembles each row of the batch and hands it to fn, or to onInvalid;
// row0 is the stream index of the batch's first row. It is the hot path:
// plain slice reads, checks that mirror schemas.(*Event).Validate, no
// allocation unless a row has attributes. The event is a local variable
// passed by value, so filling it needs no GC write barriers.
func (b *batch) emit(row0 int, fn func(schemas.Event) error, onInvalid func(int, error)) error {
	var e schemas.Event
	s := &b.strs
	for i := 0; i < b.n; i++ {
		ok := !b.bad[i]
		var k bool
		if s[sEventID].plain {
			e.EventID, k = s[sEventID].plainAt(i)
		} else {
			e.EventID, k = s[sEventID].at(i)
		}
		ok = ok && k
		e.Tenant, k = s[sTenant].at(i)
		ok = ok && k
		e.Provider, k = s[sProvider].at(i)
		ok = ok && k
		e.Model, k = s[sModel].at(i)
		ok = ok && k
		j := s[sStatus].idx[i]
		e.Status = s[sStatus].status[j]
		ok = ok && s[sStatus].ok[j]
		e.ErrorType, k = s[sErrorType].at(i)
		ok = ok && k
		e.Application, k = s[sApplication].at(i)
		ok = ok && k
		e.Operation, k = s[sOperation].at(i)
		ok = ok && k
		e.Region, k = s[sRegion].at(i)
		ok = ok && k
		e.ServiceTier, k = s[sServiceTier].at(i)
		ok = ok && k

		if b.tsUnit == unitNano {
			e.Timestamp = time.Unix(0, b.ts[i]).UTC()
		} else {
			e.Timestamp = toTime(b.ts[i], b.tsUnit)
		}

		in, cached, cw := b.toks[0][i], b.toks[1][i], b.toks[2][i]
		out, reasoning, cw1h := b.toks[3][i], b.toks[4][i], b.toks[5][i]
		e.InputTokens, e.CachedInputTokens, e.CacheWriteTokens = in, cached, cw
		e.OutputTokens, e.ReasoningTokens, e.CacheWrite1hTokens = out, reasoning, cw1h
		ok = ok && uint64(in) <= schemas.MaxTokens && uint64(cached) <= schemas.MaxTokens &&
			uint64(cw) <= schemas.MaxTokens && uint64(out) <= schemas.MaxTokens &&
			uint64(reasoning) <= schemas.MaxTokens && uint64(cw1h) <= schemas.MaxTokens &&
			cached+cw <= in && reasoning <= out && cw1h <= cw

		e.LatencyMs, e.HasLatency = b.lat[i], b.hasLat[i]
		e.TTFTMs, e.HasTTFT = b.ttft[i], b.hasTTFT[i]
		e.GPUMs = b.gpu[i]
		if !e.HasLatency {
			e.LatencyMs = 0
		}
		if !e.HasTTFT {
			e.TTFTMs = 0
		}
		ok = ok && e.LatencyMs >= 0 && e.LatencyMs <= schemas.MaxDurationMs &&
			e.TTFTMs >= 0 && e.TTFTMs <= schemas.MaxDurationMs &&
			e.GPUMs >= 0 && e.GPUMs <= schemas.MaxDurationMs

		e.Attributes, k = b.attrs.attributes(i)
		ok = ok && k

		if !ok {
			rerr := b.rowError(&e, i)
			if rerr != nil {
				re := &RowError{Row: row0 + i, EventID: e.EventID, Err: rerr}
				if onInvalid == nil {
					return re
				}
				onInvalid(row0+i, re)
				continue
			}
			// A check stricter than Validate: the row is fine after all.
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// rowError explains why emit rejected row i (e holds the row as read): Validate's verdict first, then what only arrow can express. nil means
// the row is valid after all.
func (b *batch) rowError(e *schemas.Event, i int) error {
	if !b.tsNull.valid(i) {
		e.Timestamp = time.Time{}
	}
	err := e.Validate()
	var fe *schemas.FieldError
	if errors.As(err, &fe) && fe.Field == ColStatus {
		c := &b.strs[sStatus]
		if raw := c.vals[c.idx[i]]; raw != "" {
			return &schemas.FieldError{Field: ColStatus, Value: raw, Reason: `must be "ok" or "error"`}
		}
	}
	if err != nil {
		return err
	}
	return b.attrs.nullItem(i)
}

// truncate cuts s to at most n bytes on a rune boundary, like the field
// names of schemas.FieldError.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
