package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/costpipe/costpipe/alerts"
	"github.com/costpipe/costpipe/alerts/notify"
	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/faultproxy"
	"github.com/costpipe/costpipe/internal/whtest"
	"github.com/costpipe/costpipe/warehouse"
)

func TestAlertsCheck(t *testing.T) {
	t.Parallel()
	// The example's receivers read /etc/costpipe/webhook-secrets and
	// slack-url: here, files of a temporary directory.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "webhook-secrets"), []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "slack-url"), []byte("https://hooks.slack.com/services/T0/B0/X\n"), 0o600)
	example, err := os.ReadFile("../../docs/alerts-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "alerts-example.yaml")
	os.WriteFile(rules, []byte(strings.ReplaceAll(string(example), "/etc/costpipe/", dir+"/")), 0o644)
	r := run(t, "", nil, "alerts", "check", rules)
	if r.code != 0 || !strings.Contains(r.stdout, "9 rule(s), 4 receiver(s)") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("rules:\n  - name: x\n    kind: budget\n    amount_usd: lots\n  - name: y\n    kind: nope\n"), 0o644)
	r = run(t, "", nil, "alerts", "check", bad)
	if r.code != 1 || !strings.Contains(r.stderr, bad+`:4:17: cannot parse amount_usd "lots"`) || !strings.Contains(r.stderr, bad+`:6:11: unknown rule kind "nope"`) {
		t.Errorf("exit %d\n%s", r.code, r.stderr)
	}
}

// alerts check reads the receivers' files as alerts run does, and both
// report what is wrong with them at FILE:LINE:COL, once per receiver.
func TestAlertsCheckReadsReceiverFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noPrefix := filepath.Join(dir, "no-prefix")
	os.WriteFile(noPrefix, []byte("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"), 0o600)
	rules := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rules, []byte("receivers:\n"+
		"  - name: wh\n    type: webhook\n    url: https://hooks.example.com/x\n    secrets_file: "+noPrefix+"\n"+
		"  - name: team\n    type: slack\n    url_file: "+dir+"\n"+
		"  - name: wh3\n    type: webhook\n    url: https://hooks.example.com/x\n    secrets_file: "+filepath.Join(dir, "missing")+"\n"+
		"rules:\n  - {name: u, kind: unpriced, notify: [wh, team, wh3]}\n"), 0o644)
	want := []string{
		rules + `:5:19: receiver "wh": secrets_file: "` + noPrefix + `", line 1: cannot parse webhook secret: it must start with "whsec_" (Standard Webhooks form whsec_<base64>)`,
		rules + `:8:15: receiver "team": url_file: cannot read: read ` + dir + `: is a directory`,
		rules + `:12:19: receiver "wh3": secrets_file: cannot read: open ` + filepath.Join(dir, "missing") + `: no such file or directory`,
		"costpipe: " + rules + ": 3 error(s)",
	}
	for _, args := range [][]string{
		{"alerts", "check", rules},
		{"--clickhouse", "clickhouse://127.0.0.1:1/costpipe", "alerts", "run", "--rules", rules, "--metrics-listen", "no:such:address"},
	} {
		r := run(t, "", nil, args...)
		if got := strings.Split(strings.TrimSpace(r.stderr), "\n"); r.code != 1 || !slices.Equal(got, want) {
			t.Errorf("%v: exit %d, want 1 and\n%s\ngot\n%s", args, r.code, strings.Join(want, "\n"), r.stderr)
		}
	}
}

