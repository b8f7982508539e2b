package ingest

import (
	"fmt"
)

// This file estimates, before decoding, how much memory an OTLP body
// becomes once decoded (pdata objects), so that the in-flight byte budget
// bounds it. Bytes are a poor measure: an empty span is 2 bytes of
// protobuf (12 00) or 3 of JSON ({},) and a ~220-byte object once decoded,
// and an empty attribute is 2 bytes for ~100. So otlpCost walks the body
// (protobuf wire format, or JSON tokens) without allocating, counts the
// objects pdata will allocate, by type, and prices each at its decoded
// size: the struct, its share of the slice holding it (at most twice its
// size, as append doubles), and the bytes of every string, copied.
// TestOTLPCostBoundsDecodedMemory checks the prices against the live heap
// of real decodes of ordinary and adversarial bodies.

// Decoded sizes (bytes, 64-bit) of what pdata v1.x allocates per object,
// with the slice share: a *T element costs the T allocation (size class)
// plus two pointers; a T element of a value slice, twice T.
const (
	costResourceSpans = 128 + 16 // ResourceSpans (with its Resource), in []*ResourceSpans
	costScopeSpans    = 112 + 16 // ScopeSpans (with its InstrumentationScope), in []*ScopeSpans
	costSpan          = 208 + 16 // Span (with its Status), in []*Span
	costEvent         = 64 + 16  // SpanEvent, in []*SpanEvent
	costLink          = 80 + 16  // SpanLink, in []*SpanLink
	costEntityRef     = 80 + 16  // EntityRef, in []*EntityRef
	costKeyValue      = 2 * 40   // KeyValue, in []KeyValue
	costArrayElem     = 2 * 16   // AnyValue, in []AnyValue (an array's values)
	costAnyValue      = 32       // the oneof of an AnyValue: its wrapper, and for arrays and maps their struct
	costString        = 16       // one string or bytes allocation beyond its length (size class rounding), or a []string element
)

// otlpCost is what an OTLP body decodes to: its spans and an estimate of
// the bytes of its decoded objects.
type otlpCost struct {
	spans int64
	bytes int64
	// malformed is set when the protobuf walk could not follow the body
	// to its end: the estimate then misses what comes after, so the body
	// is refused undecoded (a body pdata decodes is one the walk follows).
	malformed bool
}

// pbKind is an OTLP message type, for the protobuf walk.
type pbKind uint8

const (
	pbNone pbKind = iota // a scalar or an unknown field: skipped
	pbTraces
	pbResourceSpans
	pbResource
	pbEntityRef
	pbScopeSpans
	pbScope
	pbSpan
	pbEvent
	pbLink
	pbStatus
	pbKeyValue
	pbAnyValue
	pbArray
	pbKvlist
	pbString // a string or bytes field: copied
	pbArrayValue
)

// pdataRecursionLimit is pdata's limit of nested attribute values
// (KeyValue, AnyValue, ArrayValue, KeyValueList, each a level): deeper,
// decoding fails, so the walk does not descend further.
const pdataRecursionLimit = 100

