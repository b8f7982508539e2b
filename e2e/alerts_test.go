package e2e

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/schemas"
)

// hookReceiver is an independent Standard Webhooks receiver: it verifies
// each delivery's signature with its own HMAC-SHA256 and records it.
type hookReceiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	got    []hookDelivery
	bad    []string
}

type hookDelivery struct {
	ID, Type, Threshold string
	At                  time.Time
	Body                map[string]any
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, ts, sigs := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
	mac := hmac.New(sha256.New, h.secret)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	ok := false
	for _, s := range strings.Fields(sigs) {
		ok = ok || hmac.Equal([]byte(s), []byte(want))
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !ok || err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		h.bad = append(h.bad, fmt.Sprintf("id %q ts %q signature %q: does not verify", id, ts, sigs))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var b map[string]any
	if err := json.Unmarshal(body, &b); err != nil || b["id"] != id {
		h.bad = append(h.bad, fmt.Sprintf("body %s: %v (id %q)", body, err, id))
	}
	typ, _ := b["type"].(string)
	th := fmt.Sprint(b["threshold"])
	h.got = append(h.got, hookDelivery{ID: id, Type: typ, Threshold: th, At: time.Now(), Body: b})
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) deliveries() []hookDelivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookDelivery(nil), h.got...)
}

// alertsProc is one `costpipe alerts run` process.
type alertsProc struct {
	name  string
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
	ready chan struct{}
}

func startAlerts(t *testing.T, name string, args ...string) *alertsProc {
	t.Helper()
	p := &alertsProc{name: name, cmd: exec.Command(binPath, args...), done: make(chan struct{}), ready: make(chan struct{})}
	p.cmd.SysProcAttr = sysProcAttr()
	p.cmd.Stdout = io.Discard
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	readDone := make(chan struct{})
	go func() { // locked to its thread while the child lives (Pdeathsig)
		runtime.LockOSThread()
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		<-readDone
		p.cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "evaluating alert rules") {
				once.Do(func() { close(p.ready) })
			}
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			p.mu.Lock()
			t.Logf("--- stderr of alerts %s:\n%s", p.name, strings.Join(p.lines, "\n"))
			p.mu.Unlock()
		}
	})
	select {
	case <-p.ready:
	case <-p.done:
		t.Fatalf("alerts %s exited", name)
	case <-time.After(60 * time.Second):
		t.Fatalf("alerts %s not running after 60 s", name)
	}
	return p
}