func TestAlertsTestCommand(t *testing.T) {
	t.Parallel()
	r := run(t, "", nil, "alerts", "test", "../../docs/alerts-example.test.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "2 test(s), 0 failed") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("rules:\n  - {name: u, kind: unpriced}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "t.yaml"), []byte("rule_files: [r.yaml]\ntests:\n  - name: expects nothing\n    input_series:\n      - {group: {model: m}, start: 2026-01-01T00:00:00Z, unpriced: \"1\"}\n    alert_rule_test:\n      - {eval_time: 2026-01-01T00:01:00Z, rule: u, exp_alerts: []}\n"), 0o644)
	r = run(t, "", nil, "alerts", "test", filepath.Join(dir, "t.yaml"))
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL") || !strings.Contains(r.stdout, "1 test(s), 1 failed") {
		t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// Backtest over the query fixture (usage at 10:42 on 2026-01-15) and
// silences through the CLI.
func TestAlertsBacktestAndSilences(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte(`rules:
  - {name: daily, kind: budget, by: [tenant], period: day, amount_usd: 1}
  - {name: unpriced, kind: unpriced, by: [model]}
  - {name: never, kind: budget, period: day, amount_usd: 1000}
`), 0o644)
	r := run(t, "", nil, "--clickhouse", dsn, "alerts", "backtest", "--rules", rules, "--from", "2026-01-15", "--to", "2026-01-16")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		`(?m)^daily\s+budget\s+24\s+0\s+1\s+13h0m0s\s+2026-01-15T11:00:00Z`,
		`(?m)^unpriced\s+unpriced\s+24\s+0\s+1\s+1h0m0s\s+2026-01-15T11:00:00Z`,
		`(?m)^never\s+budget\s+24\s+0\s+0\s+0s`,
		`fired 2026-01-15T11:00:00Z, resolved 2026-01-15T12:00:00Z \{model=llama-local\}`,
		`fired 2026-01-15T11:00:00Z, still firing \{tenant=o'hare\} threshold 100% peak 1.5`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("backtest output lacks %s:\n%s", want, r.stdout)
		}
	}
	r = run(t, "", nil, "--clickhouse", dsn, "alerts", "silence", "add", "--match", "tenant=acme", "--match", "rule=daily", "--duration", "1h", "--comment", "load test")
	if r.code != 0 {
		t.Fatalf("silence add: exit %d %s", r.code, r.stderr)
	}
	// stdout is the id alone (id=$(costpipe alerts silence add …)); the
	// rest is on stderr.
	id := strings.TrimSuffix(r.stdout, "\n")
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(id) || !strings.Contains(r.stderr, "silence "+id+" until ") || !strings.Contains(r.stderr, "rule=daily tenant=acme") {
		t.Fatalf("silence add: stdout %q, want the id alone; stderr %q", r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("silence add of rule= and tenant= warned: %q", r.stderr)
	}
	// A name no alert has without a rule label (a typo) is warned about.
	r = run(t, "", nil, "--clickhouse", dsn, "alerts", "silence", "add", "--match", "tennant=acme", "--duration", "1m")
	if r.code != 0 || !strings.Contains(r.stderr, `warning: --match tennant=…: "tennant" is not rule, kind or a dimension`) {
		t.Errorf("silence add --match tennant=acme: exit %d, stderr %q; want a warning", r.code, r.stderr)
	}
	r = run(t, "", nil, "alerts", "silence", "list", "--clickhouse", dsn)
	if r.code != 0 || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "rule=daily tenant=acme") || !strings.Contains(r.stdout, "load test") {
		t.Fatalf("silence list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, "alerts", "silence", "expire", "--clickhouse", dsn, id)
	if r.code != 0 {
		t.Fatalf("silence expire: exit %d %s", r.code, r.stderr)
	}
	if r = run(t, "", nil, "alerts", "silence", "list", "--clickhouse", dsn); strings.Contains(r.stdout, id) {
		t.Errorf("expired silence still listed:\n%s", r.stdout)
	}
	if r = run(t, "", nil, "alerts", "silence", "list", "--all", "--clickhouse", dsn); !strings.Contains(r.stdout, id) {
		t.Errorf("--all lacks the expired silence:\n%s", r.stdout)
	}
	if r = run(t, "", nil, "alerts", "silence", "expire", "--clickhouse", dsn, "nope"); r.code != 1 {
		t.Errorf("expire of an unknown id: exit %d", r.code)
	}
}

// A silence starting or ending outside what a DateTime column stores
// (it would be stored wrapped and never silence anything) is a usage
// error naming the flag, before anything is stored.
func TestAlertsSilenceAddOutsideDateTime(t *testing.T) {
	t.Parallel()
	nowhere := "clickhouse://127.0.0.1:1/costpipe"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--duration", "999999h"}, "invalid --duration 999999h0m0s: the silence would end at 21"},
		{[]string{"--start", "2106-02-05T00:00:00Z", "--duration", "24h1s"}, "invalid --duration 24h0m1s: the silence would end at 2106-02-06T00:00:01Z, after 2106-02-06T00:00:00Z"},
		{[]string{"--start", "1900-01-01T00:00:00Z"}, "invalid --start 1900-01-01T00:00:00Z: before 1970-01-01T00:00:00Z"},
		{[]string{"--start", "2200-01-01"}, "invalid --start 2200-01-01T00:00:00Z: want a start before 2106-02-06T00:00:00Z"},
	} {
		args := append([]string{"--clickhouse", nowhere, "alerts", "silence", "add", "--match", "rule=x"}, tc.args...)
		r := run(t, "", nil, args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, want 2 and %q\n%s%s", tc.args, r.code, tc.want, r.stdout, r.stderr)
		}
	}
}

