package schemas

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestContentTypeOf(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ContentTypeJSON},
		{" \t\r\n", ContentTypeJSON},
		{"application/json", ContentTypeJSON},
		{"application/vnd.apache.arrow.stream", ContentTypeArrow},
		{"Application/JSON", ContentTypeJSON},
		{" application/json ; charset=utf-8", ContentTypeJSON},
		{"application/json;", ContentTypeJSON},
		{"APPLICATION/VND.APACHE.ARROW.STREAM;x=1", ContentTypeArrow},
		{"\tapplication/vnd.apache.arrow.stream\r\n", ContentTypeArrow},
		{";charset=utf-8", ContentTypeJSON},
		{"text/plain", "text/plain"},
		{" Text/Plain ; x=Y", "text/plain"},
		{"application/jsonx", "application/jsonx"},
		{"application/json x", "application/json x"},
		{"application/json\x00", "application/json\x00"},
		// ASCII only: a dotted capital I is not an i, a no-break space is not trimmed.
		{"applİcation/json", "applİcation/json"},
		{"\u00a0application/json", "\u00a0application/json"},
	} {
		if got := ContentTypeOf([]byte(c.in)); got != c.want {
			t.Errorf("ContentTypeOf(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestContentTypeOfAllocs(t *testing.T) {
	for _, in := range []string{
		"", "application/json", "application/vnd.apache.arrow.stream",
		" Application/Json; charset=utf-8", "APPLICATION/VND.APACHE.ARROW.STREAM ;",
	} {
		b := []byte(in)
		if n := testing.AllocsPerRun(100, func() { ContentTypeOf(b) }); n != 0 {
			t.Errorf("ContentTypeOf(%q) allocates %v times", in, n)
		}
	}
}

// contentTypeReference is the content-type parsing consumers used before
// ContentTypeOf, with its Unicode trimming and lower-casing.
func contentTypeReference(v string) string {
	switch v {
	case ContentTypeJSON, ContentTypeArrow:
		return v
	}
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	if v == "" {
		return ContentTypeJSON
	}
	return strings.ToLower(v)
}

// contentTypeASCII is contentTypeReference with ASCII-only trimming and
// lower-casing, which ContentTypeOf promises for every input.
func contentTypeASCII(v string) string {
	const space = " \t\n\v\f\r"
	v = strings.Trim(v, space)
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = strings.Trim(v[:i], space)
	}
	if v == "" {
		return ContentTypeJSON
	}
	b := []byte(v)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c | 0x20
		}
	}
	return string(b)
}

// FuzzContentTypeOf checks ContentTypeOf against the former parsing on
// ASCII input, and against its ASCII-only variant on every input.
func FuzzContentTypeOf(f *testing.F) {
	for _, s := range []string{"", "application/json", ContentTypeArrow, " Application/JSON ; charset=utf-8",
		"text/plain", "applİcation/json", "\u00a0application/json\u0085", ";", "APPLICATION/VND.APACHE.ARROW.STREAM;"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got := ContentTypeOf(in)
		if want := contentTypeASCII(string(in)); got != want {
			t.Fatalf("ContentTypeOf(%q) = %q, want %q", in, got, want)
		}
		for _, c := range in {
			if c >= utf8.RuneSelf {
				return
			}
		}
		if want := contentTypeReference(string(in)); got != want {
			t.Fatalf("ContentTypeOf(%q) = %q, former parsing %q", in, got, want)
		}
	})
}