// pbField is what field n of a message of kind k holds (pbNone: nothing
// that allocates) and what one occurrence costs beyond its contents.
func pbField(k pbKind, n uint64) (pbKind, int64) {
	switch k {
	case pbTraces:
		if n == 1 {
			return pbResourceSpans, costResourceSpans
		}
	case pbResourceSpans:
		switch n {
		case 1:
			return pbResource, 0 // embedded; occurrences merge
		case 2, 1000:
			return pbScopeSpans, costScopeSpans
		case 3:
			return pbString, 0
		}
	case pbResource:
		switch n {
		case 1:
			return pbKeyValue, costKeyValue
		case 3:
			return pbEntityRef, costEntityRef
		}
	case pbEntityRef:
		switch n {
		case 1, 2:
			return pbString, 0
		case 3, 4:
			return pbString, costString // a []string element
		}
	case pbScopeSpans:
		switch n {
		case 1:
			return pbScope, 0
		case 2:
			return pbSpan, costSpan
		case 3:
			return pbString, 0
		}
	case pbScope:
		switch n {
		case 1, 2:
			return pbString, 0
		case 3:
			return pbKeyValue, costKeyValue
		}
	case pbSpan:
		switch n {
		case 3, 5:
			return pbString, 0
		case 9:
			return pbKeyValue, costKeyValue
		case 11:
			return pbEvent, costEvent
		case 13:
			return pbLink, costLink
		case 15:
			return pbStatus, 0
		}
	case pbEvent:
		switch n {
		case 2:
			return pbString, 0
		case 3:
			return pbKeyValue, costKeyValue
		}
	case pbLink:
		switch n {
		case 3:
			return pbString, 0
		case 4:
			return pbKeyValue, costKeyValue
		}
	case pbStatus:
		if n == 2 {
			return pbString, 0
		}
	case pbKeyValue:
		switch n {
		case 1:
			return pbString, 0
		case 2:
			return pbAnyValue, 0
		}
	case pbAnyValue:
		switch n {
		case 1, 7:
			return pbString, costAnyValue
		case 5:
			return pbArray, costAnyValue
		case 6:
			return pbKvlist, costAnyValue
		}
		return pbNone, costAnyValue // a scalar: its wrapper
	case pbArray:
		if n == 1 {
			return pbArrayValue, costArrayElem
		}
	case pbKvlist:
		if n == 1 {
			return pbKeyValue, costKeyValue
		}
	}
	return pbNone, 0
}

// protoCost walks a protobuf ExportTraceServiceRequest. It stops where the
// body is malformed, and says so (otlpCost.malformed).
func protoCost(body []byte) otlpCost {
	var c otlpCost
	c.malformed = !c.proto(pbTraces, body, 0)
	return c
}

