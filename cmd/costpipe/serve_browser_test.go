package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/inspector"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/costpipe/costpipe/alerts"
	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/internal/logtest"
	"github.com/costpipe/costpipe/serve"
	"github.com/costpipe/costpipe/warehouse"
)

// chromiumPath finds Debian's chromium (or another Chrome). Without one the
// test fails under CI and is skipped elsewhere.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is required for the dashboard test (apt-get install chromium; scripts/install-deps.sh installs it)")
	}
	t.Skip("chromium not installed (apt-get install chromium); CI runs this test")
	return ""
}

// serveProc is a running `costpipe serve`.
type serveProc struct {
	url, dsn, keys string
	cmd            *exec.Cmd
}

// startServe runs costpipe serve on a free port with keys and returns its
// base URL once it listens; the test stops it with SIGTERM and checks it
// exits 0.
func startServe(t *testing.T, dsn, keys string, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"--clickhouse", dsn, "serve", "--listen", "127.0.0.1:0", "--keys", keys}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	var logMu sync.Mutex
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`url=(http://[0-9.:]+)/`)
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	p := &serveProc{cmd: cmd, dsn: dsn, keys: keys}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				logMu.Lock()
				t.Errorf("costpipe serve after SIGTERM: %v\n%s", err, log.String())
				logMu.Unlock()
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Error("costpipe serve did not stop within 20 s of SIGTERM")
		}
	})
	select {
	case p.url = <-urls:
	case <-time.After(30 * time.Second):
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("costpipe serve did not listen within 30 s:\n%s", log.String())
	}
	return p
}

// apiRows GETs an API path with key and decodes the JSON array.
func apiRows(t *testing.T, base, key, path string) []map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	var out []map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	return out
}

// dashboardStack runs the real stack the dashboard test reads: the
// embedded broker, 45 days of loadgen traffic (growth scenario) plus a
// steady last minute, the aggregator landing it in a private ClickHouse, a
// firing alert in the alerts tables, and `costpipe serve` with the key
// root-key (*), once every call has landed.
func dashboardStack(t *testing.T) *serveProc {
	t.Helper()
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	dsn := srv.DSN(db)
	b := kafkatest.Start(t, 4)
	if r := run(t, "", nil, "--clickhouse", dsn, "migrate"); r.code != 0 {
		t.Fatalf("migrate: %s", r.stderr)
	}
	sent := 0
	for _, args := range [][]string{
		// 45 days: a forecast's band needs 35 days of history since the
		// first use (the days before it are not read as quiet ones).
		{"--scenario", "growth", "--span", "1080h", "--growth-factor", "3", "--rate", "30000", "--duration", "1s", "--seed", "3"},
		{"--rate", "1000", "--duration", "2s", "--seed", "4"},
	} {
		r := run(t, "", nil, append([]string{"--brokers", b.Addr(), "loadgen", "--quiet", "--duplicate-rate", "0", "--unpriced-rate", "0.02"}, args...)...)
		m := regexp.MustCompile(`kafka: sent (\d+), failed 0`).FindStringSubmatch(r.stderr)
		if r.code != 0 || m == nil {
			t.Fatalf("loadgen: exit %d\n%s", r.code, r.stderr)
		}
		n, _ := strconv.Atoi(m[1])
		sent += n
	}
	agg := exec.Command(binPath, "--brokers", b.Addr(), "--clickhouse", dsn, "--log-level", "warn", "aggregate",
		"--group", "browser", "--flush-interval", "300ms", "--max-event-age", fmt.Sprint(50*24*time.Hour))
	agg.Stderr = os.Stderr
	if err := agg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		agg.Process.Signal(syscall.SIGTERM)
		agg.Wait()
	})

	// A firing alert of one tenant, as `costpipe alerts run` saves it.
	ctx := context.Background()
	wopts := warehouse.DefaultOptions()
	wopts.DSN = dsn
	w, err := warehouse.Open(ctx, wopts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := alerts.NewStore(w, time.Now).SaveAlerts(ctx, "test", []*alerts.Alert{{Rule: "monthly-budget", Kind: alerts.KindBudget,
		State: alerts.StateFiring, Group: map[string]string{"tenant": "browser-test"}, Value: 1234, ThresholdValue: 1000,
		ActiveAt: time.Now().Add(-time.Hour), FiredAt: time.Now().Add(-time.Hour), Summary: "month to date 1234 USD over the budget of 1000"}}); err != nil {
		t.Fatal(err)
	}

	keys := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keys, []byte("root-key *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sp := startServe(t, dsn, keys)
	deadline := time.Now().Add(90 * time.Second)
	for {
		rows := apiRows(t, sp.url, "root-key", "/api/v1/usage?since=90d")
		if len(rows) == 1 && int(rows[0]["requests"].(float64)) == sent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the aggregator landed %v of %d calls within 90 s", rows, sent)
		}
		time.Sleep(300 * time.Millisecond)
	}
	agg.Process.Signal(syscall.SIGTERM)
	return sp
}

