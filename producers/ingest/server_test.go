package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/costpipe/costpipe/schemas"
)

func TestAccepted202LandsCanonicalRecord(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	// Fields out of contract order, an unknown field, a unix-ms timestamp:
	// the record holds the canonical re-encoding of what was validated.
	in := `{"model":"gpt-4o","event_id":"e-1","status":"ok","provider":"openai","tenant":"acme",` +
		`"timestamp":1761991200000,"input_tokens":10,"output_tokens":5,"future_field":{"x":[1,2]}}`
	resp, r := g.post(t, "key-acme", in)
	if resp.StatusCode != http.StatusAccepted || r.Accepted != 1 || r.RejectedCount != 0 || len(r.Rejected) != 0 {
		t.Fatalf("status %d, body %+v; want 202 with accepted 1", resp.StatusCode, r)
	}
	got := consumeAll(t, g.broker.Addr(), g.opts.Topic, 1, 200*time.Millisecond)
	c, ok := got["e-1"]
	if !ok || len(got) != 1 {
		t.Fatalf("topic holds %d events, want exactly e-1", len(got))
	}
	var want schemas.Event
	if err := schemas.DecodeJSON([]byte(in), &want); err != nil {
		t.Fatal(err)
	}
	if c.value != string(schemas.AppendJSON(nil, &want)) {
		t.Errorf("value %s, want canonical %s", c.value, schemas.AppendJSON(nil, &want))
	}
	if c.key != "acme\x00gpt-4o" || c.key != string(want.Key()) {
		t.Errorf("key %q, want %q", c.key, want.Key())
	}
	if c.contentType != schemas.ContentTypeJSON {
		t.Errorf("content-type header %q, want %q", c.contentType, schemas.ContentTypeJSON)
	}
	if want := `2025-11-01T10:00:00Z`; !strings.Contains(c.value, want) {
		t.Errorf("value %s lacks timestamp %s", c.value, want)
	}
}

