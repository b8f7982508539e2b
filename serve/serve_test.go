package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/costpipe/costpipe/alerts"
	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/sketch"
	"github.com/costpipe/costpipe/producers/ingest"
	"github.com/costpipe/costpipe/warehouse"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// now is the fixture's clock: 20 whole days of usage (March 1 to 20,
// 2026) lie before it.
var now = time.Date(2026, 3, 21, 12, 0, 0, 0, time.UTC)

// Hostile tenant names: quotes, SQL, unicode. Key files split on
// whitespace, so a tenant name has none.
const (
	acme    = "acme"
	hostile = `o'brien";DROP_TABLE--usage_1m/*x*/`
	unicode = "租户-ü\u200b"
	globex  = "globex"
)

// tenantFixture is what each tenant calls per day: its model and its calls
// (the numbers are distinct so a leak of any of them is visible).
var tenantFixture = map[string]struct {
	model string
	calls uint64
	cost  int64 // micro-USD per call
}{
	acme:    {"gpt-4o", 7, 1500},
	hostile: {"claude-sonnet", 13, 2700},
	unicode: {"gemini-pro", 17, 3100},
	globex:  {"secret-model-globex", 19, 4300}, // unpriced in the catalog
}

// fixture lands 20 days of usage of the four tenants (one row per hour
// at 10:00, so minute, hour and day tables agree) and returns a warehouse
// on it.
func fixture(t testing.TB) *warehouse.Warehouse {
	t.Helper()
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	ctx := context.Background()
	opts := warehouse.DefaultOptions()
	opts.DSN = srv.DSN(db)
	opts.MaxOpenConns = 8
	w, err := warehouse.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var h sketch.Histogram
	for _, v := range []float64{100, 200, 400} {
		h.Add(v)
	}
	idx, cnt := h.AppendArrays([]int16{}, []uint64{})
	for _, tb := range warehouse.Tables {
		var rows []warehouse.Rollup
		for d := 1; d <= 20; d++ {
			ts := time.Date(2026, 3, d, 10, 0, 0, 0, time.UTC)
			for tenant, f := range tenantFixture {
				r := warehouse.Rollup{TS: tb.Truncate(ts), Tenant: tenant, Provider: "p", Model: f.model, SrcTopic: "t",
					SrcOffset: int64(d), Requests: f.calls * uint64(d), InputTokens: 1000 * uint64(d),
					Cost:    pricing.FromPicos(f.cost * int64(f.calls) * int64(d) * 1e6),
					Latency: warehouse.Dist{Count: 3, SumMicros: 700000, MinMs: 100, MaxMs: 400, HistIdx: idx, HistCnt: cnt},
					TTFT:    warehouse.Dist{MinMs: math.Inf(1)}}
				if f.model == tenantFixture[globex].model {
					r.UnpricedRequests, r.Cost = r.Requests, pricing.Pico{}
				}
				rows = append(rows, r)
			}
		}
		if err := w.InsertRollups(ctx, tb, rows); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// testKeys binds a key to each tenant and "root" to every tenant.
func testKeys(t testing.TB) *ingest.Keys {
	var b strings.Builder
	for _, tenant := range []string{acme, hostile, unicode, globex} {
		fmt.Fprintf(&b, "key-%x %s\n", tenant, tenant)
	}
	b.WriteString("root *\n")
	k, err := ingest.ParseKeys(strings.NewReader(b.String()), "test")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keyOf is the test key of tenant.
func keyOf(tenant string) string { return fmt.Sprintf("key-%x", tenant) }

// newTestServer serves the fixture with opts changed by edit.
func newTestServer(t *testing.T, w *warehouse.Warehouse, edit func(*Options)) *httptest.Server {
	t.Helper()
	opts := DefaultOptions()
	opts.Keys = testKeys(t)
	opts.Now = func() time.Time { return now }
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Alerts = alerts.NewStore(w, func() time.Time { return now })
	if edit != nil {
		edit(&opts)
	}
	s, err := New(w, analytics.New(w, analytics.Options{Now: func() time.Time { return now }}), opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return hs
}

type answer struct {
	code  int
	ctype string
	body  string
}

// get requests path with key ("" for none) and accept.
func get(t *testing.T, hs *httptest.Server, key, path, accept string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", hs.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// rows decodes a JSON array of objects.
func rows(t *testing.T, a answer) []map[string]any {
	t.Helper()
	if a.code != 200 {
		t.Fatalf("status %d: %s", a.code, a.body)
	}
	var out []map[string]any
	if err := json.Unmarshal([]byte(a.body), &out); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, a.body)
	}
	return out
}

// sumDays is 1 + 2 + … + 20, the multiplier of the fixture's 20 days.
const sumDays = 210

func TestAPIAnswers(t *testing.T) {
	t.Parallel()
	w := fixture(t)
	hs := newTestServer(t, w, nil)

	// Usage by tenant over March 1–21 with the * key: every tenant, exact.
	got := rows(t, get(t, hs, "root", "/api/v1/usage?from=2026-03-01&to=2026-03-21&by=tenant", ""))
	if len(got) != 4 {
		t.Fatalf("%d tenants, want 4: %v", len(got), got)
	}
	for _, r := range got {
		f := tenantFixture[r["tenant"].(string)]
		if r["requests"] != float64(f.calls*sumDays) {
			t.Errorf("%q: requests %v, want %d", r["tenant"], r["requests"], f.calls*sumDays)
		}
	}
	// since is anchored at the injected clock: the last 26 h hold March 20 10:00 only.
	got = rows(t, get(t, hs, "root", "/api/v1/usage?since=26h&where=tenant%3Dacme", ""))
	if len(got) != 1 || got[0]["requests"] != float64(7*20) {
		t.Errorf("since=26h for acme: %v, want the 140 calls of March 20", got)
	}

	// Arrow on request.
	a := get(t, hs, "root", "/api/v1/top?since=30d&by=model&metric=requests", ContentTypeArrow)
	if a.code != 200 || a.ctype != ContentTypeArrow {
		t.Fatalf("arrow: %d %q %s", a.code, a.ctype, a.body)
	}
	rd, err := ipc.NewReader(bytes.NewReader([]byte(a.body)))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for rd.Next() {
		n += rd.Record().NumRows()
	}
	if n != 4 || rd.Schema().Field(0).Name != "rank" {
		t.Errorf("arrow: %d rows, schema %v", n, rd.Schema())
	}
	rd.Release()

	// Series fills steps; latency percentiles within 1%.
	got = rows(t, get(t, hs, "root", "/api/v1/series?from=2026-03-01&to=2026-03-08&step=1d&metric=requests&where=tenant%3Dglobex", ""))
	if len(got) != 7 || got[6]["requests"] != float64(19*7) {
		t.Errorf("series: %v", got)
	}
	got = rows(t, get(t, hs, "root", "/api/v1/latency?since=30d", ""))
	if len(got) != 2 || math.Abs(got[0]["p50_ms"].(float64)-200) > 2 {
		t.Errorf("latency: %v", got)
	}
	got = rows(t, get(t, hs, "root", "/api/v1/latency?from=2026-03-01&to=2026-03-04&step=1d&by=model&where=model%3Dgpt-4o", ""))
	if len(got) != 6 || got[0]["ts"] != "2026-03-01T00:00:00Z" || got[0]["measure"] != "latency" || got[0]["count"] != 3.0 ||
		math.Abs(got[0]["p99_ms"].(float64)-400) > 4 || got[1]["measure"] != "ttft" || got[1]["count"] != 0.0 {
		t.Errorf("latency per step: %v", got)
	}
	// Growth and forecast answer with numbers, and with money as exact
	// decimal strings; prices lists the unpriced model.
	got = rows(t, get(t, hs, "root", "/api/v1/growth?by=tenant&metric=requests&window=14", ""))
	if len(got) != 4 || got[0]["wow_pct"] == nil {
		t.Errorf("growth: %v", got)
	}
	got = rows(t, get(t, hs, "root", "/api/v1/forecast?budget=100", ""))
	if len(got) != 1 || !regexp.MustCompile(`^[0-9]+\.[0-9]{12}$`).MatchString(fmt.Sprint(got[0]["forecast_p50"])) {
		t.Errorf("forecast: %v", got)
	}
	got = rows(t, get(t, hs, "root", "/api/v1/prices?since=30d", ""))
	if len(got) == 0 || got[0]["model"] != tenantFixture[globex].model || got[0]["status"] != "unpriced" {
		t.Errorf("prices: %v", got)
	}

	// Errors: JSON naming the parameter.
	for _, c := range []struct {
		path, param string
		code        int
	}{
		{"/api/v1/usage?since=week", "since", 400},
		{"/api/v1/usage?since=1h&from=2026-03-01", "since", 400},
		{"/api/v1/usage?by=region", "by", 400},
		{"/api/v1/usage?since=1h&since=2h", "since", 400},
		{"/api/v1/usage?tenant=acme", "tenant", 400},
		{"/api/v1/top?since=1h", "by", 400},
		{"/api/v1/top?by=model&limit=0", "limit", 400},
		{"/api/v1/series?step=5m", "step", 400},
		{"/api/v1/latency?step=1m&since=1d", "step", 400},
		{"/api/v1/series?step=1m&since=30d", "step", 400},
		{"/api/v1/growth?tz=Mars/Olympus", "tz", 400},
		{"/api/v1/forecast?budget=-1", "budget", 400},
		{"/api/v1/usage?where=region%3Deu", "where", 400},
		{"/api/v1/nothing", "", 404},
	} {
		a := get(t, hs, "root", c.path, "")
		var e apiError
		if err := json.Unmarshal([]byte(a.body), &e); err != nil || a.code != c.code || e.Param != c.param || e.Error == "" {
			t.Errorf("%s: %d %s, want %d naming %q", c.path, a.code, a.body, c.code, c.param)
		}
	}

	// No key, a wrong key, a malformed header: 401.
	for _, key := range []string{"", "nope", "root2"} {
		if a := get(t, hs, key, "/api/v1/usage", ""); a.code != 401 || !strings.Contains(a.body, "cannot authenticate") {
			t.Errorf("key %q: %d %s", key, a.code, a.body)
		}
	}
	req, _ := http.NewRequest("GET", hs.URL+"/api/v1/usage", nil)
	req.Header.Set("Authorization", "Basic cm9vdDo=")
	if resp, err := hs.Client().Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("basic auth: %v %v", resp, err)
	}

	// Operations.
	if a := get(t, hs, "", "/healthz", ""); a.code != 200 {
		t.Errorf("healthz %d", a.code)
	}
	if a := get(t, hs, "", "/readyz", ""); a.code != 200 {
		t.Errorf("readyz %d", a.code)
	}
	m := get(t, hs, "", "/metrics", "")
	for _, want := range []string{`costpipe_serve_requests_total{code="401",route="/api/v1/usage"} 4`,
		`costpipe_serve_requests_total{code="200",route="/api/v1/usage"} 2`, `costpipe_serve_request_duration_seconds_bucket{route="/api/v1/top"`,
		"costpipe_summary_fallbacks_total 0"} {
		if !strings.Contains(m.body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if a := get(t, hs, "", "/", ""); a.code != 200 || !strings.Contains(a.body, "<html") {
		t.Errorf("dashboard: %d %.200s", a.code, a.body)
	}
}

// TestResponseBound: an answer over MaxResponseBytes is refused with a
// hint, a small one passes.
func TestResponseBound(t *testing.T) {
	t.Parallel()
	w := fixture(t)
	hs := newTestServer(t, w, func(o *Options) { o.MaxResponseBytes = 2048 })
	a := get(t, hs, "root", "/api/v1/series?from=2026-03-01&to=2026-03-21&step=1h&by=tenant", "")
	if a.code != 400 || !strings.Contains(a.body, "larger than") {
		t.Errorf("a large answer: %d %.300s", a.code, a.body)
	}
	// Refused once its rows are counted, before the table is built.
	if a := get(t, hs, "root", "/api/v1/latency?from=2026-03-01&to=2026-03-08&step=1h&by=tenant", ""); a.code != 400 || !strings.Contains(a.body, "larger than") {
		t.Errorf("a large latency series: %d %.300s", a.code, a.body)
	}
	if a := get(t, hs, "root", "/api/v1/usage?since=30d", ""); a.code != 200 {
		t.Errorf("a small answer: %d %s", a.code, a.body)
	}
}

// TestTenantIsolation: a tenant's key reads its tenant through every
// endpoint and parameter, never another's name or numbers.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	w := fixture(t)
	ctx := context.Background()
	st := alerts.NewStore(w, func() time.Time { return now })
	var as []*alerts.Alert
	for _, tenant := range []string{acme, globex, hostile} {
		as = append(as, &alerts.Alert{Rule: "budget-" + fmt.Sprint(len(tenant)), Kind: alerts.KindBudget, State: alerts.StateFiring,
			Group: map[string]string{"tenant": tenant}, Value: float64(len(tenant)) * 1111, FiredAt: now, ActiveAt: now,
			Summary: "spend of " + tenant + " over budget"})
	}
	as = append(as, &alerts.Alert{Rule: "total", Kind: alerts.KindBudget, State: alerts.StateFiring, Value: 98765, Summary: "all tenants"})
	if err := st.SaveAlerts(ctx, "r", as); err != nil {
		t.Fatal(err)
	}
	hs := newTestServer(t, w, nil)

	for _, me := range []string{acme, hostile, unicode} {
		t.Run(fmt.Sprintf("%x", me), func(t *testing.T) {
			key := keyOf(me)
			var others []string
			for tenant, f := range tenantFixture {
				if tenant != me {
					others = append(others, tenant, f.model, fmt.Sprint(f.calls*sumDays))
				}
			}
			others = append(others, "98765", "all tenants")
			q := url.QueryEscape
			forbidden := []string{
				"/api/v1/usage?where=tenant%3D" + q(globex),
				"/api/v1/usage?where=tenant%3D" + q(me) + "&where=tenant%3D" + q(globex),
				"/api/v1/usage?where=%20tenant%20%3D" + q(globex),
				"/api/v1/usage?where=tenant%3D" + q(me+" "),
				"/api/v1/usage?where=tenant%3D" + q(me) + "%00",
				"/api/v1/usage?where=tenant%3D" + q(me) + "%27%20OR%201%3D1",
				"/api/v1/usage?where=tenant%253D" + q(globex), // double-encoded: a where of "tenant%3Dglobex" is no condition
				"/api/v1/top?by=tenant&where=tenant%3D" + q(hostile+unicode),
				"/api/v1/series?where=tenant%3D" + q(globex),
				"/api/v1/growth?where=tenant%3D" + q(globex),
				"/api/v1/forecast?where=tenant%3D" + q(globex),
				"/api/v1/prices?where=tenant%3D" + q(globex),
				"/api/v1/alerts/notifications",
			}
			for _, path := range forbidden {
				a := get(t, hs, key, path, "")
				if a.code != 403 && a.code != 400 {
					t.Errorf("%s: %d, want 403 (or 400)", path, a.code)
				}
				if strings.Contains(path, "%253D") {
					continue // the malformed where is a 400
				}
				if a.code != 403 {
					t.Errorf("%s: %d, want 403: %s", path, a.code, a.body)
				}
				for _, o := range append(others, me) {
					if strings.Contains(a.body, o) {
						t.Errorf("%s: the error names %q: %s", path, o, a.body)
					}
				}
			}
			f := tenantFixture[me]
			allowed := []string{
				"/api/v1/usage?since=30d",
				"/api/v1/usage?since=30d&by=tenant,model",
				"/api/v1/usage?since=30d&by=tenant&where=tenant%3D" + q(me),
				"/api/v1/latency?since=30d&by=tenant",
				"/api/v1/top?since=30d&by=tenant",
				"/api/v1/top?since=30d&by=model&metric=requests",
				"/api/v1/series?since=30d&step=1d&by=tenant",
				"/api/v1/series?since=30d&step=1d&metric=requests",
				"/api/v1/growth?by=tenant",
				"/api/v1/growth",
				"/api/v1/forecast?by=tenant",
				"/api/v1/forecast",
				"/api/v1/prices?since=30d&all=true",
				"/api/v1/alerts",
			}
			for _, path := range allowed {
				a := get(t, hs, key, path, "")
				if a.code != 200 {
					t.Errorf("%s: %d %s", path, a.code, a.body)
					continue
				}
				for _, o := range others {
					if strings.Contains(a.body, o) || strings.Contains(a.body, jsonText(o)) {
						t.Errorf("%s leaks %q:\n%.500s", path, o, a.body)
					}
				}
				for _, a := range []answer{get(t, hs, key, path, ContentTypeArrow), get(t, hs, key, path, "text/csv")} {
					for _, o := range others {
						if a.code != 200 || strings.Contains(a.body, o) {
							t.Errorf("%s (%s) leaks %q or fails: %d", path, a.ctype, o, a.code)
						}
					}
				}
			}
			// The totals are the tenant's own, and its share of a top list is 1.
			got := rows(t, get(t, hs, key, "/api/v1/usage?since=30d", ""))
			if len(got) != 1 || got[0]["requests"] != float64(f.calls*sumDays) {
				t.Errorf("total: %v, want %d calls", got, f.calls*sumDays)
			}
			got = rows(t, get(t, hs, key, "/api/v1/top?since=30d&by=tenant", ""))
			if len(got) != 1 || got[0]["tenant"] != me || got[0]["share"] != 1.0 {
				t.Errorf("top by tenant: %v", got)
			}
			got = rows(t, get(t, hs, key, "/api/v1/alerts", ""))
			if me != unicode && (len(got) != 1 || !strings.Contains(got[0]["summary"].(string), me)) {
				t.Errorf("alerts: %v", got)
			}
		})
	}
	// The * key sees every alert and every tenant.
	if got := rows(t, get(t, hs, "root", "/api/v1/alerts?state=firing", "")); len(got) != 4 {
		t.Errorf("root alerts: %v", got)
	}
	if got := rows(t, get(t, hs, "root", "/api/v1/top?since=30d&by=tenant", "")); len(got) != 4 {
		t.Errorf("root top: %v", got)
	}
}

// jsonText is s as it appears inside a JSON string.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// TestServeShutdown: Serve answers until its context ends, then returns
// nil once the requests in flight are done.
func TestServeShutdown(t *testing.T) {
	t.Parallel()
	w := fixture(t)
	opts := DefaultOptions()
	opts.Keys = testKeys(t)
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(w, analytics.New(w, analytics.DefaultOptions()), opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--keys") {
		t.Errorf("no keys: %v", err)
	}
	o.Keys = testKeys(t)
	if err := o.Validate(); err != nil {
		t.Error(err)
	}
	o.MaxResponseBytes = 10
	if err := o.Validate(); err == nil {
		t.Error("a 10-byte response bound validated")
	}
}
