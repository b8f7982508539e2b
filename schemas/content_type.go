package schemas

// Choosing the decoder of a Kafka record by its content-type header.

// ContentTypeOf returns the content type named by the value of a record's
// content-type header (HeaderContentType), which says which decoder reads
// the record:
//   - ContentTypeJSON for an empty or blank value (and callers use it when
//     the header is missing), as the Kafka contract says;
//   - ContentTypeJSON or ContentTypeArrow when the media type is one of
//     them in any ASCII case, with surrounding whitespace and parameters
//     after ';' ignored ("Application/JSON; charset=utf-8" is JSON);
//   - otherwise the media type, trimmed and lower-cased, which no decoder
//     reads: the caller reports it (dead-letter queue).
//
// Matching is ASCII-only, as media types are ASCII tokens (RFC 9110
// §8.3.1): non-ASCII letters and spaces are never folded or trimmed.
//
// It does not allocate unless the type is unsupported, so it can run for
// every record. It is safe for concurrent use.
func ContentTypeOf(headerValue []byte) string {
	// The exact spellings producers send, compared without converting.
	switch string(headerValue) {
	case ContentTypeJSON:
		return ContentTypeJSON
	case ContentTypeArrow:
		return ContentTypeArrow
	}
	v := trimASCIISpace(headerValue)
	for i, c := range v {
		if c == ';' {
			v = trimASCIISpace(v[:i])
			break
		}
	}
	switch {
	case len(v) == 0:
		return ContentTypeJSON
	case equalFoldASCII(v, ContentTypeJSON):
		return ContentTypeJSON
	case equalFoldASCII(v, ContentTypeArrow):
		return ContentTypeArrow
	}
	b := make([]byte, len(v))
	for i, c := range v {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return string(b)
}

// isASCIISpace reports the ASCII white space strings.TrimSpace removes.
func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func trimASCIISpace(b []byte) []byte {
	for len(b) > 0 && isASCIISpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isASCIISpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// equalFoldASCII reports whether b equals the lower-case ASCII string s,
// ignoring the case of ASCII letters in b.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