func TestUnauthorized401(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	for _, tc := range []struct{ name, header, wantErr string }{
		{"missing", "", "missing API key"},
		{"unknown key", "Bearer key-nobody", "unknown API key"},
		{"key of another case", "Bearer KEY-ACME", "unknown API key"},
		{"basic scheme", "Basic a2V5LWFjbWU6", `not "Bearer KEY"`},
		{"bearer without key", "Bearer ", `not "Bearer KEY"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, g.url+"/v1/events", strings.NewReader(event("e1", "acme")))
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, r := do(t, req, "")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if !strings.Contains(r.Error, tc.wantErr) || r.Accepted != 0 {
				t.Errorf("body %+v, want error containing %q", r, tc.wantErr)
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// The scheme is case-insensitive.
	resp, _ := g.post(t, "", event("e2", "acme"), "Authorization: bearer key-acme")
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("lower-case bearer: status %d, want 202", resp.StatusCode)
	}
}

func TestForbidden403RefusesWholeRequest(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	body := "[" + event("ok-1", "acme") + "," + event("bad-1", "globex") + "," + `{"event_id":"inv-1"}` + "]"
	resp, r := g.post(t, "key-acme", body)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403; body %+v", resp.StatusCode, r)
	}
	if r.Accepted != 0 || r.RejectedCount != 2 || len(r.Rejected) != 2 {
		t.Fatalf("body %+v; want accepted 0 and 2 rejections", r)
	}
	if rj := r.Rejected[0]; rj.Index != 1 || rj.EventID != "bad-1" || !strings.Contains(rj.Error, `tenant "globex"`) {
		t.Errorf("rejection %+v; want index 1, bad-1, naming tenant globex", rj)
	}
	if rj := r.Rejected[1]; rj.Index != 2 || rj.EventID != "inv-1" || !strings.Contains(rj.Error, `"timestamp"`) {
		t.Errorf("rejection %+v; want index 2, inv-1, timestamp required", rj)
	}
	// The wildcard key may write any tenant.
	resp, r = g.post(t, "key-admin", "["+event("adm-1", "acme")+","+event("adm-2", "globex")+"]")
	if resp.StatusCode != http.StatusAccepted || r.Accepted != 2 {
		t.Fatalf("wildcard key: status %d, body %+v; want 202, 2 accepted", resp.StatusCode, r)
	}
	got := consumeAll(t, g.broker.Addr(), g.opts.Topic, 2, 300*time.Millisecond)
	if _, ok := got["ok-1"]; ok || len(got) != 2 {
		t.Errorf("topic holds %v; the 403 request must land nothing", keys(got))
	}
}

func TestBadRequest400AcceptsTheValidEvents(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	body := "[" + event("v-0", "acme") + ",\n" +
		`{"event_id":"i-1","timestamp":"2025-11-01T10:00:00Z","tenant":"acme","provider":"openai","model":"m","status":"ok","reasoning_tokens":5}` + ",\n" +
		event("v-2", "acme") + ",\n" +
		`{"event_id":"i-3","timestamp":"yesterday"}` + ",\n" +
		`42` + ",\n" +
		`{"event_id": "i-5", "tenant": 7}` + "]"
	resp, r := g.post(t, "key-acme", body)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400; body %+v", resp.StatusCode, r)
	}
	if r.Accepted != 2 || r.RejectedCount != 4 || r.Error != "" {
		t.Fatalf("body %+v; want accepted 2, 4 rejected, no error", r)
	}
	want := []struct {
		index      int
		id, substr string
	}{
		{1, "i-1", `"reasoning_tokens" = "5": exceeds output_tokens (0)`},
		{3, "i-3", `"timestamp" = "yesterday"`},
		{4, "", "expected '{'"},
		{5, "i-5", `"tenant" = "7": must be a string`}, // a wrong type is not filled in
	}
	for i, w := range want {
		rj := r.Rejected[i]
		if rj.Index != w.index || rj.EventID != w.id || !strings.Contains(rj.Error, w.substr) {
			t.Errorf("rejection %d = %+v; want index %d, id %q, error containing %q", i, rj, w.index, w.id, w.substr)
		}
	}
	got := consumeAll(t, g.broker.Addr(), g.opts.Topic, 2, 300*time.Millisecond)
	if _, ok := got["v-0"]; !ok || len(got) != 2 {
		t.Errorf("topic holds %v, want v-0 and v-2", keys(got))
	}
}

func TestBadRequest400WholeBody(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	for _, tc := range []struct{ name, body, ct, ce, wantErr string }{
		{"empty", "", "", "", "body is empty"},
		{"blank", " \n\t", "", "", "body is empty"},
		{"array does not end", "[" + event("x", "acme") + ",", "", "", "expected a value, found end of body"},
		{"string does not end", `[{"event_id":"x}]`, "", "", "string does not end"},
		{"brackets do not match", `[{"a":[}]`, "", "", `expected ']', found '}'`},
		{"junk after array", "[" + event("x", "acme") + "] x", "", "", "expected end of body"},
		{"missing comma", "[" + event("x", "acme") + event("y", "acme") + "]", "", "", "expected ',' or ']'"},
		{"cloudevents batch not an array", `{"a":1}`, "application/cloudevents-batch+json", "", "expected '['"},
		{"bad gzip", "not gzip at all", "", "gzip", "cannot read the request body: Content-Encoding is gzip, but the body does not start as gzip does"},
		{"short bad gzip", "[]", "", "gzip", "the body does not start as gzip does"},
		{"empty gzip", "", "", "gzip", "cannot read the request body: it is empty, but Content-Encoding is gzip"},
		{"gzip header cut", gzipped(event("x", "acme"))[:5], "", "gzip", "the gzip body is truncated: it ends after 5 bytes"},
		{"gzip stream cut", gzipped(event("x", "acme"))[:40], "", "gzip", "the gzip body is truncated: it ends after 40 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := []string{}
			if tc.ct != "" {
				h = append(h, "Content-Type: "+tc.ct)
			}
			if tc.ce != "" {
				h = append(h, "Content-Encoding: "+tc.ce)
			}
			resp, r := g.post(t, "key-acme", tc.body, h...)
			if resp.StatusCode != http.StatusBadRequest || r.Accepted != 0 || !strings.Contains(r.Error, tc.wantErr) {
				t.Errorf("status %d, body %+v; want 400, accepted 0, error containing %q", resp.StatusCode, r, tc.wantErr)
			}
		})
	}
	got := consumeAll(t, g.broker.Addr(), g.opts.Topic, 0, 300*time.Millisecond)
	if len(got) != 0 {
		t.Errorf("topic holds %v after whole-body 400s, want nothing", keys(got))
	}
}

func TestMissingTenantTakesTheKeys(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	noTenant := event("nt-1", "")
	nullTenant := strings.Replace(event("nt-2", "acme"), `"tenant":"acme"`, `"tenant":null`, 1)
	emptyTenant := strings.Replace(event("nt-3", "acme"), `"tenant":"acme"`, `"tenant":""`, 1)
	// Missing tenant and another violation: the other one is reported.
	twoFaults := `{"event_id":"nt-4","timestamp":"2025-11-01T10:00:00Z","provider":"openai","status":"ok"}`
	resp, r := g.post(t, "key-acme", "["+noTenant+","+nullTenant+","+emptyTenant+","+twoFaults+"]")
	if resp.StatusCode != http.StatusBadRequest || r.Accepted != 3 || r.RejectedCount != 1 {
		t.Fatalf("status %d, body %+v; want 400 with 3 accepted", resp.StatusCode, r)
	}
	if rj := r.Rejected[0]; rj.Index != 3 || !strings.Contains(rj.Error, `"model"`) {
		t.Errorf("rejection %+v; want index 3 naming model", rj)
	}
	// The wildcard key has no tenant to give.
	resp, r = g.post(t, "key-admin", event("nt-5", ""))
	if resp.StatusCode != http.StatusBadRequest || r.Accepted != 0 || !strings.Contains(r.Rejected[0].Error, `"tenant"`) {
		t.Errorf("wildcard key, no tenant: status %d, body %+v; want 400 naming tenant", resp.StatusCode, r)
	}
	got := consumeAll(t, g.broker.Addr(), g.opts.Topic, 3, 300*time.Millisecond)
	for _, id := range []string{"nt-1", "nt-2", "nt-3"} {
		c, ok := got[id]
		if !ok || c.event.Tenant != "acme" || c.key != "acme\x00gpt-4o" || !strings.Contains(c.value, `"tenant":"acme"`) {
			t.Errorf("%s on the topic: %+v; want tenant acme", id, c)
		}
	}
	if len(got) != 3 {
		t.Errorf("topic holds %v, want nt-1..3", keys(got))
	}
}

func TestFormats(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	ce := func(id string, data string) string {
		return `{"specversion":"1.0","id":"` + id + `","source":"/svc/chat","type":"costpipe.event","datacontenttype":"application/json","data":` + data + `}`
	}
	ndjson := event("nd-0", "acme") + "\r\n\n" + `{"event_id":"nd-bad"}` + "\n" + event("nd-3", "acme") + "\n"
	for _, tc := range []struct {
		name, body string
		headers    []string
		code       int
		accepted   int
		rejected   map[int]string // index → error substring
	}{
		{"json object", event("o-1", "acme"), nil, 202, 1, nil},
		{"json array", "[" + event("a-1", "acme") + "," + event("a-2", "acme") + "]", nil, 202, 2, nil},
		{"empty array", " [ ] ", nil, 202, 0, nil},
		{"no content type", event("nct-1", "acme"), []string{"Content-Type:"}, 202, 1, nil},
		{"json with charset", event("cs-1", "acme"), []string{"Content-Type: application/json; charset=utf-8"}, 202, 1, nil},
		{"ndjson", ndjson, []string{"Content-Type: application/x-ndjson"}, 400, 2, map[int]string{2: `"timestamp"`}},
		{"jsonl", event("jl-1", "acme") + "\n", []string{"Content-Type: application/jsonl"}, 202, 1, nil},
		{"gzip array", gzipped("[" + event("gz-1", "acme") + "," + event("gz-2", "acme") + "]"), []string{"Content-Encoding: gzip"}, 202, 2, nil},
		{"gzip ndjson", gzipped(event("gzn-1", "acme") + "\n" + event("gzn-2", "acme")), []string{"Content-Type: application/x-ndjson", "Content-Encoding: gzip"}, 202, 2, nil},
		{"cloudevent", ce("c1", event("ce-1", "acme")), []string{"Content-Type: application/cloudevents+json"}, 202, 1, nil},
		{"cloudevent batch", "[" + ce("c2", event("ce-2", "acme")) + "," + ce("c3", `{"event_id":"ce-3"}`) + "," +
			`{"specversion":"0.3","id":"c4","source":"s","type":"t","data":` + event("ce-4", "acme") + "}," +
			`{"specversion":"1.0","id":"c5","source":"s","type":"t","data_base64":"e30="},` +
			`{"specversion":"1.0","id":"","source":"s","type":"t","data":{}},` +
			`{"specversion":"1.0","id":"c7","source":"s","type":"t","datacontenttype":"text/xml","data":{}}` + "]",
			[]string{"Content-Type: application/cloudevents-batch+json"}, 400, 1,
			map[int]string{1: `"timestamp"`, 2: `"specversion" is "0.3"`, 3: "data_base64", 4: `"id" must be`, 5: "datacontenttype"}},
		{"gzip cloudevent", gzipped(ce("c8", event("ce-8", "acme"))), []string{"Content-Type: application/cloudevents+json", "Content-Encoding: gzip"}, 202, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, r := g.post(t, "key-acme", tc.body, tc.headers...)
			if resp.StatusCode != tc.code || r.Accepted != tc.accepted || r.RejectedCount != len(tc.rejected) {
				t.Fatalf("status %d, body %+v; want %d with %d accepted, %d rejected", resp.StatusCode, r, tc.code, tc.accepted, len(tc.rejected))
			}
			for _, rj := range r.Rejected {
				want, ok := tc.rejected[rj.Index]
				if !ok || !strings.Contains(rj.Error, want) {
					t.Errorf("rejection %+v; want index in %v with error containing %q", rj, tc.rejected, want)
				}
			}
		})
	}
	got := consumeAll(t, g.broker.Addr(), g.opts.Topic, 15, 300*time.Millisecond)
	for _, id := range []string{"o-1", "a-1", "a-2", "nct-1", "cs-1", "nd-0", "nd-3", "jl-1", "gz-1", "gz-2", "gzn-1", "gzn-2", "ce-1", "ce-2", "ce-8"} {
		if _, ok := got[id]; !ok {
			t.Errorf("%s is not on the topic", id)
		}
	}
	if len(got) != 15 {
		t.Errorf("topic holds %d events, want 15: %v", len(got), keys(got))
	}
}

func TestMethod405AndMediaType415(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	req, _ := http.NewRequest(http.MethodGet, g.url+"/v1/events", nil)
	resp, r := do(t, req, "key-acme")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" || !strings.Contains(r.Error, "use POST") {
		t.Errorf("GET: status %d, Allow %q, body %+v; want 405, Allow POST", resp.StatusCode, resp.Header.Get("Allow"), r)
	}
	for _, tc := range []struct{ header, wantErr string }{
		{"Content-Type: text/plain", `"text/plain"`},
		{"Content-Type: application/x-www-form-urlencoded", "want application/json"},
		{"Content-Type: application/json; charset=latin1", "must be UTF-8"},
		{"Content-Encoding: br", `Content-Encoding "br"`},
	} {
		resp, r := g.post(t, "key-acme", event("e", "acme"), tc.header)
		if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(r.Error, tc.wantErr) {
			t.Errorf("%s: status %d, body %+v; want 415 naming %s", tc.header, resp.StatusCode, r, tc.wantErr)
		}
	}
}

