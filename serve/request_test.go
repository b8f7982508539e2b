package serve

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestQueryNotURLEncoded: a query string that does not decode is 400 naming
// the parameter, on every endpoint and in a batch, never an answer to the
// question without the pair (r.URL.Query() leaves it out: where=model=gpt%
// answered for every model).
func TestQueryNotURLEncoded(t *testing.T) {
	t.Parallel()
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

// TestMethodNotAllowed: another method than GET or HEAD on a path the
// server has is 405 with Allow, on the API (JSON), the operational
// endpoints and the dashboard; an unknown path stays 404.
func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	w := fixture(t)
	hs := newTestServer(t, w, nil)
	do := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, hs.URL+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer root")
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	paths := []string{"/api/v1/usage", "/api/v1/latency", "/api/v1/top", "/api/v1/series", "/api/v1/growth", "/api/v1/forecast",
		"/api/v1/prices", "/api/v1/alerts", "/api/v1/alerts/notifications", "/api/v1/batch", "/healthz", "/readyz", "/metrics",
		"/", "/index.html", "/app.js"}
	for _, path := range paths {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
			resp, body := do(method, path)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" ||
				!strings.Contains(body, "method "+method+" not allowed") {
				t.Errorf("%s %s: %d, Allow %q, %q; want 405 with Allow: GET, HEAD", method, path, resp.StatusCode, resp.Header.Get("Allow"), body)
			}
			if strings.HasPrefix(path, "/api/") {
				var e apiError
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
					t.Errorf("%s %s: %q is not the API's JSON error", method, path, body)
				}
			}
		}
		// GET and HEAD answer (top without by and a batch without
		// questions are 400 for that, not for the method).
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			if resp, body := do(method, path); resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s %s: %d %.200s", method, path, resp.StatusCode, body)
			}
		}
	}
	for _, path := range []string{"/api/v1/nothing", "/api/v2/usage", "/nothing.html"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			if resp, body := do(method, path); resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s: %d %.200s; want 404", method, path, resp.StatusCode, body)
			}
		}
	}
}
