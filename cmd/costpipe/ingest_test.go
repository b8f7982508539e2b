package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/consumers"
	"github.com/costpipe/costpipe/internal/kafkatest"
)

func TestIngestRefusesBadSetups(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "keys.txt")
	os.WriteFile(bad, []byte("# keys\nsecret-1 acme extra\n"), 0o600)
	good := filepath.Join(dir, "good.txt")
	os.WriteFile(good, []byte("secret-1 acme\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no keys", []string{"ingest", "--listen", "127.0.0.1:0"}, "cannot start without API keys: give --keys FILE"},
		{"bad key file", []string{"ingest", "--listen", "127.0.0.1:0", "--keys", bad}, bad + ":2: cannot parse API key line"},
		{"missing key file", []string{"ingest", "--keys", filepath.Join(dir, "nope")}, "cannot open API key file"},
		{"keys and no auth", []string{"ingest", "--keys", good, "--insecure-no-auth"}, "choose one"},
		{"bad size", []string{"ingest", "--keys", good, "--max-body", "5 parsecs"}, `invalid --max-body: cannot parse size "5 parsecs"`},
		{"bad listen", []string{"ingest", "--keys", good, "--listen", "nowhere"}, `cannot listen on --listen "nowhere"`},
		{"delay beyond timeout", []string{"ingest", "--keys", good, "--shutdown-delay", "50s"}, "cannot use shutdown delay 50s: must be from 0 to below the shutdown timeout 50s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, "", nil, tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, "secret-1") {
				t.Errorf("stderr reveals a key: %q", r.stderr)
			}
		})
	}
}

