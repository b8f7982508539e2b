package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/warehouse"
)

// Options that cannot work together are refused before anything connects,
// with the flags named.
func TestAggregateRefusesTimeoutsThatOutlastTheRebalance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--insert-timeout", "45s"}, "--insert-timeout 45s + --flush-timeout-on-rebalance 20s must be below --rebalance-timeout 1m0s"},
		{[]string{"--insert-timeout", "0s"}, "invalid --insert-timeout 0s: want at least 1s"},
		{[]string{"--flush-timeout-on-rebalance", "70s"}, "--flush-timeout-on-rebalance 1m10s must be > 0 and below --rebalance-timeout 1m0s"},
		{[]string{"--dlq-spool", ""}, "empty DLQ spool directory"},
		{[]string{"--dlq-spool", "/proc/nope/spool"}, `DLQ spool directory "/proc/nope/spool" (--dlq-spool) is not writable`},
	} {
		r := run(t, "", nil, append([]string{"--brokers", "127.0.0.1:1", "--clickhouse", "clickhouse://127.0.0.1:1/x", "aggregate"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("aggregate %v: exit %d, stderr %q; want exit 2 naming %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestLogMigrations: migrations applied at start are logged, and creating
// the tables from nothing is a warning (a typo in the DSN's database
// landed everything in a new database without a word).
func TestLogMigrations(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	logMigrations(log, "nodb", []warehouse.MigrationResult{{Version: 1, Name: "0001_a", Applied: true}, {Version: 2, Name: "0002_b", Applied: true}})
	logMigrations(log, "costpipe", []warehouse.MigrationResult{{Version: 1, Name: "0001_a"}, {Version: 2, Name: "0002_b", Applied: true}})
	logMigrations(log, "costpipe", []warehouse.MigrationResult{{Version: 1, Name: "0001_a"}})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `level=WARN msg="created the costpipe tables in a database that had none`) ||
		!strings.Contains(lines[0], "database=nodb migrations=2") ||
		!strings.Contains(lines[1], `level=INFO msg="applied migrations" database=costpipe migrations=0002_b`) {
		t.Errorf("log:\n%s", buf.String())
	}
}

// TestAggregateHealthWhileWaitingForClickHouse: /healthz and /readyz answer
// while ClickHouse is still unreachable (the port opened only once it was
// reached, so a liveness probe restarted a pod waiting for it), and a
// SIGTERM then stops the command cleanly.
func TestAggregateHealthWhileWaitingForClickHouse(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "--brokers", "127.0.0.1:1", "--clickhouse", "clickhouse://127.0.0.1:1/x",
		"aggregate", "--metrics-listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var addr string
	var logged strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		logged.WriteString(sc.Text() + "\n")
		if m := regexp.MustCompile(`msg="serving metrics" addr=(\S+)/metrics`).FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	done := make(chan struct{})
	go func() {
		for sc.Scan() {
			logged.WriteString(sc.Text() + "\n")
		}
		close(done)
	}()
	if addr == "" {
		t.Fatalf("no metrics address logged:\n%s", logged.String())
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 {
		t.Errorf("/healthz while waiting for ClickHouse: %d %s", code, body)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "starting") {
		t.Errorf("/readyz while waiting for ClickHouse: %d %s", code, body)
	}
	// The metrics say so too (an instance stuck here exported no
	// costpipe_* series at all, so no alert could see it).
	time.Sleep(1500 * time.Millisecond) // a few attempts: still one warning
	if _, body := get("/metrics"); !strings.Contains(body, "\ncostpipe_ready 0\n") || !strings.Contains(body, "\ncostpipe_starting_seconds ") {
		t.Errorf("/metrics while waiting for ClickHouse lacks costpipe_ready 0 and costpipe_starting_seconds:\n%.2000s", body)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	<-done
	if n := strings.Count(logged.String(), "clickhouse not reachable yet"); n != 1 {
		t.Errorf("%d warnings in the first seconds of waiting for ClickHouse, want 1 (then one a minute):\n%s", n, logged.String())
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM while waiting for ClickHouse: %v\n%s", err, logged.String())
	}
}

// TestAggregateWaitsForAMissingTopic: a mistyped --topic is not created
// (the consumer's client may create topics, for the DLQ, so the typo used
// to be consumed, empty, and reported ready): the aggregator says what it
// waits for, is not ready, and stops cleanly on SIGTERM.
func TestAggregateWaitsForAMissingTopic(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 2)
	srv := chtest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "--brokers", b.Addr(), "--clickhouse", srv.DSN(srv.NewDatabase(t)),
		"--topic", "costpipe.evnets", "aggregate", "--metrics-listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var addr string
	var logged strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		logged.WriteString(sc.Text() + "\n")
		if m := regexp.MustCompile(`msg="serving metrics" addr=(\S+)/metrics`).FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
		if strings.Contains(sc.Text(), "waiting for the topic to consume") {
			break
		}
	}
	if addr == "" || !strings.Contains(logged.String(), `topic=costpipe.evnets`) {
		t.Fatalf("no metrics address, or no warning naming the topic:\n%s", logged.String())
	}
	done := make(chan struct{})
	go func() {
		for sc.Scan() {
			logged.WriteString(sc.Text() + "\n")
		}
		close(done)
	}()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("/readyz while the topic is missing: %d, want 503", resp.StatusCode)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if topics, err := kadm.NewClient(cl).ListTopics(ctx); err != nil || topics.Has("costpipe.evnets") {
		t.Errorf("the mistyped topic was created (%v): %v", err, topics.Names())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	<-done
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM while waiting for the topic: %v\n%s", err, logged.String())
	}
	// The stop says what it was waiting for, not only "context canceled".
	if !regexp.MustCompile(`msg="aggregator stopped before it started" waiting_for=".*topic \\"costpipe.evnets\\".*stopped while waiting`).MatchString(logged.String()) {
		t.Errorf("the stop's line does not name the topic it waited for:\n%s", logged.String())
	}
}
