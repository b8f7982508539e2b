package schemas

// The Decoder's bounded intern table of low-cardinality strings.

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
//
// A small direct-mapped cache, indexed by a hash of the length and three
// bytes, answers most lookups with one compare; misses go to the map.
func (d *Decoder) intern(b []byte) string {
	if d.strs == nil || len(b) > internMaxLen || len(b) == 0 {
		return string(b)
	}
	h := (uint(len(b))*0x9e + uint(b[0])*31 + uint(b[len(b)>>1])*7 + uint(b[len(b)-1])) % recentSize
	if s := d.recent[h]; s == string(b) {
		return s
	}
	s, ok := d.strs[string(b)]
	if !ok {
		if len(d.strs) >= internMaxEntries || d.strBytes+len(b) > internMaxBytes {
			clear(d.strs)
			d.strBytes = 0
		}
		s = string(b)
		d.strs[s] = s
		d.strBytes += len(s)
	}
	d.recent[h] = s
	return s
}
