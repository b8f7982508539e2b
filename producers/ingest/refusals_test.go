package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the JSON log lines with message msg.
func (l *lockedBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestRefusalsAreLoggedAndCounted: 400, 401, 403 and 429 refusals are
// counted by reason and logged at most once per tenant and reason a
// minute, an unknown key by a fingerprint, never by itself.
func TestRefusalsAreLoggedAndCounted(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var clock sync.Mutex
	g := startGateway(t, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		o.Now = func() time.Time { clock.Lock(); defer clock.Unlock(); return now }
		o.MaxEventAge = 20 * 365 * 24 * time.Hour
	})
	const secret = "sk-leaked-secret-1"
	for range 3 {
		if resp, _ := g.post(t, secret, event("r-1", "acme")); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unknown key: status %d", resp.StatusCode)
		}
	}
	if resp, _ := g.post(t, "", event("r-2", "acme")); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key: status %d", resp.StatusCode)
	}
	for range 2 {
		if resp, _ := g.post(t, "key-acme", event("r-3", "globex")); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("other tenant: status %d", resp.StatusCode)
		}
	}
	if resp, _ := g.post(t, "key-globex", event("r-4", "acme")); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("other tenant: status %d", resp.StatusCode)
	}
	if resp, _ := g.post(t, "key-acme", `[`+event("r-5", "acme")); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("broken array: status %d", resp.StatusCode)
	}
	if resp, _ := g.post(t, "key-acme", `[`+event("r-6", "acme")+`,{"event_id":"bad"}]`); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("invalid event: status %d", resp.StatusCode)
	}
	if resp, _ := postOTLP(t, g, "nope-otlp", "application/x-protobuf", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("OTLP unknown key: status %d", resp.StatusCode)
	}

	for sample, want := range map[string]float64{
		`costpipe_ingest_refused_requests_total{endpoint="events",reason="unknown_key"}`:      3,
		`costpipe_ingest_refused_requests_total{endpoint="events",reason="missing_key"}`:      1,
		`costpipe_ingest_refused_requests_total{endpoint="events",reason="forbidden_tenant"}`: 3,
		`costpipe_ingest_refused_requests_total{endpoint="events",reason="bad_body"}`:         1,
		`costpipe_ingest_refused_requests_total{endpoint="events",reason="invalid_events"}`:   1,
		`costpipe_ingest_refused_requests_total{endpoint="events",reason="max_inflight"}`:     0,
		`costpipe_ingest_refused_requests_total{endpoint="traces",reason="unknown_key"}`:      1,
	} {
		if got := metricValue(t, g, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}

	lines := logs.lines(t, "ingest refused requests")
	type key struct{ endpoint, reason, tenant string }
	got := map[key]map[string]any{}
	for _, l := range lines {
		k := key{l["endpoint"].(string), l["reason"].(string), l["tenant"].(string)}
		if _, dup := got[k]; dup {
			t.Errorf("two lines for %v within a minute: %v", k, l)
		}
		got[k] = l
	}
	fp := sha256.Sum256([]byte(secret))
	for _, want := range []struct {
		k           key
		status      float64
		fingerprint string
	}{
		{key{"/v1/events", "unknown_key", "unknown key"}, 401, hex.EncodeToString(fp[:4])},
		{key{"/v1/events", "missing_key", "no key"}, 401, ""},
		{key{"/v1/events", "forbidden_tenant", "acme"}, 403, ""},
		{key{"/v1/events", "forbidden_tenant", "globex"}, 403, ""},
		{key{"/v1/events", "bad_body", "acme"}, 400, ""},
		{key{"/v1/events", "invalid_events", "acme"}, 400, ""},
		{key{"/v1/traces", "unknown_key", "unknown key"}, 401, ""},
	} {
		l, ok := got[want.k]
		if !ok {
			t.Errorf("no log line for %v; lines %v", want.k, lines)
			continue
		}
		if l["status"] != want.status || l["level"] != "WARN" {
			t.Errorf("line %v: want status %v at WARN", l, want.status)
		}
		if want.fingerprint != "" && l["key_fingerprint"] != "sha256:"+want.fingerprint {
			t.Errorf("line %v: want key_fingerprint sha256:%s", l, want.fingerprint)
		}
	}
	if len(got) != 7 {
		t.Errorf("%d refusal lines, want 7: %v", len(got), lines)
	}
	if strings.Contains(logs.b.String(), secret) || strings.Contains(logs.b.String(), "nope-otlp") {
		t.Errorf("the log reveals a key: %s", logs.b.String())
	}

	// A minute later the next refusal is logged again, with the count.
	clock.Lock()
	now = now.Add(time.Minute)
	clock.Unlock()
	g.post(t, "key-acme", event("r-7", "globex"))
	lines = logs.lines(t, "ingest refused requests")
	last := lines[len(lines)-1]
	if last["tenant"] != "acme" || last["reason"] != "forbidden_tenant" || last["requests"] != 2.0 {
		t.Errorf("line after a minute %v; want acme, forbidden_tenant, 2 requests (1 not logged, and this one)", last)
	}
}