// TestServeDashboardBrowser runs the real stack: the embedded broker,
// 45 days of loadgen traffic (growth scenario) plus a steady last minute,
// the aggregator landing it in a private ClickHouse, a firing alert in the
// alerts tables, and `costpipe serve`. Headless chromium opens the
// dashboard with a * key and checks: every panel renders with data and no
// error, no console error or exception, the numbers on the page equal the
// API's, the range picker and the tenant filter change what is shown, and
// the page fits a phone's width. COSTPIPE_SCREENSHOTS=DIR saves
// screenshots there (docs/ holds the committed ones).
func TestServeDashboardBrowser(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	sp := dashboardStack(t)
	ctx := context.Background()

	// The browser. Its own output, and whether its page crashed, are
	// logged when the test fails: a step cut by "context canceled" is the
	// browser or its page gone, not the dashboard.
	var chromeOut logtest.Buffer
	actx, cancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(&chromeOut))...)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the browser's context: %v; its output:\n%s", actx.Err(), chromeOut.String())
		}
	})
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()
	var consoleMu sync.Mutex
	var console, gone []string
	t.Cleanup(func() {
		consoleMu.Lock()
		defer consoleMu.Unlock()
		if t.Failed() && len(gone) > 0 {
			t.Logf("the browser's page: %s", strings.Join(gone, "; "))
		}
	})
	chromedp.ListenTarget(bctx, func(ev any) {
		consoleMu.Lock()
		defer consoleMu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeWarning {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value))
				}
				console = append(console, string(e.Type)+": "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			console = append(console, "exception: "+e.ExceptionDetails.Error())
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.LevelError || e.Entry.Level == cdplog.LevelWarning {
				console = append(console, "log: "+e.Entry.Text+" "+e.Entry.URL)
			}
		case *inspector.EventTargetCrashed:
			gone = append(gone, "the page's renderer crashed")
		case *inspector.EventDetached:
			gone = append(gone, "the page was detached: "+string(e.Reason))
		}
	})
	// waitLoaded waits until the page finished load number gen.
	waitLoaded := func(gen int) chromedp.Action {
		return chromedp.WaitVisible(fmt.Sprintf(`body[data-generation="%d"][data-loading="false"]`, gen), chromedp.ByQuery)
	}
	var first time.Duration
	if err := chromedp.Run(bctx, cdplog.Enable(), runtime.Enable(),
		emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}),
		chromedp.ActionFunc(func(ctx context.Context) error {
			// Long tasks of the main thread, for logWaterfall.
			_, err := page.AddScriptToEvaluateOnNewDocument(`window.__longtasks = [];
				new PerformanceObserver((l) => window.__longtasks.push(...l.getEntries())).observe({ type: 'longtask' });`).Do(ctx)
			return err
		}),
		chromedp.Navigate(sp.url+"/"),
		chromedp.WaitVisible("#key", chromedp.ByID),
		chromedp.SendKeys("#key", "root-key", chromedp.ByID),
		chromedp.ActionFunc(func(ctx context.Context) error {
			start := time.Now()
			if err := chromedp.Click(`#auth-form button[type="submit"]`, chromedp.ByQuery).Do(ctx); err != nil {
				return err
			}
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := waitLoaded(1).Do(wctx); err != nil {
				var html string
				chromedp.OuterHTML("body", &html, chromedp.ByQuery).Do(ctx)
				t.Logf("page:\n%.3000s", html)
				return err
			}
			first = time.Since(start)
			return nil
		}),
	); err != nil {
		consoleMu.Lock()
		defer consoleMu.Unlock()
		t.Fatalf("the dashboard did not load: %v\nconsole:\n%s", err, strings.Join(console, "\n"))
	}
	// The target is 1 s on a quiet 2-core machine (docs/BENCHMARKS.md has
	// the figures); CI runs many packages at once on the same cores, where
	// ClickHouse, the server and chromium share them with other tests, so
	// the test fails only well above it (3.4 s was seen there with every
	// package under -race at once).
	within := "within"
	if first > time.Second {
		within = "over"
	}
	t.Logf("first render with data: %v (%s the 1 s target of a quiet machine)", first, within)
	logWaterfall(t, bctx)
	if first > 8*time.Second {
		t.Errorf("first render took %v", first)
	}

	// check reads the page and compares it with the API for range and where.
	// compare reads the page and asks the API the same questions; it
	// returns the page total and what differs.
	compare := func(rng, tenant string) (total string, diffs []string) {
		t.Helper()
		fail := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
		where := ""
		if tenant != "" {
			where = "&where=" + url.QueryEscape("tenant="+tenant)
		}
		var page struct {
			States       map[string]string
			Total, Calls string
			Groups, Pts  string
			Canvases     int
			TopTenant    [][2]string
			TopModel     [][2]string
			Latency      [][3]string
			Growth       [][3]string
			Sparks       int
			Forecast     map[string]string
			Band         bool
			Unpriced     [][2]string
			Alerts       []string
			Tenants      []string
			AuthShown    bool
		}
		js := `(() => {
			const q = (s) => [...document.querySelectorAll(s)];
			const states = {}; q('[data-panel]').forEach((p) => { states[p.id] = p.dataset.state || 'none'; });
			const fc = {}; q('#forecast-body [data-key]').forEach((e) => { fc[e.dataset.key] = e.dataset.value || e.textContent; });
			return {
				States: states,
				Total: document.querySelector('#cost-total').dataset.value, Calls: document.querySelector('#calls-total').dataset.value,
				Groups: document.querySelector('#p-cost').dataset.groups, Pts: document.querySelector('#p-cost').dataset.points,
				Canvases: q('#p-cost canvas, #p-latency canvas').length,
				TopTenant: q('#top-tenant tbody tr[data-name]').map((r) => [r.dataset.name, r.children[1].dataset.value]),
				TopModel: q('#top-model tbody tr[data-name]').map((r) => [r.dataset.name, r.children[1].dataset.value]),
				Latency: q('#latency-table tbody tr[data-name]').map((r) => [r.dataset.name, r.children[2].dataset.value, r.children[5].dataset.value]),
				Growth: q('#growth-table tbody tr[data-name]').map((r) => [r.dataset.name, r.children[1].dataset.value, r.children[2].dataset.value]),
				Sparks: q('#growth-table svg.spark polyline').length,
				Forecast: fc, Band: !!document.querySelector('#forecast-body [data-band]'),
				Unpriced: q('#unpriced-table tbody tr[data-name]').map((r) => [r.dataset.name, r.children[2].dataset.value]),
				Alerts: q('#alerts-table tbody tr').map((r) => r.textContent),
				Tenants: q('#f-tenant option').map((o) => o.value).filter((v) => v),
				AuthShown: getComputedStyle(document.querySelector('#auth')).display !== 'none',
			};
		})()`
		if err := chromedp.Run(bctx, chromedp.Evaluate(js, &page)); err != nil {
			t.Fatal(err)
		}
		if page.AuthShown {
			fail("%s %s: the key form is still shown beside the dashboard", rng, tenant)
		}
		for id, st := range page.States {
			if st != "ok" {
				fail("%s %s: panel %s is %q", rng, tenant, id, st)
			}
		}
		usage := apiRows(t, sp.url, "root-key", "/api/v1/usage?since="+rng+where)
		if len(usage) != 1 || usage[0]["cost_usd"] != page.Total || fmt.Sprint(usage[0]["requests"]) != page.Calls {
			fail("%s %s: page total %s USD, %s calls; API %v", rng, tenant, page.Total, page.Calls, usage)
		}
		if page.Groups == "0" || page.Pts == "0" || page.Canvases != 3 {
			fail("%s %s: cost chart of %s groups, %s steps, %d canvases", rng, tenant, page.Groups, page.Pts, page.Canvases)
		}
		for _, c := range []struct {
			dim  string
			page [][2]string
		}{{"tenant", page.TopTenant}, {"model", page.TopModel}} {
			top := apiRows(t, sp.url, "root-key", "/api/v1/top?limit=10&by="+c.dim+"&since="+rng+where)
			if len(top) == 0 || len(top) != len(c.page) {
				fail("%s %s: top %s: page %v, API %d rows", rng, tenant, c.dim, c.page, len(top))
				continue
			}
			for i, r := range top {
				if c.page[i] != [2]string{r[c.dim].(string), r["cost_usd"].(string)} {
					fail("%s %s: top %s row %d: page %v, API %v %v", rng, tenant, c.dim, i, c.page[i], r[c.dim], r["cost_usd"])
				}
			}
		}
		lat := apiRows(t, sp.url, "root-key", "/api/v1/latency?by=model&since="+rng+where)
		var want [][3]string
		for i := 0; i+1 < len(lat) && len(want) < 10; i += 2 { // the page lists the 10 most expensive
			want = append(want, [3]string{lat[i]["model"].(string), jsNum(lat[i]["p50_ms"]), jsNum(lat[i+1]["p99_ms"])})
		}
		if len(want) == 0 || fmt.Sprint(want) != fmt.Sprint(page.Latency) {
			fail("%s %s: latency table %v, API %v", rng, tenant, page.Latency, want)
		}
		growth := apiRows(t, sp.url, "root-key", "/api/v1/growth?by=model"+where)
		if len(growth) > 10 {
			growth = growth[:10] // the page lists the 10 largest
		}
		if len(growth) == 0 || len(growth) != len(page.Growth) || page.Sparks != len(growth) {
			fail("%s %s: growth: page %v (%d sparklines), API %d rows", rng, tenant, page.Growth, page.Sparks, len(growth))
		} else {
			for i, r := range growth {
				if page.Growth[i] != [3]string{r["model"].(string), jsNum(r["last_7d"]), jsNum(r["wow_pct"])} {
					fail("%s %s: growth row %d: page %v, API %v %v %v", rng, tenant, i, page.Growth[i], r["model"], r["last_7d"], r["wow_pct"])
				}
			}
		}
		fc := apiRows(t, sp.url, "root-key", "/api/v1/forecast?budget=50"+where)
		if len(fc) != 1 || page.Forecast["to_date"] != jsNum(fc[0]["to_date"]) || page.Forecast["forecast_p50"] != jsNum(fc[0]["forecast_p50"]) ||
			page.Forecast["forecast_p90"] != jsNum(fc[0]["forecast_p90"]) || page.Forecast["budget"] != "50" || !page.Band {
			fail("%s %s: forecast on the page %v (band %v), API %v", rng, tenant, page.Forecast, page.Band, fc)
		}
		if len(page.Unpriced) == 0 {
			fail("%s %s: no unpriced models shown (loadgen sends 2%% to unpriced models)", rng, tenant)
		}
		if tenant == "" && (len(page.Alerts) != 1 || !strings.Contains(page.Alerts[0], "monthly-budget")) {
			fail("alerts panel: %v", page.Alerts)
		}
		if tenant == "" && len(page.Tenants) < 2 {
			fail("tenant filter offers %v", page.Tenants)
		}
		return page.Total, diffs
	}

	// pick sets a control (chromedp's SetValue fires its change event) and
	// waits until the load it starts, or a later one, has finished.
	pick := func(sel, value string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			var before int
			if err := chromedp.Evaluate(`Number(document.body.dataset.generation || 0)`, &before).Do(ctx); err != nil {
				return err
			}
			if err := chromedp.SetValue(sel, value, chromedp.ByQuery).Do(ctx); err != nil {
				return err
			}
			wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			if err := chromedp.Poll(fmt.Sprintf(`document.body.dataset.loading === 'false' && Number(document.body.dataset.generation) > %d`, before),
				nil, chromedp.WithPollingInterval(50*time.Millisecond)).Do(wctx); err != nil {
				var state string
				chromedp.Evaluate(`JSON.stringify({body: document.body.dataset, panels: [...document.querySelectorAll('[data-panel]')].map((p) => p.id + ' ' + p.dataset.state + ' ' + p.querySelector('.status').textContent)})`, &state).Do(ctx)
				return fmt.Errorf("%s = %s: no load finished after load %d: %w; page state %s", sel, value, before, err, state)
			}
			return nil
		})
	}
	// check compares the page with the API for a range and a tenant. The
	// range ends now, so its start moves while the page and the API are
	// read in turn, seconds apart on a loaded machine, and a call at the
	// edge can leave the window between them: a difference is read again
	// after reloading the page (the same range picked again), and reported
	// only when it stays. The reload waits out the server's answer cache
	// first: picked again within its TTL, the page gets the same stale
	// answers from the cache while the API's other parameters (limit=10)
	// are computed afresh, and the difference stays (CI, 2026-12-03).
	check := func(rng, tenant string) string {
		t.Helper()
		var diffs []string
		for attempt := 1; ; attempt++ {
			total, d := compare(rng, tenant)
			if len(d) == 0 {
				return total
			}
			diffs = d
			if attempt == 3 {
				break
			}
			t.Logf("%s %s: page and API differ (attempt %d), reading again after the cache TTL: %s", rng, tenant, attempt, strings.Join(d, "; "))
			time.Sleep(serve.DefaultOptions().CacheTTL + 100*time.Millisecond)
			if err := chromedp.Run(bctx, pick("#range", rng)); err != nil {
				t.Fatal(err)
			}
		}
		for _, d := range diffs {
			t.Error(d)
		}
		return ""
	}
	// No refresh while the test counts loads; the budget (part of the
	// forecast panel); then 90 days: every call of the 30 simulated days.
	if err := chromedp.Run(bctx, chromedp.SetValue("#refresh", "0", chromedp.ByID), pick("#budget", "50"), pick("#range", "90d")); err != nil {
		t.Fatal(err)
	}
	all := check("90d", "")
	var tenants []string
	if err := chromedp.Run(bctx, chromedp.Evaluate(`[...document.querySelectorAll('#f-tenant option')].map((o) => o.value).filter((v) => v)`, &tenants)); err != nil || len(tenants) == 0 {
		t.Fatalf("tenant options %v: %v", tenants, err)
	}
	shots := os.Getenv("COSTPIPE_SCREENSHOTS")
	shot := func(name string, w, h int64, scale float64) {
		var buf []byte
		var heights string
		if err := chromedp.Run(bctx, chromedp.EmulateViewport(w, h, chromedp.EmulateScale(scale)), chromedp.Sleep(300*time.Millisecond),
			chromedp.Evaluate(`[...document.querySelectorAll('[data-panel]')].map((p) => p.id + ' ' + Math.round(p.getBoundingClientRect().height)).join(', ')`, &heights),
			chromedp.CaptureScreenshot(&buf)); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: panel heights %s", name, heights)
		if len(buf) < 10000 {
			t.Errorf("screenshot %s is %d bytes: a blank page?", name, len(buf))
		}
		if shots != "" {
			if err := os.WriteFile(filepath.Join(shots, name), buf, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	shot("dashboard-desktop.png", 1280, 800, 1)

	// The range picker: the last hour holds the steady traffic and the
	// growth scenario's latest calls, far fewer than 90 days.
	if err := chromedp.Run(bctx, pick("#range", "1h")); err != nil {
		t.Fatal(err)
	}
	if hour := check("1h", ""); hour == all {
		t.Errorf("the range picker changed nothing: 1h and 90d both show %s", hour)
	}
	staleLoad(t, bctx, all)
	// The tenant filter.
	if err := chromedp.Run(bctx, pick("#range", "90d"), pick("#f-tenant", tenants[0])); err != nil {
		t.Fatal(err)
	}
	if one := check("90d", tenants[0]); one == all {
		t.Errorf("the tenant filter changed nothing: %s", one)
	}
	if err := chromedp.Run(bctx, pick("#f-tenant", "")); err != nil {
		t.Fatal(err)
	}

	// A phone: the page fits its width.
	var overflow bool
	if err := chromedp.Run(bctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.Sleep(500*time.Millisecond),
		chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow)); err != nil {
		t.Fatal(err)
	}
	if overflow {
		var wide string
		chromedp.Run(bctx, chromedp.Evaluate(`[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 8).map((e) => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).join('; ')`, &wide))
		t.Errorf("the page is wider than a 390 px phone screen: %s", wide)
	}
	shot("dashboard-phone.png", 390, 844, 2)
	var bg string
	if err := chromedp.Run(bctx, emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}),
		chromedp.Sleep(time.Second), chromedp.Evaluate(`getComputedStyle(document.body).backgroundColor`, &bg)); err != nil {
		t.Fatal(err)
	}
	if bg != "rgb(17, 21, 26)" {
		t.Errorf("dark mode background %q", bg)
	}
	shot("dashboard-dark.png", 1280, 800, 1)

	// The refresh: a new load within 15 s, without reloading the page.
	var reloaded bool
	if err := chromedp.Run(bctx, chromedp.Evaluate(`window.__kept = true`, nil),
		pick("#refresh", "15"),
		chromedp.Evaluate(`window.__kept !== true`, &reloaded)); err != nil {
		t.Fatalf("no refresh within the interval: %v", err)
	}
	if reloaded {
		t.Error("the refresh reloaded the page")
	}

	consoleMu.Lock()
	defer consoleMu.Unlock()
	if len(console) > 0 {
		t.Errorf("console errors and warnings:\n%s", strings.Join(console, "\n"))
	}
}