// Control characters in a comment, author or matcher (an ESC sequence that
// `silence list` would write to a terminal, a tab that shifts its columns)
// are a usage error naming the flag, before anything is stored.
func TestAlertsSilenceAddRefusesControlCharacters(t *testing.T) {
	t.Parallel()
	nowhere := "clickhouse://127.0.0.1:1/costpipe"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--match", "rule=x", "--comment", "a\x1b[2Jb"}, `invalid --comment "a\x1b[2Jb": control characters`},
		{[]string{"--match", "rule=x", "--comment", "two\tcolumns"}, `invalid --comment "two\tcolumns": control characters`},
		{[]string{"--match", "rule=x", "--author", "me\r"}, `invalid --author "me\r": control characters`},
		{[]string{"--match", "tenant=a\x1b]0;x\x07"}, `invalid --match: matcher "tenant=a\x1b]0;x\a" has a control character`},
	} {
		r := run(t, "", nil, append([]string{"--clickhouse", nowhere, "alerts", "silence", "add"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: exit %d, want 2 and %q\n%s%s", tc.args, r.code, tc.want, r.stdout, r.stderr)
		}
	}
}

// silence list quotes what a silence stored before control characters were
// refused holds, so it cannot write an escape sequence to the terminal.
func TestAlertsSilenceListPrintable(t *testing.T) {
	t.Parallel()
	if got := printable("load test"); got != "load test" {
		t.Errorf("printable(plain) = %q", got)
	}
	if got := printable("a\x1b[2Jb"); got != `"a\x1b[2Jb"` {
		t.Errorf("printable(ESC) = %q", got)
	}
}

// --interval refuses what the rules file's interval: refuses (below 1s:
// every evaluation queries ClickHouse), naming the flag, before connecting.
// (A --metrics-listen that cannot listen ends a run that got past the
// interval before it connects to ClickHouse, which it would retry.)
func TestAlertsRunIntervalAtLeastASecond(t *testing.T) {
	t.Parallel()
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("receivers:\n  - {name: l, type: log}\nrules:\n  - {name: u, kind: unpriced, notify: [l]}\n"), 0o644)
	args := func(extra ...string) []string {
		return append([]string{"--clickhouse", "clickhouse://127.0.0.1:1/costpipe", "alerts", "run", "--rules", rules, "--metrics-listen", "no:such:address"}, extra...)
	}
	for _, iv := range []string{"1ms", "999ms", "0s", "-1s"} {
		r := run(t, "", nil, args("--interval", iv)...)
		if r.code != 2 || !strings.Contains(r.stderr, "invalid --interval "+iv+": want at least 1s") {
			t.Errorf("--interval %s: exit %d, want 2\n%s", iv, r.code, r.stderr)
		}
	}
	r := run(t, "", []string{"COSTPIPE_ALERTS_INTERVAL=10ms"}, args()...)
	if r.code != 2 || !strings.Contains(r.stderr, "invalid --interval 10ms") {
		t.Errorf("COSTPIPE_ALERTS_INTERVAL=10ms: exit %d, want 2\n%s", r.code, r.stderr)
	}
	// 1s is accepted: the run gets as far as --metrics-listen.
	r = run(t, "", nil, args("--interval", "1s")...)
	if strings.Contains(r.stderr, "invalid --interval") || !strings.Contains(r.stderr, "cannot listen on --metrics-listen") {
		t.Errorf("--interval 1s: exit %d\n%s", r.code, r.stderr)
	}
}

// TestComposeAlertsRulesLoad: the rules file docker-compose.yml's alerts
// service runs passes alerts run's loading (alerts.LoadConfig: the
// receivers' url_file and secrets_file read) and its receivers build, with
// exactly the files the service mounts (defaults of the ${VAR:-default}
// sources) placed at their container paths under a temporary root, each
// readable by the image's non-root user. Without them the service exits 1
// at start and restart-loops.
func TestComposeAlertsRulesLoad(t *testing.T) {
	t.Parallel()
	const repo = "../.."
	data, err := os.ReadFile(filepath.Join(repo, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatal(err)
	}
	svc, ok := compose.Services["alerts"]
	if !ok {
		t.Fatal("docker-compose.yml has no alerts service")
	}
	i := slices.Index(svc.Command, "--rules")
	if len(svc.Command) < 2 || svc.Command[0] != "alerts" || svc.Command[1] != "run" || i < 0 || i+1 >= len(svc.Command) {
		t.Fatalf("the alerts service's command %q is not alerts run --rules FILE", svc.Command)
	}
	rulesPath := svc.Command[i+1]

	// Mounts: host path (a ${VAR:-default} source takes its default) to
	// container path, copied under root.
	root := t.TempDir()
	mounted := map[string]string{} // container path → path under root
	def := regexp.MustCompile(`^\$\{[A-Z0-9_]+:-([^}]*)\}$`)
	for _, v := range svc.Volumes {
		// SOURCE:TARGET[:MODE], where SOURCE may be ${VAR:-default}.
		cut := strings.IndexByte(v, ':')
		if strings.HasPrefix(v, "${") {
			cut = strings.IndexByte(v, '}') + 1
		}
		if cut <= 0 || cut >= len(v) || v[cut] != ':' {
			t.Fatalf("cannot read volume %q", v)
		}
		dst, _, _ := strings.Cut(v[cut+1:], ":")
		src := v[:cut]
		if m := def.FindStringSubmatch(src); m != nil {
			src = m[1]
		}
		if !strings.HasPrefix(src, "./") {
			continue // a named volume
		}
		b, err := os.ReadFile(filepath.Join(repo, src))
		if err != nil {
			t.Fatalf("volume %q: %v", v, err)
		}
		if fi, _ := os.Stat(filepath.Join(repo, src)); fi.Mode().Perm()&0o004 == 0 {
			t.Errorf("volume %q: %s is not readable by others (the image runs as nonroot)", v, src)
		}
		at := filepath.Join(root, dst)
		os.MkdirAll(filepath.Dir(at), 0o755)
		if err := os.WriteFile(at, b, 0o644); err != nil {
			t.Fatal(err)
		}
		mounted[dst] = at
	}
	rulesAt, ok := mounted[rulesPath]
	if !ok {
		t.Fatalf("--rules %s is not mounted: volumes %q", rulesPath, svc.Volumes)
	}
	rules, err := os.ReadFile(rulesAt)
	if err != nil {
		t.Fatal(err)
	}
	// Every file a receiver reads must be mounted; its path in the rules
	// becomes the copy's under root.
	parsed, err := alerts.ParseConfig(rulesPath, rules)
	if err != nil {
		t.Fatal(err)
	}
	text := string(rules)
	for _, rc := range parsed.Receivers {
		for _, f := range []string{rc.URLFile, rc.SecretsFile} {
			if f == "" {
				continue
			}
			at, ok := mounted[f]
			if !ok {
				t.Errorf("receiver %q reads %s, which the alerts service does not mount", rc.Name, f)
				continue
			}
			text = strings.ReplaceAll(text, f, at)
		}
	}
	rewritten := filepath.Join(root, "rules-as-mounted.yaml")
	os.WriteFile(rewritten, []byte(text), 0o644)
	cfg, err := loadRules(rewritten, true)
	if err != nil {
		t.Fatalf("alerts run would not start on the mounted rules: %v", err)
	}
	kafka, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer kafka.Close()
	if _, err := notify.Build(cfg.Receivers, notify.Deps{Kafka: kafka}); err != nil {
		t.Fatalf("alerts run could not build the mounted rules' receivers: %v", err)
	}
}

// served is a costpipe process serving --metrics-listen 127.0.0.1:0.
type served struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	log  *deriveLog
	done chan struct{} // closed when stderr is read to its end
}

// startServed starts costpipe with args (which include --metrics-listen
// 127.0.0.1:0) and waits for it to log the address it serves.
func startServed(t *testing.T, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, binPath, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{t: t, cmd: cmd, log: &deriveLog{}, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`msg="serving metrics" addr=(\S+)/metrics`)
		for sc.Scan() {
			s.log.Write([]byte(sc.Text() + "\n"))
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case s.addr = <-found:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-s.done
		cmd.Wait()
		t.Fatalf("costpipe %v logged no metrics address within 20 s:\n%s", args, s.log.String())
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-s.done
			cmd.Wait()
		}
	})
	return s
}