func TestTooLarge413(t *testing.T) {
	t.Parallel()
	const limit = 8 << 10
	g := startGateway(t, func(o *Options) { o.MaxBodyBytes = limit })
	big := "[" + strings.Repeat(event("big", "acme")+",", limit/300) + event("big", "acme") + "]"
	if len(big) <= limit {
		t.Fatalf("test body of %d bytes is not over %d", len(big), limit)
	}
	// Known length, unknown length (chunked), and small gzip of a large body.
	resp, r := g.post(t, "key-acme", big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(r.Error, strconv.Itoa(limit)) {
		t.Errorf("Content-Length: status %d, body %+v; want 413", resp.StatusCode, r)
	}
	req, _ := http.NewRequest(http.MethodPost, g.url+"/v1/events", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	resp, _ = do(t, req, "key-acme")
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked: status %d, want 413", resp.StatusCode)
	}
	bomb := gzipped("[" + strings.Repeat(" ", 10*limit) + "]")
	if len(bomb) >= limit {
		t.Fatalf("gzip test body of %d bytes is not under %d", len(bomb), limit)
	}
	resp, _ = g.post(t, "key-acme", bomb, "Content-Encoding: gzip")
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("gzip: status %d, want 413", resp.StatusCode)
	}
	// Exactly at the limit passes.
	exact := event("fits", "acme")
	exact += strings.Repeat(" ", limit-len(exact))
	resp, r = g.post(t, "key-acme", exact)
	if resp.StatusCode != http.StatusAccepted || r.Accepted != 1 {
		t.Errorf("body of exactly %d bytes: status %d, body %+v; want 202", limit, resp.StatusCode, r)
	}
}

