package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/broker"
	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/internal/testpki"
	"github.com/costpipe/costpipe/schemas"
)

// runBin runs the costpipe binary to completion (at most 60 s) and returns
// its exit code, stdout and stderr.
func runBin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("costpipe %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// TestSecureEndToEnd runs the core path over secure connections: events
// produced by `costpipe produce` to a broker that speaks only TLS and wants
// SASL/SCRAM-SHA-256, aggregated by `costpipe aggregate` into a ClickHouse
// reached on its TLS port, read back by `costpipe query usage` over TLS.
// The rollups must be exact. A wrong password and an untrusted certificate
// must each end the command with an error that says which.
func TestSecureEndToEnd(t *testing.T) {
	pki := testpki.New(t, "costpipe e2e CA")
	other := testpki.New(t, "unrelated CA")
	b := kafkatest.StartWithOptions(t, 4, func(o *broker.Options) {
		o.TLS = pki.ServerConfig(t)
		o.Users = []broker.User{{Mechanism: "SCRAM-SHA-256", Name: "costpipe", Password: "correct horse"}}
	})
	s := chtest.StartWithOptions(t, chtest.Options{TLS: &chtest.TLS{CertFile: pki.ServerCert, KeyFile: pki.ServerKey}})
	const db = "costpipe_secure"
	dsn := "clickhouse://" + s.TLSAddr + "/" + db + "?secure=true"

	dir := t.TempDir()
	pass, wrong := filepath.Join(dir, "kafka-password"), filepath.Join(dir, "wrong-password")
	os.WriteFile(pass, []byte("correct horse\n"), 0o600)
	os.WriteFile(wrong, []byte("battery staple\n"), 0o600)
	// TLS before the command name, SASL after it: both positions work.
	kafkaTLS := []string{"--brokers", b.Addr(), "--kafka-ca-file", pki.CAFile}
	kafkaSASL := func(file string) []string {
		return []string{"--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-username", "costpipe", "--kafka-sasl-password-file", file}
	}
	chTLS := []string{"--clickhouse", dsn, "--clickhouse-ca-file", pki.CAFile}

	// Events with a known truth, as JSON lines.
	pr := newProducer(t, b.Addr(), "sec", 11)
	var events []schemas.Event
	var lines []byte
	now := time.Now().UTC().Add(-10 * time.Minute)
	for i := range 300 {
		ev := pr.event(now.Add(time.Duration(i) * time.Second))
		events = append(events, ev)
		lines = append(schemas.AppendJSON(lines, &ev), '\n')
	}
	file := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(file, lines, 0o644); err != nil {
		t.Fatal(err)
	}

	// Refused: a wrong password, an untrusted broker certificate.
	code, _, stderr := runBin(t, append(append(append(kafkaTLS, "produce"), kafkaSASL(wrong)...), file)...)
	if code == 0 || !strings.Contains(stderr, `kafka: SASL authentication as "costpipe" with SCRAM-SHA-256 failed: wrong username or password`) {
		t.Errorf("produce with a wrong password: exit %d, stderr %q; want the wrong password named", code, stderr)
	}
	code, _, stderr = runBin(t, append(append([]string{"--brokers", b.Addr(), "--kafka-ca-file", other.CAFile, "produce"}, kafkaSASL(pass)...), file)...)
	if code == 0 || !strings.Contains(stderr, "kafka: the server's TLS certificate is not trusted (signed by an unknown authority): give the CA that signed it with --kafka-ca-file") {
		t.Errorf("produce with an untrusted certificate: exit %d, stderr %q; want the certificate named", code, stderr)
	}

	// Produce and aggregate over TLS + SASL/SCRAM, land over TLS.
	code, stdout, stderr := runBin(t, append(append(append(kafkaTLS, "produce"), kafkaSASL(pass)...), file)...)
	if code != 0 || !strings.Contains(stdout, "sent 300, rejected 0, failed 0") {
		t.Fatalf("produce over TLS+SASL: exit %d\n%s%s", code, stdout, stderr)
	}
	startAggregator(t, "secure", b.Addr(), dsn, "costpipe-secure",
		append([]string{"--kafka-ca-file", pki.CAFile, "--clickhouse-ca-file", pki.CAFile, "--flush-interval", "1s"}, kafkaSASL(pass)...)...)
	conn := s.Conn(t, "default")
	waitTotals(t, conn, db, events, 30*time.Second)
	checkExact(t, conn, db, events)

	// Read back over TLS.
	want, _ := truthOf(events)
	code, stdout, stderr = runBin(t, append(chTLS, "query", "usage", "--since", "2h", "--format", "csv")...)
	if code != 0 || !strings.Contains(stdout, ","+strconv.FormatUint(want.Requests, 10)+",") {
		t.Errorf("query usage over TLS: exit %d, want %d requests in\n%s%s", code, want.Requests, stdout, stderr)
	}
	// ClickHouse with an untrusted certificate, and with a wrong password.
	code, _, stderr = runBin(t, "--clickhouse", dsn, "--clickhouse-ca-file", other.CAFile, "query", "usage")
	if code == 0 || !strings.Contains(stderr, "clickhouse: the server's TLS certificate is not trusted (signed by an unknown authority): give the CA that signed it with --clickhouse-ca-file") {
		t.Errorf("query usage with an untrusted certificate: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runBin(t, "--clickhouse", "clickhouse://default@"+s.TLSAddr+"/"+db, "--clickhouse-ca-file", pki.CAFile,
		"--clickhouse-password-file", wrong, "query", "usage")
	if code == 0 || !strings.Contains(stderr, "clickhouse: wrong user name or password") {
		t.Errorf("query usage with a wrong password: exit %d, stderr %q", code, stderr)
	}
	// An aggregator with a wrong password stops at once and says why.
	start := time.Now()
	code, _, stderr = runBin(t, append([]string{"--brokers", b.Addr(), "--kafka-ca-file", pki.CAFile}, append(append(chTLS, "aggregate"), kafkaSASL(wrong)...)...)...)
	if code == 0 || !strings.Contains(stderr, "wrong username or password") || time.Since(start) > 30*time.Second {
		t.Errorf("aggregate with a wrong password: exit %d after %s, stderr %q", code, time.Since(start), stderr)
	}
}