// get GETs path and returns the status and body (status 0 and the error
// when there is no answer within 5 s).
func (s *served) get(path string) (int, string) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + s.addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls path until it answers code with a body matching re, for up
// to 30 s, and returns the body.
func (s *served) waitFor(path string, code int, re string) string {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, body := s.get(path)
		if c == code && regexp.MustCompile(re).MatchString(body) {
			return body
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %d %q, want %d and %s; log:\n%s", path, c, body, code, re, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns the exit error.
func (s *served) stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.done
	return s.cmd.Wait()
}

// TestAlertsRunHealthAndReadiness: alerts run's /healthz answers 200 from
// the start, while ClickHouse is still waited for, and /readyz 503 saying
// it is starting (a SIGTERM then exits 0); with ClickHouse reachable
// /readyz answers 200 once an evaluation completed, /healthz 200 all along.
// (/healthz answered 503 until the first evaluation and during a
// ClickHouse outage, and nothing at all before ClickHouse was reached: a
// liveness probe restarted the pod.)
func TestAlertsRunHealthAndReadiness(t *testing.T) {
	t.Parallel()
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("rules:\n  - {name: u, kind: unpriced}\n"), 0o644)
	s := startServed(t, "--clickhouse", "clickhouse://127.0.0.1:1/costpipe", "alerts", "run", "--rules", rules,
		"--interval", "1s", "--metrics-listen", "127.0.0.1:0")
	if code, body := s.get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz while waiting for ClickHouse: %d %q, want 200 ok", code, body)
	}
	if code, body := s.get("/readyz"); code != 503 || !strings.Contains(body, "not ready: starting") {
		t.Errorf("/readyz while waiting for ClickHouse: %d %q, want 503 not ready: starting", code, body)
	}
	if code, body := s.get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics while waiting for ClickHouse: %d, want 200 with the Go collector's metrics", code)
	}
	if err := s.stop(); err != nil {
		t.Errorf("exit after SIGTERM while waiting for ClickHouse: %v\n%s", err, s.log.String())
	}

	// A database without the migrations: alerts run applies none (one
	// may fence the running aggregators), it waits until costpipe migrate
	// has run.
	srv := chtest.Shared(t)
	dsn := srv.DSN(srv.NewDatabase(t))
	s = startServed(t, "--clickhouse", dsn, "alerts", "run", "--rules", rules,
		"--interval", "1s", "--metrics-listen", "127.0.0.1:0")
	time.Sleep(1500 * time.Millisecond)
	if code, body := s.get("/readyz"); code != 503 || !strings.Contains(body, "waiting for its migrations") {
		t.Errorf("/readyz before costpipe migrate: %d %q", code, body)
	}
	if !strings.Contains(s.log.String(), "waiting for costpipe migrate") {
		t.Errorf("no log line says what it waits for:\n%s", s.log.String())
	}
	if r := run(t, "", nil, "--clickhouse", dsn, "migrate"); r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.code, r.stderr)
	}
	s.waitFor("/readyz", 200, `^ready\n$`)
	if code, body := s.get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q, want 200 ok", code, body)
	}
	if code, body := s.get("/metrics"); code != 200 || !strings.Contains(body, `costpipe_alerts_evaluations_total{result="ok",rule="u"}`) {
		t.Errorf("/metrics: %d, want the evaluations:\n%s", code, body)
	}
	if err := s.stop(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, s.log.String())
	}
}

