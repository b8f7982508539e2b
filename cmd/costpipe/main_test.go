package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/schemas"
)

var binPath string

// TestMain builds the costpipe binary once (or takes the one
// COSTPIPE_TEST_BIN names, which make test builds once for this package
// and e2e); the tests run it as a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "costpipe-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	binPath = os.Getenv("COSTPIPE_TEST_BIN")
	if binPath == "" {
		binPath = filepath.Join(dir, "costpipe")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "cannot build costpipe: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	// The aggregator's default spool directory is relative to the working
	// directory: keep it out of the source tree.
	os.Setenv("COSTPIPE_DLQ_SPOOL", filepath.Join(dir, "dlq-spool"))
	chtest.Main(m)
}

type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, stdin string, env []string, args ...string) result {
	t.Helper()
	return runIn(t, "", stdin, env, args...)
}

// runIn is run in the working directory dir ("": the test's).
func runIn(t *testing.T, dir, stdin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("costpipe %v: %v", args, err)
	}
	return result{so.String(), se.String(), code}
}

func TestHelpListsOnlyWorkingCommands(t *testing.T) {
	t.Parallel()
	r := run(t, "", nil, "--help")
	if r.code != 0 {
		t.Fatalf("--help exit %d: %s", r.code, r.stderr)
	}
	for _, c := range []string{"broker", "migrate", "produce", "prices"} {
		if !strings.Contains(r.stdout, "   "+c+" ") {
			t.Errorf("--help lacks command %q:\n%s", c, r.stdout)
		}
	}
	for _, env := range []string{"COSTPIPE_BROKERS", "COSTPIPE_TOPIC", "COSTPIPE_CLICKHOUSE", "COSTPIPE_PRICES"} {
		if !strings.Contains(r.stdout, env) {
			t.Errorf("--help does not name env var %s", env)
		}
	}
}

const goodEvent = `{"event_id":"e1","timestamp":"2025-11-01T10:00:00Z","tenant":"acme","provider":"openai","model":"gpt-4o","status":"ok","input_tokens":1000000,"cached_input_tokens":200000,"output_tokens":100000}`

func TestPricesCost(t *testing.T) {
	t.Parallel()
	// 800k uncached × 2.50 + 200k cached × 1.25 + 100k output × 10.00 (per 1M) = 2.00 + 0.25 + 1.00
	r := run(t, goodEvent+"\n", nil, "prices", "cost", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, `"cost_usd":"3.250000000000"`) {
		t.Errorf("want cost 3.25 in %s", r.stdout)
	}
	// A tenant discount from --prices (env var) applies.
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	os.WriteFile(file, []byte(`models:
  - provider: openai
    model: gpt-4o
    prices:
      - from: 2024-01-01
        input: "2.50"
        cached_input: "1.25"
        output: "10.00"
tenants:
  acme: { discount: "0.10" }
`), 0o644)
	r = run(t, goodEvent+"\n", []string{"COSTPIPE_PRICES=" + file}, "prices", "cost", "--format", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"cost_usd":"2.925000000000"`) {
		t.Errorf("with discount: exit %d, stdout %s stderr %s; want cost 2.925", r.code, r.stdout, r.stderr)
	}
	// Flags after the file count as before it (urfave/cli leaves them as
	// arguments); a second file is refused, not skipped.
	events := filepath.Join(dir, "events.jsonl")
	os.WriteFile(events, []byte(goodEvent+"\n"), 0o644)
	r = run(t, "", nil, "prices", "cost", events, "--prices", file, "--format", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"cost_usd":"2.925000000000"`) {
		t.Errorf("flags after the file: exit %d, stdout %s stderr %s; want JSON and cost 2.925", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, "prices", "list", "--provider", "nosuch", "--format", "json")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("prices list matching nothing: exit %d, stdout %q; want []", r.code, r.stdout)
	}
	r = run(t, "", nil, "prices", "cost", events, events)
	if r.code != 2 || !strings.Contains(r.stderr, "prices cost takes one FILE (or - for stdin), got 2") {
		t.Errorf("two files: exit %d, stderr %s; want exit 2", r.code, r.stderr)
	}
	// After "--", a file whose name starts with "-" is a file (urfave/cli
	// used to consume the "--", and the name was read as a flag).
	dashed := filepath.Join(dir, "-odd.jsonl")
	os.WriteFile(dashed, []byte(goodEvent+"\n"), 0o644)
	r = runIn(t, dir, "", nil, "prices", "cost", "--prices", file, "--format", "json", "--", "-odd.jsonl")
	if r.code != 0 || !strings.Contains(r.stdout, `"cost_usd":"2.925000000000"`) {
		t.Errorf("prices cost -- -odd.jsonl: exit %d, stdout %s stderr %s; want the file priced", r.code, r.stdout, r.stderr)
	}
}