// staleLoad checks that an older load never overwrites a newer one: 90d
// picked, then 1h 50 ms later, while 90d's batch request is held back (the
// page's fetch wrapped) until the 1h load has drawn, and then delivered
// whatever the page did with it. The page must still show 1h (its cost
// panel's steps of 1m, not the 90d total all) and must have aborted the
// 90d request. Before, the late 90d answers redrew the panels under a
// picker saying 1h.
func staleLoad(t *testing.T, bctx context.Context, all string) {
	t.Helper()
	var before int
	hold := `(() => {
		const orig = window.fetch;
		let release;
		window.__stale = { aborted: null, done: false, held: false, release: new Promise((r) => { release = r; }) };
		window.__releaseStale = () => release();
		window.fetch = async (input, init) => {
			if (!decodeURIComponent(String(input)).includes('since=90d')) return orig(input, init);
			window.fetch = orig; // only the first
			window.__stale.held = true;
			await window.__stale.release;
			window.__stale.aborted = !!(init && init.signal && init.signal.aborted);
			const r = await orig(input, Object.assign({}, init, { signal: undefined }));
			const body = await r.text();
			window.__stale.done = true;
			return new Response(body, { status: r.status, headers: r.headers });
		};
		return Number(document.body.dataset.generation);
	})()`
	picks := `(async () => {
		const r = document.querySelector('#range');
		r.value = '90d'; r.dispatchEvent(new Event('change'));
		await new Promise((res) => setTimeout(res, 50));
		r.value = '1h'; r.dispatchEvent(new Event('change'));
		return window.__stale.held;
	})()`
	var held bool
	var page struct {
		Range, Status, Total string
		Aborted              bool
	}
	awaitPromise := func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }
	wctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	err := chromedp.Run(wctx, chromedp.Evaluate(hold, &before), chromedp.Evaluate(picks, &held, awaitPromise),
		chromedp.ActionFunc(func(ctx context.Context) error {
			if !held {
				return fmt.Errorf("the 90d load asked nothing")
			}
			return chromedp.Poll(fmt.Sprintf(`document.body.dataset.loading === 'false' && Number(document.body.dataset.generation) >= %d`, before+2),
				nil, chromedp.WithPollingInterval(50*time.Millisecond)).Do(ctx)
		}),
		chromedp.Evaluate(`window.__releaseStale()`, nil),
		chromedp.Poll(`window.__stale.done`, nil, chromedp.WithPollingInterval(20*time.Millisecond)),
		chromedp.Sleep(500*time.Millisecond), // the late answers' turn to (not) draw
		chromedp.Evaluate(`({Range: document.querySelector('#range').value, Status: document.querySelector('#p-cost .status').textContent,
			Total: document.querySelector('#cost-total').dataset.value, Aborted: window.__stale.aborted})`, &page))
	if err != nil {
		t.Fatalf("90d then 1h: %v", err)
	}
	if page.Range != "1h" || !strings.Contains(page.Status, "of 1m") || page.Total == all {
		t.Errorf("90d then 1h, 90d answered last: the picker says %s, the cost panel %q with the total %s (90d: %s); want 1h's (steps of 1m)",
			page.Range, page.Status, page.Total, all)
	}
	if !page.Aborted {
		t.Error("90d then 1h: the 90d load's request was not aborted when the 1h load began")
	}
}

