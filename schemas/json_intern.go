package schemas

// The Decoder's bounded intern table of low-cardinality strings, and the
// arena of event ids.

import "unsafe"

// Bounds of the intern table of one Decoder. When either is reached the table
// is cleared and refills with the strings in use, so memory stays bounded
// whatever the input, and a burst of junk cannot pin the table forever.
const (
	internMaxEntries = 1 << 16 // distinct strings
	internMaxBytes   = 4 << 20 // total bytes of interned strings
	internMaxLen     = MaxLabelLen
	recentSize       = 512 // entries of the direct-mapped cache in front of the intern table
)

// intern returns b as a string, shared with earlier equal strings when the
// tables have it. b may alias the input: the result never does.
func (d *Decoder) intern(b []byte) string {
	s, _ := d.internText(b)
	return s
}

// internText is intern that also reports whether the string is known to be
// valid text (ValidText): the cache remembers it with the string, so a label
// seen again is not checked again (Decode then skips that check in
// validation).
//
// A small direct-mapped cache, indexed by a hash of the length and three
// bytes, answers most lookups with one compare; misses go to the map.
func (d *Decoder) internText(b []byte) (string, bool) {
	if d.strs == nil || len(b) > internMaxLen || len(b) == 0 {
		return string(b), false
	}
	h := (uint(len(b))*0x9e + uint(b[0])*31 + uint(b[len(b)>>1])*7 + uint(b[len(b)-1])) % recentSize
	if r := &d.recent[h]; r.s == string(b) {
		return r.s, r.text
	}
	s, ok := d.strs[string(b)]
	if !ok {
		maxEntries, maxBytes := internMaxEntries, internMaxBytes
		if d.maxEntries > 0 {
			maxEntries, maxBytes = d.maxEntries, d.maxBytes
		}
		if len(d.strs) >= maxEntries || d.strBytes+len(b) > maxBytes {
			clear(d.strs)
			d.strBytes = 0
		}
		s = string(b)
		d.strs[s] = s
		d.strBytes += len(s)
	}
	d.recent[h] = recentString{s: s, text: ValidText(s)}
	return s, d.recent[h].text
}

// recentString is an entry of the Decoder's cache of recent strings.
type recentString struct {
	s    string
	text bool // ValidText(s)
}

// Bounds of the event id arena.
const (
	idChunk  = 16 << 10 // bytes per chunk
	idMaxLen = 256      // longer ids get their own allocation
)

// idString returns b as a string copied into the Decoder's event id arena:
// ids (unique per event, so never interned) are cut from 16 KiB chunks, one
// allocation per few hundred events instead of one per event. The bytes of a
// returned string are never written again (a full chunk is left to the
// garbage collector, a new one started), so the strings are immutable as Go
// requires; a caller that keeps one id keeps its chunk alive.
func (d *Decoder) idString(b []byte) string {
	if len(b) == 0 || len(b) > idMaxLen || d.strs == nil {
		return string(b)
	}
	if cap(d.ids)-len(d.ids) < len(b) {
		d.ids = make([]byte, 0, idChunk)
	}
	start := len(d.ids)
	d.ids = append(d.ids, b...)
	return unsafe.String(&d.ids[start], len(b))
}