// slowPost starts a POST whose body is held open until release is called,
// and returns once the gateway holds the request (its in-flight gauge rose).
// abort ends the body with an error instead.
func slowPost(t *testing.T, g *gateway, contentLength int64, first string) (release func(rest string) (*http.Response, Response), abort func()) {
	t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, g.url+"/v1/events", pr)
	req.ContentLength = contentLength
	req.Header.Set("Authorization", "Bearer key-acme")
	req.Header.Set("Content-Type", "application/json")
	type result struct {
		resp *http.Response
		r    Response
		err  error
	}
	done := make(chan result, 1)
	before := g.srv.inflight.Load()
	go func() { // no t.Fatal here: this is not the test's goroutine
		var res result
		res.resp, res.err = http.DefaultClient.Do(req)
		if res.err == nil {
			defer res.resp.Body.Close()
			raw, _ := io.ReadAll(res.resp.Body)
			res.err = json.Unmarshal(raw, &res.r)
		}
		done <- res
	}()
	pw.Write([]byte(first))
	for deadline := time.Now().Add(5 * time.Second); g.srv.inflight.Load() == before; {
		if time.Now().After(deadline) {
			t.Fatal("the slow request never got in flight")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return func(rest string) (*http.Response, Response) {
		pw.Write([]byte(rest))
		pw.Close()
		res := <-done
		if res.err != nil {
			t.Errorf("slow request: %v", res.err)
			return &http.Response{}, Response{}
		}
		return res.resp, res.r
	}, func() { pw.CloseWithError(io.ErrUnexpectedEOF) }
}

func TestOverload429(t *testing.T) {
	t.Parallel()
	t.Run("requests", func(t *testing.T) {
		g := startGateway(t, func(o *Options) { o.MaxInFlight = 1; o.RetryAfter = 3 * time.Second })
		body := event("slow-1", "acme")
		release, _ := slowPost(t, g, int64(len(body)), body[:10])
		resp, r := g.post(t, "key-acme", event("fast-1", "acme"))
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3" || r.Accepted != 0 {
			t.Errorf("second request: status %d, Retry-After %q, body %+v; want 429, Retry-After 3", resp.StatusCode, resp.Header.Get("Retry-After"), r)
		}
		resp, r = release(body[10:])
		if resp.StatusCode != http.StatusAccepted || r.Accepted != 1 {
			t.Errorf("held request: status %d, body %+v; want 202", resp.StatusCode, r)
		}
		// The slot is free again.
		if resp, _ := g.post(t, "key-acme", event("fast-2", "acme")); resp.StatusCode != http.StatusAccepted {
			t.Errorf("after release: status %d, want 202", resp.StatusCode)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		const limit = 64 << 10
		g := startGateway(t, func(o *Options) { o.MaxBodyBytes = limit; o.MaxInFlightBytes = limit })
		body := event("slow-2", "acme")
		body += strings.Repeat(" ", limit-100-len(body))
		release, _ := slowPost(t, g, int64(len(body)), body[:10])
		resp, r := g.post(t, "key-acme", "["+event("fast-3", "acme")+"]"+strings.Repeat(" ", 1000))
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" || !strings.Contains(r.Error, "bytes of requests in flight") {
			t.Errorf("second request: status %d, body %+v; want 429 for bytes", resp.StatusCode, r)
		}
		if resp, _ := release(body[10:]); resp.StatusCode != http.StatusAccepted {
			t.Errorf("held request: status %d, want 202", resp.StatusCode)
		}
		if used := g.srv.budget.used.Load(); used != 0 {
			t.Errorf("%d bytes still reserved after every request ended", used)
		}
	})
}