// pbVarint reads a varint as pdata's decoder does (proto.ConsumeVarint):
// at most 10 bytes, the bits past 64 dropped (encoding/binary's Uvarint
// refuses a 10th byte above 1, which pdata takes). n is 0 when b ends
// first, -1 past 10 bytes.
func pbVarint(b []byte) (v uint64, n int) {
	for i := 0; i < 10; i++ {
		if i >= len(b) {
			return 0, 0
		}
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}

// pbTag splits a field's tag as pdata does (proto.ConsumeTag): the field
// number is the tag's bits from the 4th on, as an int32, so 2³²+2 is
// field 2; ok is false for a number ≤ 0, which pdata refuses.
func pbTag(tag uint64) (field uint64, wire uint64, ok bool) {
	f := int32(tag >> 3)
	return uint64(f), tag & 7, f > 0
}

// proto adds the cost of msg, a message of kind k at attribute depth
// depth, and reports false where msg is malformed.
func (c *otlpCost) proto(k pbKind, msg []byte, depth int) bool {
	if k == pbArrayValue {
		k = pbAnyValue
	}
	switch k {
	case pbKeyValue, pbAnyValue, pbArray, pbKvlist:
		if depth >= pdataRecursionLimit {
			return false
		}
		depth++
	}
	for pos := 0; pos < len(msg); {
		tag, n := pbVarint(msg[pos:])
		field, wire, ok := pbTag(tag)
		if n <= 0 || !ok {
			return false
		}
		pos += n
		child, cost := pbField(k, field)
		switch wire {
		case 0: // varint
			_, n := pbVarint(msg[pos:])
			if n <= 0 {
				return false
			}
			pos += n
		case 1: // 64 bits
			pos += 8
		case 5: // 32 bits
			pos += 4
		case 2: // length-delimited
			l, n := pbVarint(msg[pos:])
			if n <= 0 || l > uint64(len(msg)-pos-n) {
				return false
			}
			pos += n
			sub := msg[pos : pos+int(l)]
			pos += int(l)
			switch child {
			case pbNone:
			case pbString:
				c.bytes += int64(l) + costString
			default:
				if child == pbSpan {
					c.spans++
				}
				if !c.proto(child, sub, depth) {
					return false
				}
			}
		case 3, 4: // groups: pdata skips them in unknown fields only
			if child != pbNone {
				return false
			}
			if wire == 4 {
				return false
			}
			end, ok := skipGroup(msg, pos)
			if !ok {
				return false
			}
			pos = end
			continue
		default:
			return false
		}
		if pos > len(msg) {
			return false
		}
		c.bytes += cost
	}
	return true
}

// skipGroup returns the position after the group starting at pos (after
// its start tag), as pdata's ConsumeUnknown skips one: a group ends at its
// end tag, or after the first field in it that is not a group (pdata
// returns there, and decodes what follows as the enclosing message).
func skipGroup(msg []byte, pos int) (int, bool) {
	for depth := 1; pos < len(msg); {
		tag, n := pbVarint(msg[pos:])
		_, wire, ok := pbTag(tag)
		if n <= 0 || !ok {
			return 0, false
		}
		pos += n
		switch wire {
		case 0:
			_, n := pbVarint(msg[pos:])
			return pos + n, n > 0
		case 1:
			return pos + 8, pos+8 <= len(msg)
		case 5:
			return pos + 4, pos+4 <= len(msg)
		case 2:
			l, n := pbVarint(msg[pos:])
			if n <= 0 || l > uint64(len(msg)-pos-n) {
				return 0, false
			}
			return pos + n + int(l), true
		case 3:
			depth++
		case 4:
			if depth--; depth == 0 {
				return pos, true
			}
		default:
			return 0, false
		}
	}
	return 0, false
}

// jsonField is pbField for the OTLP JSON mapping: what the value of key in
// an object of kind k holds (for an array, its elements) and what one
// occurrence costs. pdata reads lowerCamelCase and snake_case names.
func jsonField(k pbKind, key []byte) (pbKind, int64) {
	switch k {
	case pbTraces:
		if string(key) == "resourceSpans" || string(key) == "resource_spans" {
			return pbResourceSpans, costResourceSpans
		}
	case pbResourceSpans:
		switch string(key) {
		case "resource":
			return pbResource, 0
		case "scopeSpans", "scope_spans", "deprecatedScopeSpans", "deprecated_scope_spans":
			return pbScopeSpans, costScopeSpans
		case "schemaUrl", "schema_url":
			return pbString, 0
		}
	case pbResource:
		switch string(key) {
		case "attributes":
			return pbKeyValue, costKeyValue
		case "entityRefs", "entity_refs":
			return pbEntityRef, costEntityRef
		}
	case pbEntityRef:
		switch string(key) {
		case "schemaUrl", "schema_url", "type":
			return pbString, 0
		case "idKeys", "id_keys", "descriptionKeys", "description_keys":
			return pbString, costString
		}
	case pbScopeSpans:
		switch string(key) {
		case "scope":
			return pbScope, 0
		case "spans":
			return pbSpan, costSpan
		case "schemaUrl", "schema_url":
			return pbString, 0
		}
	case pbScope:
		switch string(key) {
		case "name", "version":
			return pbString, 0
		case "attributes":
			return pbKeyValue, costKeyValue
		}
	case pbSpan:
		switch string(key) {
		case "traceState", "trace_state", "name":
			return pbString, 0
		case "attributes":
			return pbKeyValue, costKeyValue
		case "events":
			return pbEvent, costEvent
		case "links":
			return pbLink, costLink
		case "status":
			return pbStatus, 0
		}
	case pbEvent:
		switch string(key) {
		case "name":
			return pbString, 0
		case "attributes":
			return pbKeyValue, costKeyValue
		}
	case pbLink:
		switch string(key) {
		case "traceState", "trace_state":
			return pbString, 0
		case "attributes":
			return pbKeyValue, costKeyValue
		}
	case pbStatus:
		if string(key) == "message" {
			return pbString, 0
		}
	case pbKeyValue:
		switch string(key) {
		case "key":
			return pbString, 0
		case "value":
			return pbAnyValue, 0
		}
	case pbAnyValue:
		switch string(key) {
		case "stringValue", "string_value", "bytesValue", "bytes_value":
			return pbString, costAnyValue
		case "arrayValue", "array_value":
			return pbArray, costAnyValue
		case "kvlistValue", "kvlist_value":
			return pbKvlist, costAnyValue
		case "boolValue", "bool_value", "intValue", "int_value", "doubleValue", "double_value",
			"stringValueStrindex", "string_value_strindex":
			return pbNone, costAnyValue
		}
	case pbArray:
		if string(key) == "values" {
			return pbArrayValue, costArrayElem
		}
	case pbKvlist:
		if string(key) == "values" {
			return pbKeyValue, costKeyValue
		}
	}
	return pbNone, 0
}

// jsonFrame is an open object or array of the JSON walk.
type jsonFrame struct {
	kind    pbKind // of the object, or of the array's elements
	cost    int64  // of each element of the array
	array   bool
	wantKey bool // an object expecting a key next
}

// jsonCost walks an OTLP JSON body. It does not check the syntax (decoding
// does), and stops deeper than maxJSONDepth (decoding refuses that).
func jsonCost(body []byte) otlpCost {
	var c otlpCost
	var stack [maxJSONDepth + 1]jsonFrame
	depth := 0 // frames in stack
	var keyBuf [32]byte
	child, childCost := pbTraces, int64(0) // what the next value is
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '"':
			start := i + 1
			escaped := false
			for i++; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					escaped = true
					i++
				}
			}
			if depth > 0 && !stack[depth-1].array && stack[depth-1].wantKey {
				stack[depth-1].wantKey = false
				key := jsonKey(&keyBuf, body[start:min(i, len(body))], escaped)
				child, childCost = jsonField(stack[depth-1].kind, key)
				continue
			}
			if child == pbString {
				c.bytes += int64(min(i, len(body))-start) + costString
			}
			c.bytes += childCost
			child, childCost = pbNone, 0
		case '{', '[':
			if depth == len(stack) {
				return c
			}
			if body[i] == '[' {
				stack[depth] = jsonFrame{kind: child, cost: childCost, array: true}
				depth++
				child, childCost = elemOf(stack[depth-1])
				continue
			}
			c.bytes += childCost
			if child == pbSpan {
				c.spans++
			}
			if child == pbArrayValue {
				child = pbAnyValue
			}
			stack[depth] = jsonFrame{kind: child, wantKey: true}
			depth++
			child, childCost = pbNone, 0
		case '}', ']':
			if depth > 0 {
				depth--
			}
			child, childCost = pbNone, 0
		case ',':
			if depth == 0 {
				continue
			}
			if f := &stack[depth-1]; f.array {
				child, childCost = elemOf(*f)
			} else {
				f.wantKey = true
			}
		case ':':
		default: // numbers, literals, white space: nothing allocated
			if (child != pbNone || childCost != 0) && body[i] > ' ' {
				// A scalar value, or null: an attribute value's wrapper
				// (costAnyValue) is allocated for a scalar; counted
				// once, at its first byte.
				c.bytes += childCost
				child, childCost = pbNone, 0
			}
		}
	}
	return c
}