// proxiedDB is a migrated database of the shared server reached through a
// fault proxy, and a clock the test moves (start 2026-03-11T00:30:00Z).
type proxiedDB struct {
	w     *warehouse.Warehouse
	proxy *faultproxy.Proxy
	clock atomic.Int64
}

func newProxiedDB(t *testing.T, dsn string) *proxiedDB {
	t.Helper()
	whtest.Migrated(t, dsn)
	srv := chtest.Shared(t)
	p := &proxiedDB{proxy: faultproxy.Start(t, srv.TCPAddr)}
	p.clock.Store(time.Date(2026, 3, 11, 0, 30, 0, 0, time.UTC).UnixNano())
	wo := warehouse.DefaultOptions()
	wo.DSN, wo.DialTimeout = "clickhouse://"+p.proxy.Addr+"/"+dsn[strings.LastIndexByte(dsn, '/')+1:], time.Second
	var err error
	if p.w, err = warehouse.Open(context.Background(), wo); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.w.Close() })
	return p
}

func (p *proxiedDB) now() time.Time          { return time.Unix(0, p.clock.Load()).UTC() }
func (p *proxiedDB) advance(d time.Duration) { p.clock.Add(int64(d)) }

// down makes ClickHouse unreachable (true) or reachable again.
func (p *proxiedDB) down(on bool) {
	p.proxy.Refuse(on)
	if on {
		p.proxy.Cut()
	}
}

