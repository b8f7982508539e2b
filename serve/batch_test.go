package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// batchPath is /api/v1/batch asking qs.
func batchPath(qs ...string) string {
	v := url.Values{"q": qs}
	return "/api/v1/batch?" + v.Encode()
}

// batchAnswers decodes a batch answer's NDJSON lines by question, checking
// there is exactly one line per question.
func batchAnswers(t *testing.T, a answer, n int) []batchItem {
	t.Helper()
	if a.code != 200 || a.ctype != ContentTypeNDJSON {
		t.Fatalf("batch: %d %s: %s", a.code, a.ctype, a.body)
	}
	out := make([]batchItem, n)
	seen := map[int]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(a.body, "\n"), "\n") {
		var it batchItem
		if err := json.Unmarshal([]byte(line), &it); err != nil {
			t.Fatalf("batch line %q: %v", line, err)
		}
		if it.I < 0 || it.I >= n || seen[it.I] {
			t.Fatalf("batch line for question %d (of %d, seen %v)", it.I, n, seen)
		}
		seen[it.I] = true
		out[it.I] = it
	}
	if len(seen) != n {
		t.Fatalf("batch answered %d of %d questions:\n%s", len(seen), n, a.body)
	}
	return out
}

// compact is b without insignificant space.
func compact(t *testing.T, b string) string {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, []byte(b)); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return out.String()
}

// TestBatch: every answer of a batch is the single request's answer (the
// dashboard's questions, each endpoint), errors are per question with the
// status and message of the single request, and the batch itself checks
// the key and its parameters.
func TestBatch(t *testing.T) {
	t.Parallel()
	w := fixture(t)
	// No cache: each batch answer is computed by the batch, not served from
	// what the single requests left.
	hs := newTestServer(t, w, func(o *Options) { o.CacheTTL = 0 })
	qs := []string{
		"series?since=30d&step=1d&by=model&metric=cost",
		"usage?since=30d",
		"top?since=30d&by=tenant&limit=100",
		"top?since=30d&by=model&limit=10",
		"forecast?budget=50",
		"latency?since=30d&step=1d&by=model",
		"latency?since=30d&by=model",
		"growth?by=model",
		"prices?since=30d",
		"alerts?state=firing",
		"/api/v1/usage?from=2026-03-01&to=2026-03-21&by=tenant", // the full path works too
		"usage?since=week",                                      // 400 naming since
		"usage?since=1d&bogus=1",                                // 400 naming bogus
		"nosuch?since=1d",                                       // 404
		"series?since=30d&step=1m",                              // too many steps
		"alerts/notifications?limit=5",                          // a * key may
	}
	items := batchAnswers(t, get(t, hs, "root", batchPath(qs...), ""), len(qs))
	for i, q := range qs {
		it := items[i]
		path := q
		if !strings.HasPrefix(path, "/") {
			path = "/api/v1/" + q
		}
		single := get(t, hs, "root", path, "")
		if it.Status != single.code {
			t.Errorf("%s: batch status %d, single %d (%s)", q, it.Status, single.code, single.body)
			continue
		}
		if single.code != 200 {
			var e apiError
			if err := json.Unmarshal([]byte(single.body), &e); err != nil {
				t.Fatal(err)
			}
			if it.Error != e.Error || it.Param != e.Param || it.Body != nil {
				t.Errorf("%s: batch error %q (param %q), single %q (param %q)", q, it.Error, it.Param, e.Error, e.Param)
			}
			continue
		}
		if it.Cache != "miss" || !strings.HasPrefix(it.Timing, "cache;desc=miss, wait;dur=") {
			t.Errorf("%s: cache %q, timing %q", q, it.Cache, it.Timing)
		}
		if got, want := compact(t, string(it.Body)), compact(t, single.body); got != want {
			t.Errorf("%s: batch answer differs from the single request's:\nbatch  %.300s\nsingle %.300s", q, got, want)
		}
	}
	if !strings.Contains(items[12].Error, `unknown parameter "bogus"`) || items[12].Param != "bogus" || items[13].Status != 404 {
		t.Errorf("errors: %+v %+v", items[12], items[13])
	}

	// The batch request itself.
	for _, c := range []struct {
		key, path string
		code      int
		param     string
	}{
		{"", batchPath("usage"), 401, ""},
		{"nope", batchPath("usage"), 401, ""},
		{"root", "/api/v1/batch", 400, "q"},
		{"root", batchPath("usage") + "&since=1d", 400, "q"},
		{"root", batchPath(strings.Split(strings.Repeat("usage ", maxBatch+1), " ")[:maxBatch+1]...), 400, "q"},
	} {
		a := get(t, hs, c.key, c.path, "")
		var e apiError
		json.Unmarshal([]byte(a.body), &e)
		if a.code != c.code || e.Param != c.param || e.Error == "" {
			t.Errorf("%s %.80s: %d %s, want %d naming %q", c.key, c.path, a.code, a.body, c.code, c.param)
		}
	}

	// With the cache, a batch leaves its answers for the single requests
	// (and the same question twice in a batch is computed once).
	hc := newTestServer(t, w, nil)
	items = batchAnswers(t, get(t, hc, "root", batchPath("usage?since=7d&by=model", "usage?since=7d&by=model"), ""), 2)
	if items[0].Status != 200 || items[1].Status != 200 || string(items[0].Body) != string(items[1].Body) ||
		(items[0].Cache == "miss") == (items[1].Cache == "miss") {
		t.Errorf("the same question twice: %+v %+v", items[0], items[1])
	}
	req := get(t, hc, "root", "/api/v1/usage?since=7d&by=model", "")
	if compact(t, req.body) != compact(t, string(items[0].Body)) {
		t.Errorf("the single request after the batch: %s", req.body)
	}
}