// elemOf is what the next element of array f is.
func elemOf(f jsonFrame) (pbKind, int64) {
	if f.kind == pbNone {
		return pbNone, 0
	}
	return f.kind, f.cost
}

// jsonKey is the object key raw (between its quotes) decodes to, as far as
// jsonField needs: a key with escapes is decoded into buf when short and
// ASCII, else it matches nothing (nil).
func jsonKey(buf *[32]byte, raw []byte, escaped bool) []byte {
	if !escaped {
		return raw
	}
	n := 0
	for i := 0; i < len(raw); i++ {
		if n == len(buf) {
			return nil
		}
		c := raw[i]
		if c != '\\' {
			buf[n] = c
			n++
			continue
		}
		if i++; i >= len(raw) {
			return nil
		}
		switch raw[i] {
		case '"', '\\', '/':
			buf[n] = raw[i]
		case 'u':
			if i+5 > len(raw) {
				return nil
			}
			var r rune
			for _, h := range raw[i+1 : i+5] {
				r <<= 4
				switch {
				case h >= '0' && h <= '9':
					r |= rune(h - '0')
				case h >= 'a' && h <= 'f':
					r |= rune(h - 'a' + 10)
				case h >= 'A' && h <= 'F':
					r |= rune(h - 'A' + 10)
				default:
					return nil
				}
			}
			if r >= 0x80 {
				return nil // no OTLP name holds one
			}
			buf[n] = byte(r)
			i += 4
		default:
			return nil // \b, \n and such: in no OTLP name
		}
		n++
	}
	return buf[:n]
}

// costOf estimates what body, in enc, decodes to.
func costOf(enc otlpEncoding, body []byte) otlpCost {
	if enc == otlpJSON {
		return jsonCost(body)
	}
	return protoCost(body)
}

// String describes the cost for an answer.
func (c otlpCost) String() string {
	return fmt.Sprintf("%d spans would take about %d bytes once decoded", c.spans, c.bytes)
}