// probe GETs path from h and returns the status and body.
func probe(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// TestAlertsRunProbesDuringOutage: through alerts run's handler, with a
// real runner on a real ClickHouse: /readyz answers 503 "starting" before
// the runner exists, 503 until its first evaluation, 200 after it, 503
// again once no evaluation completed for three intervals (at least a
// minute) while ClickHouse is unreachable, saying since when, and 200 once
// an evaluation completes again; /healthz answers 200 throughout, and
// /metrics counts the failed evaluations.
func TestAlertsRunProbesDuringOutage(t *testing.T) {
	t.Parallel()
	srv := chtest.Shared(t)
	db := newProxiedDB(t, srv.DSN(srv.NewDatabase(t)))
	reg := prometheus.NewRegistry()
	probes := &probeServer{reg: reg}
	h := probes.handler()
	expect := func(step string, wantReady int, why string) {
		t.Helper()
		if code, body := probe(t, h, "/healthz"); code != 200 || body != "ok\n" {
			t.Errorf("%s: /healthz %d %q, want 200 ok", step, code, body)
		}
		code, body := probe(t, h, "/readyz")
		if code != wantReady || !strings.Contains(body, why) {
			t.Errorf("%s: /readyz %d %q, want %d and %q", step, code, body, wantReady, why)
		}
	}
	expect("before the runner", 503, "not ready: starting (connecting to ClickHouse")

	cfg, err := alerts.ParseConfig("rules.yaml", []byte("interval: 30s\nrules:\n  - {name: u, kind: unpriced}\n"))
	if err != nil {
		t.Fatal(err)
	}
	store := alerts.NewStore(db.w, db.now)
	do := alerts.DefaultDeliverOptions()
	do.Now = db.now
	del, err := alerts.NewDeliverer(store, do)
	if err != nil {
		t.Fatal(err)
	}
	runner, err := alerts.NewRunner(cfg, analytics.New(db.w, analytics.Options{Now: db.now}), store, del,
		alerts.RunOptions{Now: db.now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	probes.setReady(runner.Ready)
	expect("before the first evaluation", 503, "not ready: no evaluation has completed yet")
	tick := func() error { return runner.Tick(context.Background(), db.now()) }
	if err := tick(); err != nil {
		t.Fatal(err)
	}
	expect("after an evaluation", 200, "ready\n")

	db.down(true)
	for range 3 {
		db.advance(30 * time.Second)
		if err := tick(); err == nil {
			t.Fatal("an evaluation with ClickHouse unreachable completed")
		}
		expect("within three intervals of the last evaluation", 200, "ready\n")
	}
	db.advance(time.Second)
	expect("91 s after the last evaluation", 503, "not ready: the last complete evaluation was 1m31s ago (limit 1m30s)")
	if _, body := probe(t, h, "/metrics"); !strings.Contains(body, `costpipe_alerts_evaluations_total{result="error",rule="u"} 3`) {
		t.Errorf("/metrics does not count 3 failed evaluations:\n%s", body)
	}

	db.down(false)
	if err := tick(); err != nil {
		t.Fatalf("evaluation with ClickHouse back: %v", err)
	}
	expect("once an evaluation completed again", 200, "ready\n")
}

// TestAlertsRunRefusesALeaseTheRetriesDoNotFit: a round of attempts must end
// within the lease less two settle times, or every round would be cut at
// its deadline and never reach its end (deferred or dead).
func TestAlertsRunRefusesALeaseTheRetriesDoNotFit(t *testing.T) {
	t.Parallel()
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("rules:\n  - {name: b, kind: budget, period: day, amount_usd: 1}\n"), 0o644)
	// 2 attempts of 10 s and a 1 s wait: 21 s; a 25 s lease less 2 × 3 s is 19 s.
	r := run(t, "", nil, "alerts", "run", "--rules", rules, "--claim-lease", "25s", "--claim-settle", "3s",
		"--max-attempts", "2", "--attempt-timeout", "10s", "--backoff-min", "1s", "--backoff-max", "1s")
	if r.code != 2 || !strings.Contains(r.stderr, "invalid --claim-lease 25s") || !strings.Contains(r.stderr, "twice --claim-settle") {
		t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// 3 attempts of 2 s and waits doubling from 1 s (1 s, 2 s): 9 s; but a
	// Retry-After can make each wait --backoff-max, 20 s: 46 s, more than a
	// 40 s lease less 2 × 1 s.
	r = run(t, "", nil, "alerts", "run", "--rules", rules, "--claim-lease", "40s", "--claim-settle", "1s",
		"--max-attempts", "3", "--attempt-timeout", "2s", "--backoff-min", "1s", "--backoff-max", "20s")
	if r.code != 2 || !strings.Contains(r.stderr, "invalid --claim-lease 40s") || !strings.Contains(r.stderr, "may take 46s") {
		t.Errorf("a lease the waits Retry-After asks for do not fit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
