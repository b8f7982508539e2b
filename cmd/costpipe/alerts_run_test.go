package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/whtest"
)

// TestAlertsRunRuleTimeoutFlags: --rule-timeout must be more than 0 and
// --rule-concurrency 1 to 8, refused (exit 2, naming the flag) before
// connecting; valid values get as far as --metrics-listen.
func TestAlertsRunRuleTimeoutFlags(t *testing.T) {
	t.Parallel()
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("rules:\n  - {name: u, kind: unpriced}\n"), 0o644)
	args := func(extra ...string) []string {
		return append([]string{"--clickhouse", "clickhouse://127.0.0.1:1/costpipe", "alerts", "run", "--rules", rules, "--metrics-listen", "no:such:address"}, extra...)
	}
	for _, c := range []struct{ flag, value, want string }{
		{"--rule-timeout", "0s", "invalid --rule-timeout 0s: want more than 0"},
		{"--rule-timeout", "-1s", "invalid --rule-timeout -1s: want more than 0"},
		{"--rule-concurrency", "0", "invalid --rule-concurrency 0: want 1 to 8"},
		{"--rule-concurrency", "9", "invalid --rule-concurrency 9: want 1 to 8"},
	} {
		r := run(t, "", nil, args(c.flag, c.value)...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s %s: exit %d, want 2 and %q\n%s", c.flag, c.value, r.code, c.want, r.stderr)
		}
	}
	r := run(t, "", nil, args("--rule-timeout", "5s", "--rule-concurrency", "8")...)
	if strings.Contains(r.stderr, "invalid") || !strings.Contains(r.stderr, "cannot listen on --metrics-listen") {
		t.Errorf("--rule-timeout 5s --rule-concurrency 8: exit %d\n%s", r.code, r.stderr)
	}
}

// TestAlertsRunRuleTimeout (review R7): through the binary on a real
// ClickHouse, a rule that cannot answer within --rule-timeout (1ns: no
// query can) is counted result="timeout" at every evaluation and logged,
// and the evaluations still complete: /readyz answers ready.
func TestAlertsRunRuleTimeout(t *testing.T) {
	t.Parallel()
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("rules:\n  - {name: u, kind: unpriced}\n"), 0o644)
	srv := chtest.Shared(t)
	dsn := srv.DSN(srv.NewDatabase(t))
	whtest.Migrated(t, dsn) // alerts run applies no migrations
	s := startServed(t, "--clickhouse", dsn, "--log-level", "info", "alerts", "run", "--rules", rules,
		"--interval", "1s", "--rule-timeout", "1ns", "--metrics-listen", "127.0.0.1:0")
	s.waitFor("/readyz", 200, `^ready\n$`)
	_, body := s.get("/metrics")
	m := regexp.MustCompile(`(?m)^costpipe_alerts_evaluations_total\{result="timeout",rule="u"\} (\d+)$`).FindStringSubmatch(body)
	if n, _ := strconv.Atoi(m2(m)); n < 1 || !strings.Contains(body, `costpipe_alerts_evaluations_total{result="ok",rule="u"} 0`) {
		t.Errorf("/metrics: want the evaluations of u counted as timeouts, none ok:\n%s", body)
	}
	if err := s.stop(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, s.log.String())
	}
	for _, want := range []string{"rule_timeout=1ns", `msg="alert rule evaluation failed; its alerts keep their state" rules=u`, "rule evaluation timed out after 1ns"} {
		if !strings.Contains(s.log.String(), want) {
			t.Errorf("the log has no %q:\n%s", want, s.log.String())
		}
	}
}

// m2 is the first group of a FindStringSubmatch result, "" when none.
func m2(m []string) string {
	if len(m) < 2 {
		return ""
	}
	return m[1]
}