// jsNum is a JSON number as the page's String(value) writes it: null as
// "null", integers without a fraction.
func jsNum(v any) string {
	switch n := v.(type) {
	case nil:
		return "null"
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64)
	case string:
		return n
	}
	return fmt.Sprint(v)
}

// logWaterfall logs the page's first load, relative to its start (the
// marks app.js sets): the batch request (sent, first byte, last byte), each
// answer's arrival with the server's timing (cache result, time waiting
// for a slot, time querying), each panel drawn, the main thread's long
// tasks (over 50 ms), and the load's end. It is how a slow first render is
// taken apart.
func logWaterfall(t *testing.T, ctx context.Context) {
	t.Helper()
	var lines []string
	js := `(() => {
		const m = performance.getEntriesByName('costpipe-load-1')[0], e = performance.getEntriesByName('costpipe-loaded-1')[0];
		if (!m || !e) return ['no load marks'];
		const t0 = m.startTime, r = (v) => String(Math.round(v - t0)).padStart(5), in1 = (x) => x.startTime >= t0 && x.startTime <= e.startTime;
		const out = [];
		for (const x of performance.getEntriesByType('resource').filter((x) => x.name.includes('/api/v1/') && in1(x)))
			out.push([x.startTime, r(x.startTime) + ' ' + r(x.responseStart) + ' ' + r(x.responseEnd) + ' ms  request ' + decodeURIComponent(x.name.replace(location.origin, '')).slice(0, 60) + '…']);
		for (const x of performance.getEntriesByName('costpipe-answer').filter(in1))
			out.push([x.startTime, r(x.startTime) + ' ms  answer ' + x.detail.q + ' ' + x.detail.status + ' ' + (x.detail.timing || '')]);
		for (const x of performance.getEntriesByName('costpipe-panel').filter(in1))
			out.push([x.startTime, r(x.startTime) + ' ms  drawn ' + x.detail.panel]);
		for (const x of (window.__longtasks || []).filter(in1))
			out.push([x.startTime, r(x.startTime) + ' ms  long task of ' + Math.round(x.duration) + ' ms']);
		out.push([e.startTime, r(e.startTime) + ' ms  loaded']);
		return out.sort((a, b) => a[0] - b[0]).map((x) => x[1]);
	})()`
	if err := chromedp.Run(ctx, chromedp.Evaluate(js, &lines)); err != nil {
		t.Logf("no waterfall: %v", err)
		return
	}
	t.Logf("first load:\n\t%s", strings.Join(lines, "\n\t"))
}
