package serve

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// TestParseQuery: a query string decodes as url.ParseQuery decodes it, and
// a pair that does not decode is an error naming its parameter (when the
// name may be quoted) instead of being left out.
func TestParseQuery(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"", "since=1d", "by=model&where=model%3Dgpt-4o&where=tenant=acme", "a=&b&&c=1+2", "where=model=gpt%25", "x=%C3%BC"} {
		got, err := parseQuery(raw)
		want, _ := url.ParseQuery(raw)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseQuery(%q) = %v, %v; want %v", raw, got, err, want)
		}
	}
	for _, c := range []struct{ raw, param, why string }{
		{"by=model&where=model=gpt%", "where", `"%" must be followed by two hex digits`},
		{"where=model=gpt;x", "where", `";" does not separate parameters`},
		{"since=1d&where=model%3D%zz", "where", `"%" must be followed by two hex digits`},
		{"since=1d%4", "since", `"%" must be followed by two hex digits`},
		{"since%zz=1d", "", "a parameter name is not URL-encoded"},
		{"a;b=1", "", "a parameter name is not URL-encoded"},
		{"N%C3%A4me=%", "", "a parameter's value is not URL-encoded"}, // a name not quoted
	} {
		_, err := parseQuery(c.raw)
		var qe *queryError
		if !errors.As(err, &qe) || qe.Param != c.param || !strings.Contains(qe.Msg, c.why) || !strings.Contains(qe.Msg, "not URL-encoded") {
			t.Errorf("parseQuery(%q) = %v; want a queryError naming %q, saying %q", c.raw, err, c.param, c.why)
			continue
		}
		if strings.Contains(qe.Msg, "gpt") || strings.Contains(qe.Msg, "Näme") {
			t.Errorf("parseQuery(%q): %q quotes the query", c.raw, qe.Msg)
		}
	}
}