// TestBatchTenantIsolation: a tenant key's batch answers only its tenant,
// question by question, whatever the questions ask, and the forbidden
// ones are 403 without naming anyone.
func TestBatchTenantIsolation(t *testing.T) {
	t.Parallel()
	w := fixture(t)
	hs := newTestServer(t, w, nil)
	for _, me := range []string{acme, hostile, unicode} {
		t.Run(fmt.Sprintf("%x", me), func(t *testing.T) {
			var others []string
			for tenant, f := range tenantFixture {
				if tenant != me {
					others = append(others, tenant, jsonText(tenant), f.model, fmt.Sprint(f.calls*sumDays))
				}
			}
			q := url.QueryEscape
			qs := []string{
				"usage?since=30d&by=tenant",
				"top?since=30d&by=tenant&limit=100",
				"series?since=30d&step=1d&by=tenant",
				"growth?by=tenant",
				"forecast?by=tenant",
				"prices?since=30d&all=true",
				"alerts",
				"usage?since=30d&where=tenant%3D" + q(globex),
				"top?by=tenant&where=tenant%3D" + q(me) + "&where=tenant%3D" + q(globex),
				"/api/v1/usage?where=tenant%3D" + q(me) + "%27%20OR%201%3D1",
				"alerts/notifications",
			}
			a := get(t, hs, keyOf(me), batchPath(qs...), "")
			items := batchAnswers(t, a, len(qs))
			for _, o := range others {
				if strings.Contains(a.body, o) {
					t.Errorf("the batch leaks %q:\n%.800s", o, a.body)
				}
			}
			for i, it := range items {
				want := 200
				if i >= 7 {
					want = 403
				}
				if it.Status != want {
					t.Errorf("%s: %d %s, want %d", qs[i], it.Status, it.Error, want)
				}
			}
			var top []map[string]any
			if err := json.Unmarshal(items[1].Body, &top); err != nil || len(top) != 1 || top[0]["tenant"] != me || top[0]["share"] != 1.0 {
				t.Errorf("top by tenant: %v %s", err, items[1].Body)
			}
		})
	}
	// A tenant's cached answer is not another key's: the * key's batch
	// right after sees every tenant.
	items := batchAnswers(t, get(t, hs, "root", batchPath("top?since=30d&by=tenant&limit=100"), ""), 1)
	var top []map[string]any
	if err := json.Unmarshal(items[0].Body, &top); err != nil || len(top) != 4 {
		t.Errorf("root top after the tenants' batches: %v %s", err, items[0].Body)
	}
}