func TestIngestServesReloadsKeysAndDrainsOnSIGTERM(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 3)
	keys := filepath.Join(t.TempDir(), "keys.txt")
	os.WriteFile(keys, []byte("key-1 acme\n"), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opsLn, err := net.Listen("tcp", "127.0.0.1:0") // a free port for --metrics-listen
	if err != nil {
		t.Fatal(err)
	}
	opsAddr := opsLn.Addr().String()
	opsLn.Close()
	cmd := exec.CommandContext(ctx, binPath, "ingest", "--listen", "127.0.0.1:0", "--max-body", "64KiB", "--shutdown-delay", "2s",
		"--metrics-listen", opsAddr)
	// COSTPIPE_MAX_EVENT_AGE is the aggregator's variable: ingest reads it too.
	cmd.Env = append(os.Environ(), "COSTPIPE_BROKERS="+b.Addr(), "COSTPIPE_INGEST_KEYS="+keys, "COSTPIPE_MAX_EVENT_AGE=1h")
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("no output; stderr %s", stderr.String())
	}
	first := sc.Text()
	_, url, ok := strings.Cut(first, "listening on ")
	url, _, _ = strings.Cut(url, " ")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.Contains(first, "1 API keys") {
		t.Fatalf("first line %q, want the listen URL and key count", first)
	}
	post := func(key, body string) int {
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// goodEvent, a minute ago: within --max-event-age.
	evAt := func(id string, ts time.Time) string {
		e := strings.Replace(goodEvent, `"e1"`, `"`+id+`"`, 1)
		return strings.Replace(e, `"2025-11-01T10:00:00Z"`, `"`+ts.UTC().Format(time.RFC3339)+`"`, 1)
	}
	ev := func(id string) string { return evAt(id, time.Now().Add(-time.Minute)) }
	if code := post("key-1", ev("cli-1")); code != http.StatusAccepted {
		t.Fatalf("POST: %d, want 202; stderr %s", code, stderr.String())
	}
	if code := post("key-1", evAt("cli-old", time.Now().Add(-2*time.Hour))); code != http.StatusBadRequest {
		t.Errorf("POST of an event 2h old with COSTPIPE_MAX_EVENT_AGE=1h: %d, want 400", code)
	}
	if code := post("key-1", evAt("cli-ahead", time.Now().Add(time.Hour))); code != http.StatusBadRequest {
		t.Errorf("POST of an event 1h ahead (--max-future 5m): %d, want 400", code)
	}
	if code := post("key-1", `[`+strings.Repeat(ev("big")+",", 400)+ev("big")+`]`); code != http.StatusRequestEntityTooLarge {
		t.Errorf("POST over --max-body 64KiB: %d, want 413", code)
	}
	if resp, err := http.Get(url + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("readyz: %v %v", resp, err)
	}
	// --metrics-listen: /metrics there, not on the public --listen.
	if resp, err := http.Get(url + "/metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("public /metrics with --metrics-listen: %v %v; want 404", resp, err)
	}
	if resp, err := http.Get("http://" + opsAddr + "/metrics"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/metrics on --metrics-listen: %v %v", resp, err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `costpipe_ingest_requests_total{code="202"} 1`) {
			t.Errorf("/metrics on --metrics-listen lacks the 202: %.500s", b)
		}
	}

	// SIGHUP reloads the key file.
	os.WriteFile(keys, []byte("key-2 acme\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for post("key-2", ev("cli-2")) != http.StatusAccepted {
		if time.Now().After(deadline) {
			t.Fatalf("key-2 not accepted after SIGHUP; stderr %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := post("key-1", ev("cli-3")); code != http.StatusUnauthorized {
		t.Errorf("old key after reload: %d, want 401", code)
	}

	// SIGTERM: /readyz answers 503 at once, while requests, on new
	// connections too, are still served for --shutdown-delay.
	signalled := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	for {
		resp, err := fresh.Get(url + "/readyz")
		if err != nil {
			t.Fatalf("readyz after SIGTERM: %v; want 503 during --shutdown-delay", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Since(signalled) > time.Second {
			t.Fatalf("readyz still %d a second after SIGTERM, want 503", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/events", strings.NewReader(ev("cli-4")))
	req.Header.Set("Authorization", "Bearer key-2")
	req.Header.Set("Content-Type", "application/json")
	if resp, err := fresh.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Errorf("POST on a new connection during --shutdown-delay: %v %v; want 202", resp, err)
	} else {
		resp.Body.Close()
	}
	if d := time.Since(signalled); d > 1500*time.Millisecond {
		t.Errorf("the checks during the 2s delay took %s", d)
	}
	rest, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v; stderr %s", err, stderr.String())
	}
	if !strings.Contains(string(rest), "ingest stopped") {
		t.Errorf("stdout after SIGTERM %q, want \"ingest stopped\"", rest)
	}
	if !strings.Contains(stderr.String(), "API keys reloaded") {
		t.Errorf("stderr lacks the reload log: %s", stderr.String())
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("costpipe.events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	for len(got) < 3 && pctx.Err() == nil {
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if all := strings.Join(got, " "); len(got) != 3 || !strings.Contains(all, `"cli-1"`) || !strings.Contains(all, `"cli-2"`) || !strings.Contains(all, `"cli-4"`) {
		t.Errorf("topic holds %q, want cli-1, cli-2 and cli-4", got)
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		"5242880": 5 << 20, "5MiB": 5 << 20, "5 mib": 5 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30,
		"1KB": 1000, "2MB": 2e6, "3GB": 3e9, "7B": 7, "0": 0,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "5 parsecs", "99999999999GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
	for n, want := range map[int64]string{5 << 20: "5MiB", 64 << 20: "64MiB", 1 << 30: "1GiB", 1536: "1536", 2048: "2KiB", 7: "7"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestIngestTimeBoundsAreTheAggregators: ingest's --max-event-age and
// --max-future are the aggregator's flags, environment variables and
// defaults, so one setting configures both, and the gateway never accepts
// an event the aggregator sends to its DLQ by default.
func TestIngestTimeBoundsAreTheAggregators(t *testing.T) {
	t.Parallel()
	find := func(flags []cli.Flag, name string) *cli.DurationFlag {
		for _, f := range flags {
			if df, ok := f.(*cli.DurationFlag); ok && df.Name == name {
				return df
			}
		}
		return nil
	}
	d := consumers.DefaultOptions()
	for name, def := range map[string]time.Duration{"max-event-age": d.MaxEventAge, "max-future": d.MaxFuture} {
		in, agg, prod := find(ingestCommand().Flags, name), find(aggregateFlags(), name), find(produceCommand().Flags, name)
		if in == nil || agg == nil || prod == nil {
			t.Fatalf("--%s: ingest has %v, aggregate %v, produce %v; want a duration flag in all", name, in, agg, prod)
		}
		if in.Value != def || agg.Value != def || prod.Value != def || !slices.Equal(in.EnvVars, agg.EnvVars) || !slices.Equal(prod.EnvVars, agg.EnvVars) || len(in.EnvVars) != 1 {
			t.Errorf("--%s: ingest %s %v, aggregate %s %v, produce %s %v; want the same default (%s) and variable", name, in.Value, in.EnvVars, agg.Value, agg.EnvVars, prod.Value, prod.EnvVars, def)
		}
	}
	if r := run(t, "", nil, "ingest", "--insecure-no-auth", "--max-event-age", "0s"); r.code != 2 || !strings.Contains(r.stderr, "cannot use max event age 0s") {
		t.Errorf("--max-event-age 0s: exit %d, stderr %q; want 2", r.code, r.stderr)
	}
}