func TestPricesCheckNamesFileLineAndField(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("models:\n  - provider: openai\n    model: gpt-4o\n    prices:\n      - from: 2024-01-01\n        input: \"2,50\"\n        output: \"10\"\n"), 0o644)
	r := run(t, "", nil, "prices", "check", bad)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "bad.yaml:6") || !strings.Contains(r.stderr, `"input"`) || !strings.Contains(r.stderr, `"2,50"`) {
		t.Errorf("error does not name file:line, field and value:\n%s", r.stderr)
	}
	// A tier the rollups cannot split at: fine for pricing calls, refused
	// by what-if and reprice, which check warns about at its line.
	odd := filepath.Join(dir, "odd.yaml")
	os.WriteFile(odd, []byte("models:\n  - provider: p\n    model: m\n    prices:\n      - from: 2024-01-01\n        input: \"1\"\n        output: \"2\"\n        tiers:\n          - {above: 100000, input: \"3\"}\n"), 0o644)
	r = run(t, "", nil, "prices", "check", odd)
	if r.code != 0 || !strings.Contains(r.stdout, "ok") || !strings.Contains(r.stderr, "warning: "+odd+":2: ") || !strings.Contains(r.stderr, "above 100000") {
		t.Errorf("tier at 100000: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, "prices", "list", "--format", "json")
	if r.code != 0 || strings.Count(r.stdout, `"provider"`) < 2000 {
		t.Errorf("prices list: exit %d, %d entries; want ≥ 2000", r.code, strings.Count(r.stdout, `"provider"`))
	}
	// The table says where the embedded catalog comes from and its date,
	// and shows long-context and service tiers.
	r = run(t, "", nil, "prices", "list", "--provider", "anthropic")
	if r.code != 0 || !strings.Contains(r.stdout, "source: LiteLLM model_prices_and_context_window.json") ||
		!strings.Contains(r.stdout, "updated: 2026-07-24") || !strings.Contains(r.stdout, ">200k: 6.00/22.50") {
		t.Errorf("prices list: exit %d\n%s", r.code, r.stdout)
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t) + "_m"
	r := run(t, "", []string{"COSTPIPE_CLICKHOUSE=" + srv.DSN(db)}, "migrate")
	if r.code != 0 || !strings.Contains(r.stdout, "applied  0001_usage_rollups") {
		t.Fatalf("first migrate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, "--clickhouse", srv.DSN(db), "migrate")
	if r.code != 0 || !strings.Contains(r.stdout, "0 migration(s) applied") {
		t.Fatalf("second migrate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// An empty database: nothing to rebuild, and it says so.
	r = run(t, "", nil, "--clickhouse", srv.DSN(db), "migrate", "--rebuild-summaries")
	if r.code != 0 || !strings.Contains(r.stdout, "0 summary month(s) rebuilt from the rollups") {
		t.Fatalf("migrate --rebuild-summaries: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, "--clickhouse", "clickhouse://127.0.0.1:1/x", "migrate")
	if r.code == 0 || !strings.Contains(r.stderr, "cannot reach clickhouse") {
		t.Errorf("unreachable server: exit %d, stderr %s", r.code, r.stderr)
	}
}

// TestSummaryWarningsFollowLogLevel: the per-model summaries' warning (a
// summary that disagrees with its rollup) goes through the command's
// logger: slog text at the --log-level, not Go's default logger printing
// whatever the level.
func TestSummaryWarningsFollowLogLevel(t *testing.T) {
	t.Parallel()
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	dsn := srv.DSN(db)
	if r := run(t, "", nil, "--clickhouse", dsn, "migrate"); r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.code, r.stderr)
	}
	day := time.Now().UTC().AddDate(0, 0, -3).Format(time.DateOnly)
	conn := srv.Conn(t, db)
	for _, q := range []string{
		"INSERT INTO " + db + ".usage_1d_input_v10 (ts, tenant, provider, model, src_topic, src_partition, src_offset, requests) SELECT toDateTime('" + day + " 00:00:00', 'UTC'), 't', 'openai', 'gpt-4o', 'x', toInt32(0), toInt64(1), toUInt64(5)",
		// Counted twice in the summaries a 30-day question may read.
		"INSERT INTO " + db + ".usage_model_1d SELECT * FROM " + db + ".usage_model_1d",
		"INSERT INTO " + db + ".usage_model_1w SELECT * FROM " + db + ".usage_model_1w",
	} {
		if err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	r := run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--since", "30d", "--by", "model")
	if r.code != 0 || !strings.Contains(r.stderr, "level=WARN") || !strings.Contains(r.stderr, "disagree") || !strings.Contains(r.stdout, "gpt-4o") {
		t.Errorf("default level: exit %d, want the answer and a WARN line saying the summaries disagree:\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, "--clickhouse", dsn, "--log-level", "error", "query", "usage", "--since", "30d", "--by", "model")
	if r.code != 0 || strings.Contains(r.stderr, "WARN") || !strings.Contains(r.stdout, "gpt-4o") {
		t.Errorf("--log-level error: exit %d, want the answer and no warning:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestProduceReportsRejectedLinesAndSendsTheRest(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 3)
	input := goodEvent + "\n" +
		"\n" + // blank: skipped, not an error
		`{"event_id":"e2","timestamp":"2025-11-01T10:00:00Z","tenant":"acme","provider":"openai","model":"gpt-4o","status":"ok","reasoning_tokens":5}` + "\n" +
		`not json` + "\n" +
		strings.Replace(goodEvent, `"e1"`, `"e3"`, 1) + "\n"
	r := run(t, input, []string{"COSTPIPE_BROKERS=" + b.Addr()}, "produce")
	if r.code != 1 {
		t.Errorf("exit %d, want 1 (some lines rejected)", r.code)
	}
	if !strings.Contains(r.stdout, "sent 2, rejected 2, failed 0") {
		t.Errorf("summary: %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "stdin:3:") || !strings.Contains(r.stderr, `"reasoning_tokens"`) || !strings.Contains(r.stderr, "stdin:4:") {
		t.Errorf("rejections do not name line and field:\n%s", r.stderr)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(schemas.DefaultTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < 2 && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if len(got) != 2 {
		t.Fatalf("consumed %d records, want 2", len(got))
	}
	for _, rec := range got {
		if string(rec.Key) != "acme\x00gpt-4o" {
			t.Errorf("key %q, want tenant\\0model", rec.Key)
		}
		if len(rec.Headers) != 1 || rec.Headers[0].Key != "content-type" || string(rec.Headers[0].Value) != "application/json" {
			t.Errorf("headers %v", rec.Headers)
		}
		var ev schemas.Event
		if err := schemas.DecodeJSON(rec.Value, &ev); err != nil || ev.InputTokens != 1000000 {
			t.Errorf("value %s: %v", rec.Value, err)
		}
	}
	if got[0].Partition != got[1].Partition {
		t.Errorf("same key on partitions %d and %d", got[0].Partition, got[1].Partition)
	}
}

func TestBrokerCommand(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "broker", "--listen", "127.0.0.1:0", "--partitions", "2")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var addr string
	sc := bufio.NewScanner(stdout)
	for addr == "" && sc.Scan() {
		if s := sc.Text(); strings.Contains(s, "listening on ") {
			addr = strings.Fields(strings.SplitN(s, "listening on ", 2)[1])[0]
		}
	}
	drained := make(chan struct{})
	go func() { io.Copy(io.Discard, stdout); close(drained) }()
	if addr == "" {
		t.Fatal("broker command did not print its address")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: schemas.DefaultTopic, Value: []byte("{}")}).FirstErr(); err != nil {
		t.Errorf("produce to the broker command at %s: %v", addr, err)
	}
	cl.Close()
	cmd.Process.Signal(os.Interrupt)
	<-drained // Wait closes the pipe: finish reading first
	if err := cmd.Wait(); err != nil {
		t.Errorf("broker did not exit cleanly on SIGINT: %v", err)
	}
	// The signal is acknowledged (a shutdown may take a while); a second
	// one would end the process at once.
	if !strings.Contains(stderr.String(), "costpipe: SIGINT received: shutting down (send another to stop at once)") {
		t.Errorf("no acknowledgement of SIGINT on stderr:\n%s", stderr.String())
	}
	r := run(t, "", nil, "broker", "--partitions", "0")
	if r.code != 2 || !strings.Contains(r.stderr, "partitions") {
		t.Errorf("--partitions 0: exit %d, stderr %s", r.code, r.stderr)
	}
}

// TestStartupDependencies: packages that only slowed every command's start
// stay out of the binary as scripts/build.sh builds it (docs/design.md, "One
// build script"): gRPC and genproto, which OTLP ingest linked through pdata's
// service package, and urfave/cli's Markdown library.
func TestStartupDependencies(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-tags", "urfave_cli_no_docs", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 {
		t.Fatalf("go list -deps listed %d packages: %q", len(deps), out)
	}
	for _, d := range deps {
		for _, banned := range []string{"google.golang.org/grpc", "google.golang.org/genproto/", "github.com/russross/blackfriday/"} {
			if d == banned || strings.HasPrefix(d, banned) && strings.HasSuffix(banned, "/") || strings.HasPrefix(d, banned+"/") {
				t.Errorf("costpipe links %s again", d)
			}
		}
	}
}

// TestUsageErrorsExitTwo: a flag a command cannot take, before or after
// its name, ends every command with status 2 and one line that names the
// flag as the help spells it and the help to read (some commands printed
// "Incorrect Usage" and their whole help page with status 1).
func TestUsageErrorsExitTwo(t *testing.T) {
	t.Parallel()
	var paths []string
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Name == "help" {
				continue
			}
			p := strings.TrimSpace(prefix + " " + c.Name)
			paths = append(paths, p)
			walk(p, c.Subcommands)
		}
	}
	walk("", newApp().Commands)
	paths = append(paths, "")
	for _, p := range paths {
		args := append(strings.Fields(p), "--no-such-flag")
		r := run(t, "", nil, args...)
		want := "costpipe: flag provided but not defined: --no-such-flag (see " + strings.Join(strings.Fields("costpipe "+p+" --help"), " ") + ")\n"
		if r.code != 2 || r.stderr != want || r.stdout != "" {
			t.Errorf("costpipe %s --no-such-flag: exit %d, stdout %d bytes, stderr %q; want exit 2 and %q", p, r.code, len(r.stdout), r.stderr, want)
		}
	}
	r := run(t, "", nil, "ingest", "--shutdown-timeout", "abc")
	if want := `costpipe: invalid value "abc" for flag --shutdown-timeout: parse error (see costpipe ingest --help)` + "\n"; r.code != 2 || r.stderr != want {
		t.Errorf("ingest --shutdown-timeout abc: exit %d, stderr %q; want 2 and %q", r.code, r.stderr, want)
	}
	r = run(t, "", nil, "produce", "--timeout", "-1s", "/dev/null")
	if want := "costpipe: invalid --timeout -1s: want at least 1s\n"; r.code != 2 || r.stderr != want {
		t.Errorf("produce --timeout -1s: exit %d, stderr %q; want 2 and %q", r.code, r.stderr, want)
	}
	r = run(t, "", []string{"COSTPIPE_LOG_LEVEL=verbose"}, "query", "usage")
	if want := `costpipe: invalid --log-level "verbose": want debug, info, warn or error` + "\n"; r.code != 2 || r.stderr != want {
		t.Errorf("COSTPIPE_LOG_LEVEL=verbose query usage: exit %d, stderr %q; want 2 and %q", r.code, r.stderr, want)
	}
	r = run(t, "", []string{"COSTPIPE_FLUSH_INTERVAL=abc"}, "aggregate")
	if r.code != 2 || !strings.Contains(r.stderr, `"COSTPIPE_FLUSH_INTERVAL"`) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("COSTPIPE_FLUSH_INTERVAL=abc aggregate: exit %d, stderr %q; want 2 and one line naming the variable", r.code, r.stderr)
	}
	// A mistyped command: urfave/cli said "No help topic for 'quer'", exit 1.
	for _, tc := range []struct{ args, want string }{
		{"quer", `costpipe: unknown command "quer". Did you mean "query"? (see costpipe --help)`},
		{"query usge", `costpipe: unknown command "query usge". Did you mean "usage"? (see costpipe query --help)`},
		{"alerts chek rules.yaml", `costpipe: unknown command "alerts chek". Did you mean "check"? (see costpipe alerts --help)`},
		// Nothing near: no suggestion (urfave/cli's was `Did you mean ""?`).
		{"query 7d", `costpipe: unknown command "query 7d" (see costpipe query --help)`},
	} {
		r := run(t, "", nil, strings.Fields(tc.args)...)
		if r.code != 2 || r.stderr != tc.want+"\n" || r.stdout != "" {
			t.Errorf("costpipe %s: exit %d, stdout %d bytes, stderr %q; want exit 2 and %q", tc.args, r.code, len(r.stdout), r.stderr, tc.want)
		}
	}
	// Without one, a command with subcommands prints its help.
	if r := run(t, "", nil, "query"); r.code != 0 || !strings.Contains(r.stdout, "COMMANDS:") {
		t.Errorf("costpipe query: exit %d, stdout %.200q; want 0 and the help", r.code, r.stdout)
	}
}

// TestEveryFlagReadsAnEnvVar: the contract says every flag also reads an
// environment variable. A flag shared by several commands reads one name
// everywhere, and no name is read by two different flags.
func TestEveryFlagReadsAnEnvVar(t *testing.T) {
	t.Parallel()
	app := newApp()
	flagOf := map[string]string{} // env var → flag name
	check := func(where string, fs []cli.Flag) {
		for _, f := range fs {
			if _, ok := f.(*cmdlineFlag); ok {
				continue // not a flag: tells the others' sources apart
			}
			v := reflect.ValueOf(f).Elem()
			if h := v.FieldByName("Hidden"); h.IsValid() && h.Bool() {
				continue
			}
			envs, _ := v.FieldByName("EnvVars").Interface().([]string)
			if len(envs) == 0 {
				t.Errorf("%s --%s reads no environment variable", where, f.Names()[0])
			}
			for _, e := range envs {
				if prev, ok := flagOf[e]; ok && prev != f.Names()[0] {
					t.Errorf("$%s is read by --%s and by %s --%s", e, prev, where, f.Names()[0])
				}
				flagOf[e] = f.Names()[0]
			}
		}
	}
	check("costpipe", app.Flags)
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := strings.TrimSpace(path + " " + c.Name)
			check(p, c.Flags)
			walk(p, c.Subcommands)
		}
	}
	walk("", app.Commands)
	if flagOf["COSTPIPE_REPRICE_DRY_RUN"] != "dry-run" {
		t.Errorf("reprice --dry-run reads %v", flagOf)
	}
	// Read for real: a bad value in a derived variable is a usage error
	// naming it.
	r := run(t, "", []string{"COSTPIPE_PROBE_TIMEOUT=soon"}, "probe", "http://127.0.0.1:1/healthz")
	if r.code != 2 || !strings.Contains(r.stderr, `"COSTPIPE_PROBE_TIMEOUT"`) {
		t.Errorf("COSTPIPE_PROBE_TIMEOUT=soon probe: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestProbe: a healthcheck written `probe URL --timeout 500ms` reads the
// flag, and against a server that accepts and never answers gives up
// after it with status 1; --timeout 0, which would wait forever, is a
// usage error.
func TestProbe(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepted by the kernel, never answered
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	url := "http://" + ln.Addr().String() + "/readyz"
	start := time.Now()
	r := run(t, "", nil, "probe", url, "--timeout", "500ms")
	if took := time.Since(start); r.code != 1 || !strings.Contains(r.stderr, "probe:") || took > 10*time.Second {
		t.Errorf("silent server: exit %d after %s, stderr %q; want exit 1 after about 500ms", r.code, took, r.stderr)
	}
	r = run(t, "", nil, "probe", "--timeout", "0", url)
	if r.code != 2 || !strings.Contains(r.stderr, "invalid --timeout 0s") {
		t.Errorf("--timeout 0: exit %d, stderr %q; want exit 2", r.code, r.stderr)
	}
}

// TestInterruptedStatus: a command a signal stopped exits as a shell
// reports one that signal killed, 128 + its number: 130 after Ctrl-C, 143
// after SIGTERM (the demo gave 130 for both). signalContext's own
// delivery is TestDemoInterrupted's (this test binary's chtest.Main owns
// the signals, to stop its servers).
func TestInterruptedStatus(t *testing.T) {
	for _, tc := range []struct {
		cause error
		want  int
	}{{signalCause{os.Interrupt}, 130}, {signalCause{syscall.SIGTERM}, 143}, {context.Canceled, 130}} {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(tc.cause)
		if got := interruptedStatus(ctx); got != tc.want {
			t.Errorf("cancelled by %v: status %d, want %d", tc.cause, got, tc.want)
		}
	}
}

// TestAfterDashes: the arguments after the command line's first "--",
// which urfave/cli drops, are told from the others.
func TestAfterDashes(t *testing.T) {
	for _, tc := range []struct {
		raw, args []string
		want      int
	}{
		{[]string{"costpipe", "prices", "cost", "--", "-odd.jsonl"}, []string{"-odd.jsonl"}, 1},
		{[]string{"costpipe", "prices", "cost", "x.jsonl", "--", "-a", "--"}, []string{"x.jsonl", "-a", "--"}, 2},
		{[]string{"costpipe", "prices", "cost", "x.jsonl", "--format", "json"}, []string{"x.jsonl", "--format", "json"}, 0},
		{[]string{"costpipe", "prices", "cost", "--"}, nil, 0},
		{[]string{"costpipe.test", "-test.run", "X", "--", "other"}, []string{"x.jsonl"}, 0}, // not this command line's
		{nil, nil, 0},
	} {
		if got := afterDashes(tc.raw, tc.args); got != tc.want {
			t.Errorf("afterDashes(%q, %q) = %d, want %d", tc.raw, tc.args, got, tc.want)
		}
	}
}

func TestPlural(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{0: "0 events", 1: "1 event", 2: "2 events"} {
		if got := plural(n, "event"); got != want {
			t.Errorf("plural(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"usge", "usage", 1}, {"qeury", "query", 2}, {"7d", "top", 3}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