// logged reports whether the process logged a line containing s.
func (p *alertsProc) logged(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func (p *alertsProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// TestAlertsEndToEnd: events → embedded broker → aggregator → ClickHouse →
// `alerts run` → a webhook receiver verifying Standard Webhooks signatures.
// A daily budget (USD 10; 50% and 100%) in a day that, on the evaluators'
// clock (--clock-offset), ends about 70 s after they start:
//   - crossing 50% delivers one signed webhook within flush + interval + 5 s;
//   - SIGKILL right after that delivery and a restart send nothing again;
//   - with a second replica running, crossing 100% is delivered once;
//   - when the day rolls over, each threshold's resolved notification
//     arrives once (two replicas running).
func TestAlertsEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prices := filepath.Join(dir, "prices.yaml")
	os.WriteFile(prices, []byte("models:\n  - provider: p\n    model: m\n    prices:\n      - {from: 2020-01-01, input: \"1\", output: \"0\"}\n"), 0o644)
	key := make([]byte, 24)
	rand.Read(key)
	hook := &hookReceiver{t: t, secret: key}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	secrets := filepath.Join(dir, "secrets")
	os.WriteFile(secrets, []byte("whsec_"+base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
	rules := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rules, []byte(fmt.Sprintf(`interval: 1s
group_wait: 0s
group_interval: 1s
receivers:
  - {name: hook, type: webhook, url: %q, secrets_file: %q}
rules:
  - name: daily-budget
    kind: budget
    by: [tenant]
    period: day
    amount_usd: 10
    thresholds: [50, 100]
    notify: [hook]
`, hs.URL, secrets)), 0o644)

	srv := chtest.Start(t)
	db := srv.NewDatabase(t)
	conn := srv.Conn(t, db)
	b := kafkatest.Start(t, 2)
	const flush = 300 * time.Millisecond
	a := startAggregator(t, "agg", b.Addr(), srv.DSN(db), "e2e-alerts", "--flush-interval", flush.String(), "--prices", prices)
	defer a.mustTerm()

	// The evaluators' clock: 70 s before the last UTC midnight.
	now := time.Now()
	midnight := now.UTC().Truncate(24 * time.Hour)
	offset := midnight.Add(-70 * time.Second).Sub(now)
	shifted := func() time.Time { return time.Now().Add(offset) }
	args := func(replica string) []string {
		return []string{"--clickhouse", srv.DSN(db), "--log-level", "info", "alerts", "run", "--rules", rules,
			"--replica", replica, "--claim-settle", "1s", "--claim-lease", "2m", "--backoff-max", "10s", "--clock-offset", offset.String()}
	}
	pr := newProducer(t, b.Addr(), "alerts", 1)
	var produced uint64
	spend := func(usd int) {
		var evs []schemas.Event
		for i := range usd {
			evs = append(evs, schemas.Event{EventID: fmt.Sprintf("spend-%d-%d", produced, i), Timestamp: shifted().Add(-5 * time.Second).Truncate(time.Millisecond),
				Tenant: "acme", Provider: "p", Model: "m", Status: schemas.StatusOK, InputTokens: 1_000_000})
		}
		pr.produceEvents(evs...)
		produced += uint64(usd)
	}
	waitHooks := func(n int, within time.Duration, what string) []hookDelivery {
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			if d := hook.deliveries(); len(d) >= n {
				return d
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: %d deliveries after %s, want %d: %+v", what, len(hook.deliveries()), within, n, hook.deliveries())
		return nil
	}

	A := startAlerts(t, "A", args("A")...)
	spend(4)
	waitFor(t, 30*time.Second, "USD 4 to land", func() bool { return landedRequests(conn, db) >= produced })
	time.Sleep(2 * time.Second)
	if d := hook.deliveries(); len(d) != 0 {
		t.Fatalf("USD 4 of 10 delivered %+v", d)
	}
	crossed := time.Now()
	spend(2) // USD 6: 50%
	d := waitHooks(1, flush+time.Second+5*time.Second, "50% crossing")
	// SIGKILL right after the delivery is recorded (the receiver answered
	// and the log says delivered: the line is written after the record).
	// A kill between the answer and the record would repeat the delivery
	// with the same webhook-id after the claim lease (docs/alerts.md).
	waitFor(t, 5*time.Second, "A to record the delivery", func() bool { return A.logged("alert notification delivered") })
	A.kill()
	t.Logf("50%% crossing delivered %s after the events were produced", d[0].At.Sub(crossed).Round(time.Millisecond))
	if d[0].Type != "alert.firing" || d[0].Threshold != "5" || d[0].Body["group"].(map[string]any)["tenant"] != "acme" || d[0].Body["rule"] != "daily-budget" {
		t.Errorf("first delivery %+v", d[0])
	}
	A2 := startAlerts(t, "A2", args("A2")...)
	time.Sleep(4 * time.Second)
	if d := hook.deliveries(); len(d) != 1 {
		t.Fatalf("after SIGKILL and restart: %d deliveries: %+v", len(d), d)
	}
	B := startAlerts(t, "B", args("B")...)
	time.Sleep(2 * time.Second)
	crossed = time.Now()
	spend(5) // USD 11: 100%
	d = waitHooks(2, flush+time.Second+5*time.Second, "100% crossing")
	t.Logf("100%% crossing delivered %s after the events were produced (two replicas)", d[1].At.Sub(crossed).Round(time.Millisecond))
	if d[1].Type != "alert.firing" || d[1].Threshold != "10" {
		t.Errorf("second delivery %+v", d[1])
	}
	// The day ends on the evaluators' clock: both thresholds resolve.
	wait := midnight.Sub(shifted())
	if wait < 0 {
		t.Fatalf("the test ran past the evaluators' midnight before the 100%% crossing (%s late): the machine is too slow", -wait)
	}
	if d := hook.deliveries(); len(d) != 2 {
		t.Fatalf("before the day ended: %+v", d)
	}
	d = waitHooks(4, wait+10*time.Second, "resolved at the end of the day")
	for _, x := range d[2:] {
		if ev := x.At.Add(offset); ev.Before(midnight) {
			t.Errorf("resolved at %s on the evaluators' clock, before the day ended", ev)
		}
	}
	time.Sleep(3 * time.Second) // and nothing more

	d = hook.deliveries()
	ids := map[string]int{}
	types := map[string]int{}
	for _, x := range d {
		ids[x.ID]++
		types[x.Type+"/"+x.Threshold]++
	}
	if len(d) != 4 || len(ids) != 4 || types["alert.resolved/5"] != 1 || types["alert.resolved/10"] != 1 {
		t.Errorf("deliveries: %d, ids %v, types %v", len(d), ids, types)
	}
	hook.mu.Lock()
	for _, bad := range hook.bad {
		t.Errorf("receiver: %s", bad)
	}
	hook.mu.Unlock()
	_, _ = A2, B
}

// TestAlertsReceiverFailures: a receiver that fails its first 3 attempts
// gets the alert once, in the second round of 2 attempts (the first is
// deferred, not dead); one that never answers does not delay another, and
// ends dead in the notification log after the round that ends past
// --give-up-after.
func TestAlertsReceiverFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prices := filepath.Join(dir, "prices.yaml")
	os.WriteFile(prices, []byte("models:\n  - provider: p\n    model: m\n    prices:\n      - {from: 2020-01-01, input: \"1\", output: \"0\"}\n"), 0o644)
	key := make([]byte, 24)
	rand.Read(key)
	good := &hookReceiver{t: t, secret: key}
	flaky := &hookReceiver{t: t, secret: key}
	var flakyMu sync.Mutex
	flakyCalls := 0
	hsGood := httptest.NewServer(good)
	defer hsGood.Close()
	hsFlaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		flakyMu.Lock()
		flakyCalls++
		n := flakyCalls
		flakyMu.Unlock()
		if n <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		flaky.ServeHTTP(w, r)
	}))
	defer hsFlaky.Close()
	hang := make(chan struct{})
	hsDead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // never answers
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer hsDead.Close()
	defer close(hang)
	secrets := filepath.Join(dir, "secrets")
	os.WriteFile(secrets, []byte("whsec_"+base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
	rules := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rules, []byte(fmt.Sprintf(`interval: 1s
group_wait: 0s
group_interval: 1s
receivers:
  - {name: dead, type: webhook, url: %q, secrets_file: %q}
  - {name: flaky, type: webhook, url: %q, secrets_file: %q}
  - {name: good, type: webhook, url: %q, secrets_file: %q}
rules:
  - {name: daily, kind: budget, period: day, amount_usd: 1, notify: [dead, flaky, good]}
`, hsDead.URL, secrets, hsFlaky.URL, secrets, hsGood.URL, secrets)), 0o644)

	srv := chtest.Start(t)
	db := srv.NewDatabase(t)
	conn := srv.Conn(t, db)
	b := kafkatest.Start(t, 1)
	a := startAggregator(t, "agg", b.Addr(), srv.DSN(db), "e2e-alerts-fail", "--flush-interval", "300ms", "--prices", prices)
	defer a.mustTerm()
	// The evaluator's clock: noon of the last UTC day, so that no midnight
	// (a new budget day: nothing spent, the alert resolved) falls in the
	// test, whenever it runs.
	now := time.Now()
	offset := now.UTC().Truncate(24 * time.Hour).Add(-12 * time.Hour).Sub(now)
	// A settle of 2 s: a claim is given up when its write takes over half
	// of it (1 s), which a loaded test machine's ClickHouse took with 500 ms
	// (260–270 ms), and the rounds logged were then not the ones below.
	startAlerts(t, "A", "--clickhouse", srv.DSN(db), "alerts", "run", "--rules", rules, "--claim-settle", "2s", "--claim-lease", "1m",
		"--max-attempts", "2", "--attempt-timeout", "2s", "--backoff-min", "100ms", "--backoff-max", "400ms", "--give-up-after", "10s",
		"--clock-offset", offset.String())
	pr := newProducer(t, b.Addr(), "fail", 1)
	produced := time.Now()
	pr.produceEvents(schemas.Event{EventID: "spend-1", Timestamp: time.Now().Add(offset - 2*time.Second).Truncate(time.Millisecond),
		Tenant: "acme", Provider: "p", Model: "m", Status: schemas.StatusOK, InputTokens: 2_000_000})
	waitFor(t, 300*time.Millisecond+time.Second+2*time.Second+8*time.Second, "the good receiver's delivery", func() bool { return len(good.deliveries()) == 1 })
	t.Logf("good receiver: delivered %s after the event was produced, with a receiver that never answers", time.Since(produced).Round(time.Millisecond))
	waitFor(t, 10*time.Second, "the flaky receiver's delivery", func() bool { return len(flaky.deliveries()) == 1 })
	// The dead receiver: a round (the settle, then 2 attempts of 2 s) ends
	// about 6.5 s after the claim, before --give-up-after (10 s): deferred;
	// the next round ends past it: dead.
	waitFor(t, 30*time.Second, "the dead receiver's dead record", func() bool {
		var n uint64
		return conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".alerts_notifications WHERE receiver = 'dead' AND status = 'dead'").Scan(&n) == nil && n > 0
	})
	for _, rcv := range []string{"dead", "flaky"} {
		var outcomes []string
		rows, err := conn.Query(context.Background(), "SELECT round, status, attempts FROM "+db+".alerts_notifications WHERE receiver = ? AND status != 'sending' ORDER BY round", rcv)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var round, attempts uint32
			var status string
			if err := rows.Scan(&round, &status, &attempts); err != nil {
				t.Fatal(err)
			}
			outcomes = append(outcomes, fmt.Sprintf("%d:%s/%d", round, status, attempts))
		}
		rows.Close()
		want := map[string]string{"dead": "[0:deferred/2 1:dead/2]", "flaky": "[0:deferred/2 1:delivered/2]"}[rcv]
		if got := fmt.Sprint(outcomes); got != want {
			t.Errorf("%s receiver's log: %s, want %s (round:status/attempts)", rcv, got, want)
		}
	}
	time.Sleep(3 * time.Second)
	flakyMu.Lock()
	calls := flakyCalls
	flakyMu.Unlock()
	if len(good.deliveries()) != 1 || len(flaky.deliveries()) != 1 || calls != 4 {
		t.Errorf("good %d, flaky %d deliveries in %d calls; want 1, 1 in 4", len(good.deliveries()), len(flaky.deliveries()), calls)
	}
	if g, f := good.deliveries()[0], flaky.deliveries()[0]; g.ID != f.ID {
		t.Errorf("the receivers got different webhook-ids: %s %s", g.ID, f.ID)
	}
}