func TestKafkaDown503AndReadyz(t *testing.T) {
	t.Parallel()
	g := startGateway(t, func(o *Options) { o.ProduceTimeout = time.Second; o.RetryAfter = 2 * time.Second })
	get := func(path string) (int, string) {
		resp, err := http.Get(g.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("readyz with Kafka up: %d %s", code, body)
	}
	if resp, _ := g.post(t, "key-acme", event("up-1", "acme")); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("with Kafka up: status %d", resp.StatusCode)
	}
	g.broker.Close()
	start := time.Now()
	resp, r := g.post(t, "key-acme", "["+event("down-1", "acme")+`,{"event_id":"down-bad"}]`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("with Kafka down: status %d, Retry-After %q, body %+v; want 503, 2", resp.StatusCode, resp.Header.Get("Retry-After"), r)
	}
	if r.Accepted != 0 || r.RejectedCount != 1 || !strings.Contains(r.Error, "no event was accepted") {
		t.Errorf("body %+v; want accepted 0, the invalid event listed, a retry hint", r)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("503 took %s, want about the 1 s produce timeout", d)
	}
	// A check answers for a second: poll until the next one runs.
	code, body := get("/readyz")
	for deadline := time.Now().Add(5 * time.Second); code == 200 && time.Now().Before(deadline); code, body = get("/readyz") {
		time.Sleep(100 * time.Millisecond)
	}
	if code != 503 || body != "not ready: Kafka unreachable\n" || strings.Contains(body, g.broker.Addr()) {
		t.Errorf("readyz with Kafka down: %d %q; want 503 saying Kafka is unreachable, not where", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz: %d, want 200 whatever Kafka does", code)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		`costpipe_ingest_requests_total{code="202"} 1`,
		`costpipe_ingest_requests_total{code="503"} 1`,
		`costpipe_ingest_events_total{result="accepted"} 1`,
		`costpipe_ingest_events_total{result="failed"} 1`,
		`costpipe_ingest_events_total{result="rejected"} 1`,
		`costpipe_ingest_inflight_requests 0`,
		`costpipe_ingest_produce_duration_seconds_count 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want+"\n") && !strings.Contains(metrics, want+" ") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestDrainFinishesInFlightRequests(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	body := event("drain-1", "acme")
	release, _ := slowPost(t, g, int64(len(body)), body[:10])
	g.cancel() // as SIGTERM does
	// New connections are refused once the listener closed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := (&http.Client{Timeout: time.Second}).Get(g.url + "/healthz")
		if err != nil {
			break
		}
		c.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the gateway still accepts connections while draining")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, r := release(body[10:])
	if resp.StatusCode != http.StatusAccepted || r.Accepted != 1 {
		t.Fatalf("in-flight request during drain: status %d, body %+v; want 202", resp.StatusCode, r)
	}
	select {
	case err := <-g.served:
		if err != nil {
			t.Errorf("Serve after a clean drain: %v", err)
		}
		g.served <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}
	if got := consumeAll(t, g.broker.Addr(), g.opts.Topic, 1, 200*time.Millisecond); len(got) != 1 {
		t.Errorf("topic holds %v, want drain-1", keys(got))
	}
}

func TestDrainTimeoutCutsOff(t *testing.T) {
	t.Parallel()
	g := startGateway(t, func(o *Options) { o.ShutdownTimeout = 200 * time.Millisecond })
	body := event("cut-1", "acme")
	_, abort := slowPost(t, g, int64(len(body)), body[:10])
	g.cancel()
	select {
	case err := <-g.served:
		if err == nil || !strings.Contains(err.Error(), "cannot drain") {
			t.Errorf("Serve = %v, want a drain error", err)
		}
		g.served <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the shutdown timeout")
	}
	abort()
}

// ReloadKeys swaps the keys in from the file: the removed key is refused,
// the new one accepted; a broken file keeps them, and the metrics count
// both reloads.
func TestReloadKeysReplacesKeys(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(file, []byte("key-acme acme\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, func(o *Options) { o.KeysFile = file })
	if err := os.WriteFile(file, []byte("key-new acme\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := g.srv.ReloadKeys(); err != nil || n != 1 {
		t.Fatalf("ReloadKeys = %d, %v", n, err)
	}
	if resp, _ := g.post(t, "key-acme", event("k-1", "acme")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("old key: status %d, want 401", resp.StatusCode)
	}
	if resp, _ := g.post(t, "key-new", event("k-2", "acme")); resp.StatusCode != http.StatusAccepted {
		t.Errorf("new key: status %d, want 202", resp.StatusCode)
	}
	if err := os.WriteFile(file, []byte("key-new acme\nkey-new beta\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := g.srv.ReloadKeys(); err == nil || !strings.Contains(err.Error(), "keys.txt:2") {
		t.Errorf("ReloadKeys of a file with a repeated key = %v, want an error naming keys.txt:2", err)
	}
	if resp, _ := g.post(t, "key-new", event("k-3", "acme")); resp.StatusCode != http.StatusAccepted {
		t.Errorf("after a failed reload: status %d, want 202 (the old keys stay)", resp.StatusCode)
	}
	for sample, want := range map[string]float64{`costpipe_ingest_keys_reload_total{result="ok"}`: 1,
		`costpipe_ingest_keys_reload_total{result="error"}`: 1, "costpipe_ingest_keys": 1} {
		if got := metricValue(t, g, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
}

func TestInsecureNoAuth(t *testing.T) {
	t.Parallel()
	opts := DefaultOptions()
	if err := opts.Validate(); err == nil || !strings.Contains(err.Error(), "without API keys") {
		t.Errorf("default options without keys: Validate = %v, want refusal", err)
	}
	g := startGateway(t, func(o *Options) { o.Keys = nil; o.InsecureNoAuth = true })
	resp, r := g.post(t, "", "["+event("in-1", "acme")+","+event("in-2", "")+"]")
	if resp.StatusCode != http.StatusBadRequest || r.Accepted != 1 || r.Rejected[0].Index != 1 {
		t.Errorf("no auth: status %d, body %+v; want in-1 accepted, in-2 rejected for its tenant", resp.StatusCode, r)
	}
}

func TestConcurrentRequestsShareTheProducer(t *testing.T) {
	t.Parallel()
	// Requests that fail (client gone) must not fail their neighbours'
	// records: many concurrent requests, some cancelled mid-wait.
	g := startGateway(t, nil)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				ctx, cancel := context.WithCancel(context.Background())
				body := "[" + event("cc-"+strconv.Itoa(w)+"-"+strconv.Itoa(i), "acme") + "]"
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.url+"/v1/events", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer key-acme")
				req.Header.Set("Content-Type", "application/json")
				if i%5 == 4 {
					go func() { time.Sleep(time.Duration(i) * 100 * time.Microsecond); cancel() }()
				}
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						t.Errorf("status %d, want 202", resp.StatusCode)
					}
				}
				cancel()
			}
		}()
	}
	wg.Wait()
}

func keys(m map[string]consumed) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestShutdownDelayKeepsServing: once Serve's context ends, /readyz answers
// 503 at once while requests, on new connections too, are still served for
// ShutdownDelay, so that a load balancer sees the 503 and stops sending
// before the listener closes; the drain follows, within ShutdownTimeout
// counted from the signal.
func TestShutdownDelayKeepsServing(t *testing.T) {
	// Not parallel: it bounds a readiness check and a first produce in wall time.
	const delay = time.Second
	g := startGateway(t, func(o *Options) { o.ShutdownDelay = delay; o.ShutdownTimeout = 5 * time.Second })
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	start := time.Now()
	g.cancel() // as SIGTERM does
	resp, err := fresh.Get(g.url + "/readyz")
	if err != nil {
		t.Fatalf("readyz during the shutdown delay: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "shutting down") {
		t.Errorf("readyz during the shutdown delay: %d %s; want 503 shutting down", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodPost, g.url+"/v1/events", strings.NewReader(event("delay-1", "acme")))
	resp, r := do(t, req, "key-acme") // a new connection: no request went to this gateway before
	if resp.StatusCode != http.StatusAccepted || r.Accepted != 1 {
		t.Errorf("POST on a new connection during the shutdown delay: %d %+v; want 202", resp.StatusCode, r)
	}
	if d := time.Since(start); d > delay*3/4 {
		t.Fatalf("the checks took %s, too close to the %s delay to mean anything", d, delay)
	}
	select {
	case err := <-g.served:
		if err != nil {
			t.Errorf("Serve after a clean drain: %v", err)
		}
		if d := time.Since(start); d < delay {
			t.Errorf("Serve returned %s after the signal, before the %s delay", d, delay)
		}
		g.served <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the delay and the drain")
	}
	if _, err := fresh.Get(g.url + "/healthz"); err == nil {
		t.Error("the listener still accepts connections after the drain")
	}
}

// TestEventsBudgetCoversRecords: while a request's events are produced,
// the in-flight byte budget holds its records (arena, spans, kgo.Records)
// as well as its body: with Kafka down, a request waits out the produce
// timeout holding them.
func TestEventsBudgetCoversRecords(t *testing.T) {
	t.Parallel()
	g := startGateway(t, func(o *Options) { o.ProduceTimeout = time.Second; o.MaxBodyBytes = 1 << 20 })
	var sb strings.Builder
	for i := 0; sb.Len() < 256<<10; i++ {
		sb.WriteString(event("rec-"+strconv.Itoa(i), "acme") + "\n")
	}
	body := sb.String()
	g.broker.Close()
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, g.url+"/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer key-acme")
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	var peak int64
	for {
		select {
		case code := <-done:
			if code != http.StatusServiceUnavailable {
				t.Errorf("status %d with Kafka down, want 503", code)
			}
			if want := int64(2 * len(body)); peak < want {
				t.Errorf("the request held at most %d bytes of the budget, want at least %d: its %d-byte body and its records", peak, want, len(body))
			}
			if used := g.srv.budget.used.Load(); used != 0 {
				t.Errorf("%d bytes still reserved after the request", used)
			}
			return
		default:
			peak = max(peak, g.srv.budget.used.Load())
			time.Sleep(time.Millisecond)
		}
	}
}

// TestPerKeyReceivingLimit: one API key with MaxReceivingPerKey requests
// whose body has not arrived (slow connections) gets 429 for one more,
// while other keys are still served.
func TestPerKeyReceivingLimit(t *testing.T) {
	t.Parallel()
	g := startGateway(t, func(o *Options) { o.MaxInFlight = 4; o.MaxReceivingPerKey = 2 })
	body := event("held-1", "acme")
	var releases []func(string) (*http.Response, Response)
	for range 2 {
		release, _ := slowPost(t, g, int64(len(body)), body[:10])
		releases = append(releases, release)
	}
	resp, r := g.post(t, "key-acme", event("third-1", "acme"))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(r.Error, "the API key has 2 requests still sending their body") {
		t.Errorf("a third request of the key: %d %+v; want 429 naming the key's limit", resp.StatusCode, r)
	}
	req, _ := http.NewRequest(http.MethodPost, g.url+"/v1/traces", bytes.NewReader(nil))
	req.Header.Set("Content-Type", "application/x-protobuf")
	if resp, _ := do(t, req, "key-acme"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a third request of the key on /v1/traces: %d, want 429", resp.StatusCode)
	}
	if resp, _ := g.post(t, "key-globex", event("other-1", "globex")); resp.StatusCode != http.StatusAccepted {
		t.Errorf("another key meanwhile: %d, want 202", resp.StatusCode)
	}
	for _, release := range releases {
		if resp, _ := release(body[10:]); resp.StatusCode != http.StatusAccepted {
			t.Errorf("held request: %d, want 202", resp.StatusCode)
		}
	}
	if resp, _ := g.post(t, "key-acme", event("after-1", "acme")); resp.StatusCode != http.StatusAccepted {
		t.Errorf("the key after its requests ended: %d, want 202", resp.StatusCode)
	}
	if n := metricValue(t, g, `costpipe_ingest_refused_requests_total{endpoint="events",reason="max_receiving_per_key"}`); n != 1 {
		t.Errorf("refusals for the key's limit counted %v, want 1", n)
	}
}
