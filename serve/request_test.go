package serve

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestQueryNotURLEncoded: a query string that does not decode is 400 naming
// the parameter, on every endpoint and in a batch, never an answer to the
// question without the pair (r.URL.Query() leaves it out: where=model=gpt%
// answered for every model).
func TestQueryNotURLEncoded(t *testing.T) {
	w := fixture(t)
	hs := newTestServer(t, w, nil)
	check := func(path, param, why string) {
		t.Helper()
		a := get(t, hs, "root", path, "")
		var e apiError
		if err := json.Unmarshal([]byte(a.body), &e); err != nil || a.code != http.StatusBadRequest || e.Param != param ||
			!strings.Contains(e.Error, "not URL-encoded") || !strings.Contains(e.Error, why) {
			t.Errorf("%s: %d %s; want 400 naming %q, saying %q", path, a.code, a.body, param, why)
		}
	}
	const pct, semi = `"%" must be followed by two hex digits`, `";" does not separate parameters`
	check("/api/v1/usage?by=model&where=model=gpt%", "where", pct)
	check("/api/v1/usage?by=model&where=model=gpt;x", "where", semi)
	check("/api/v1/usage?by=model&where=model=%zz", "where", pct)
	check("/api/v1/usage?by=model&wh%zzere=model=gpt-4o", "", "a parameter name is not URL-encoded")
	for _, ep := range []string{"usage", "latency", "top", "series", "growth", "forecast", "prices", "alerts", "alerts/notifications", "batch"} {
		check("/api/v1/"+ep+"?since=1d%", "since", pct)
	}
	// The batch's own query string, and a question of a batch: the same
	// answer as the single request.
	check("/api/v1/batch?q=usage%3Fby%3Dmodel&q=usage?where=model=gpt%", "q", pct)
	items := batchAnswers(t, get(t, hs, "root", batchPath("usage?by=model&where=model=gpt%", "usage?by=model&where=model=gpt;x"), ""), 2)
	for i, why := range []string{pct, semi} {
		if it := items[i]; it.Status != http.StatusBadRequest || it.Param != "where" || !strings.Contains(it.Error, why) || it.Body != nil {
			t.Errorf("batch question %d: %+v; want 400 naming where, saying %q", i, it, why)
		}
	}
	// A "%" encoded as %25 is a value like any other.
	if got := rows(t, get(t, hs, "root", "/api/v1/usage?by=model&where=model%3Dgpt%25", "")); len(got) != 0 {
		t.Errorf("where=model=gpt%%: %v, want no rows", got)
	}
}
