package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/urfave/cli/v2"
)

// `costpipe demo` runs `costpipe alerts run` alongside its traffic: the
// budget it sets is crossed at 50% and 100% and, in the growth scenario,
// spend doubles faster than 14 days; each notification reaches the local
// webhook receiver once with a signature that verifies, and the log
// receiver; the report follows.
func TestDemoLiveAlerts(t *testing.T) {
	t.Parallel() // its own databases and broker; mostly waiting on the demo
	srv := chtest.Shared(t)
	for _, tc := range []struct {
		scenario string
		want     []string // rule and threshold of each webhook notification
	}{
		{"growth", []string{"PERIOD-budget threshold 50%", "PERIOD-budget threshold 100%", "spend-growth"}},
		{"steady", []string{"PERIOD-budget threshold 50%", "PERIOD-budget threshold 100%"}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			// A database of its own: a budget threshold is notified once
			// per period, whichever run crossed it first.
			dsn := srv.DSN(demoDatabase(t, srv))
			r := run(t, "", nil, "--clickhouse", dsn, "demo", "--scenario", tc.scenario, "--duration", "5s", "--rate", "1500",
				"--flush-interval", "500ms", "--alerts-wait", "15s")
			if r.code != 0 {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			out := r.stdout
			// The budget is over the current UTC day, or the week or month
			// when the day has no traffic yet (a run just after midnight).
			m := regexp.MustCompile(`alerts\s+costpipe alerts run \(pid \d+\), rules every 1s: (day|week|month) budget \$[0-9.]+ \(50%, 100%\)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no live alerts line:\n%s", out)
			}
			t.Logf("budget over the current %s", m[1])
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = strings.Replace(w, "PERIOD", m[1], 1)
			}
			hooks := regexp.MustCompile(`(?m)^\s+[0-9.]+s  webhook alert\.firing (\S+): .*\(signature verified, webhook-id cpa_[0-9a-f]+…\)$`).FindAllStringSubmatch(
				out[:strings.Index(out+"LIVE ALERTS", "LIVE ALERTS")], -1)
			if len(hooks) != len(want) {
				t.Errorf("%d webhook notifications, want %d (%v):\n%s", len(hooks), len(want), want, out)
			}
			for _, w := range want {
				rule, th, _ := strings.Cut(w, " ")
				n := 0
				for _, h := range hooks {
					if h[1] == rule && strings.Contains(h[0], th+")") {
						n++
					}
				}
				logged := regexp.MustCompile(`alerts run \| .*msg="alert firing" receiver=log .*rule=` + regexp.QuoteMeta(rule) + ` .*` + regexp.QuoteMeta(th))
				if n != 1 || !logged.MatchString(out) {
					t.Errorf("%s: %d webhook notifications (want 1), log receiver line %v:\n%s", w, n, logged.MatchString(out), out)
				}
			}
			if !strings.Contains(out, "LIVE ALERTS: costpipe alerts run delivered "+itoa(len(tc.want))+" signed webhook notifications") ||
				strings.Contains(out, "did not verify") || strings.Contains(out, "not all arrived") {
				t.Errorf("live alerts summary:\n%s", out)
			}
			for _, w := range []string{"TOTAL  cost $", "BY TENANT", "ALERTS BACKTEST"} {
				if !strings.Contains(out, w) {
					t.Errorf("report lacks %q:\n%s", w, out)
				}
			}
			// The report ends with commands to explore further that work
			// as printed (the binary as invoked, the demo's database).
			_, explore, _ := strings.Cut(out, "\nExplore further")
			cmds := regexp.MustCompile(`(?m)^  (\S+ --clickhouse \S+ query .*)$`).FindAllStringSubmatch(explore, -1)
			if len(cmds) != 3 {
				t.Errorf("%d commands to explore further, want 3:\n%s", len(cmds), explore)
			}
			for _, c := range cmds {
				r, err := exec.Command("sh", "-c", c[1]).CombinedOutput()
				if err != nil || len(r) == 0 || strings.Contains(string(r), "costpipe:") {
					t.Errorf("%s: %v\n%s", c[1], err, r)
				}
			}
		})
	}
}

// TestDemoExploreCommands: the demo's closing commands name the DSN
// without its password, quoted for a shell when it needs it.
func TestDemoExploreCommands(t *testing.T) {
	t.Parallel()
	got := exploreCommands("bin/costpipe", "clickhouse://app:s3cret@db.example:9440/costpipe_demo?secure=true&dial_timeout=5s")
	want := "bin/costpipe --clickhouse 'clickhouse://app@db.example:9440/costpipe_demo?secure=true&dial_timeout=5s' query usage --since 2h --by tenant,model   # add --clickhouse-password-file FILE"
	if len(got) != 3 || got[0] != want || strings.Contains(strings.Join(got, "\n"), "s3cret") {
		t.Errorf("got\n%s\nwant first\n%s", strings.Join(got, "\n"), want)
	}
	if got := exploreCommands("/tmp/it's/costpipe", "clickhouse://127.0.0.1:19000/costpipe_demo")[1]; got != `'/tmp/it'\''s/costpipe' --clickhouse clickhouse://127.0.0.1:19000/costpipe_demo query growth --by model` {
		t.Errorf("got %s", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// demoDatabase names a database of the demo's own (costpipe_demo…), dropped
// at the end of the test.
func demoDatabase(t *testing.T, srv *chtest.Server) string {
	t.Helper()
	conn := srv.Conn(t, "default")
	db := demoDatabasePrefix + "_" + strings.TrimPrefix(srv.NewDatabase(t), "test_")
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	return db
}

// TestDemoRefusesOtherDatabases: the demo's synthetic traffic, alert state
// and landing marks never go into a database that may hold real usage.
func TestDemoRefusesOtherDatabases(t *testing.T) {
	t.Parallel()
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	// The DSN given before the command name, after it, or by the
	// environment: each is the user's choice, and each is refused.
	for _, given := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"--clickhouse", srv.DSN(db), "demo", "--duration", "1s"}},
		{nil, []string{"demo", "--clickhouse", srv.DSN(db), "--duration", "1s"}},
		{[]string{"COSTPIPE_CLICKHOUSE=" + srv.DSN(db)}, []string{"demo", "--duration", "1s"}},
	} {
		r := run(t, "", given.env, given.args...)
		if r.code != 2 || !strings.Contains(r.stderr, `refusing database "`+db+`"`) || strings.Contains(r.stdout, "migrated") {
			t.Errorf("demo in %s (%v %v): exit %d, want 2 before migrating\n%s%s", db, given.env, given.args, r.code, r.stdout, r.stderr)
		}
	}
	var n uint64
	if err := srv.Conn(t, "default").QueryRow(t.Context(), "SELECT count() FROM system.tables WHERE database = ?", db).Scan(&n); err != nil || n != 0 {
		t.Errorf("the refused database has %d tables (%v)", n, err)
	}
}

// TestDemoResetChecksFlagsFirst: a demo that cannot run (a bad traffic or
// aggregator flag) stops before --reset drops its database.
func TestDemoResetChecksFlagsFirst(t *testing.T) {
	t.Parallel()
	srv := chtest.Shared(t)
	const db = "costpipe_demo_flags_first"
	conn := srv.Conn(t, "default")
	ctx := t.Context()
	for _, q := range []string{"DROP DATABASE IF EXISTS " + db, "CREATE DATABASE " + db, "CREATE TABLE " + db + ".marker (x UInt8) ENGINE = Log"} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { conn.Exec(t.Context(), "DROP DATABASE IF EXISTS "+db) })
	for _, args := range [][]string{{"--rate", "0"}, {"--tenants", "0"}, {"--flush-interval", "0s"}} {
		r := run(t, "", nil, append([]string{"--clickhouse", srv.DSN(db), "demo", "--reset", "--duration", "1s"}, args...)...)
		if r.code != 2 || strings.Contains(r.stdout, "migrated") {
			t.Errorf("demo --reset %v: exit %d, want 2 before touching ClickHouse\n%s%s", args, r.code, r.stdout, r.stderr)
		}
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'marker'", db).Scan(&n); err != nil || n != 1 {
			t.Fatalf("demo --reset %v: the marker table is gone (%d, %v)", args, n, err)
		}
	}
}

// TestDemoAlertsCommand: the demo's `alerts run` gets the database the
// demo itself uses (also when --clickhouse was not given and the demo
// picked its own), by environment variable over any the user set, with the
// ClickHouse flags given to the demo, and none of them on its command
// line, which every user of the machine can read.
func TestDemoAlertsCommand(t *testing.T) {
	t.Setenv("COSTPIPE_CLICKHOUSE", "clickhouse://user:secret@elsewhere:9000/costpipe")
	app := newApp()
	var cmd *exec.Cmd
	for _, c := range app.Commands {
		if c.Name == "demo" {
			c.Action = func(c *cli.Context) error {
				cmd = demoAlertsCommand(c, "/bin/costpipe", "/tmp/rules.yaml", demoDSN)
				return nil
			}
		}
	}
	if err := app.Run([]string{"costpipe", "--clickhouse-ca-file", "/etc/ca.pem", "demo"}); err != nil {
		t.Fatal(err)
	}
	if cmd == nil {
		t.Fatal("the demo command did not run")
	}
	if args := strings.Join(cmd.Args, " "); strings.Contains(args, "clickhouse") || strings.Contains(args, "secret") {
		t.Errorf("command line %q names ClickHouse", args)
	}
	got := map[string]string{}
	for _, kv := range cmd.Env { // the last value of a key is the one used
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	if got["COSTPIPE_CLICKHOUSE"] != demoDSN || got["COSTPIPE_CLICKHOUSE_CA_FILE"] != "/etc/ca.pem" {
		t.Errorf("environment: COSTPIPE_CLICKHOUSE=%q COSTPIPE_CLICKHOUSE_CA_FILE=%q; want %q and /etc/ca.pem",
			got["COSTPIPE_CLICKHOUSE"], got["COSTPIPE_CLICKHOUSE_CA_FILE"], demoDSN)
	}
	if runtime.GOOS == "linux" && (cmd.SysProcAttr == nil || !cmd.SysProcAttr.Setpgid || cmd.SysProcAttr.Pdeathsig != syscall.SIGTERM) {
		t.Errorf("SysProcAttr %+v: want a process group of its own, and SIGTERM when the demo dies", cmd.SysProcAttr)
	}
}

// TestDemoInterrupted: a SIGINT while the traffic runs (a Ctrl-C, which a
// terminal sends to the whole foreground process group) stops the demo
// within seconds with status 130, not after the wait for notifications
// and a report with status 0, and its `alerts run` and temporary
// directories end with it.
func TestDemoInterrupted(t *testing.T) {
	t.Parallel()
	srv := chtest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	tmp := t.TempDir()
	cmd := exec.CommandContext(ctx, binPath, "--clickhouse", srv.DSN(demoDatabase(t, srv)), "demo", "--duration", "60s", "--rate", "300",
		"--flush-interval", "500ms", "--alerts-wait", "90s")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a group of its own, as a terminal's foreground job
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	var out strings.Builder
	child := 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if m := regexp.MustCompile(`costpipe alerts run \(pid (\d+)\)`).FindStringSubmatch(sc.Text()); m != nil {
			child, _ = strconv.Atoi(m[1])
		}
		if strings.HasPrefix(sc.Text(), "traffic ") {
			break
		}
	}
	if child == 0 {
		t.Fatalf("no alerts run started:\n%s%s", out.String(), stderr.String())
	}
	time.Sleep(time.Second)
	start := time.Now()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) // the whole group, as Ctrl-C
	go io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	took := time.Since(start)
	// Within 45 s: well under the 90 s --alerts-wait the demo used to sit
	// out, with room for the landing and the alerts process's own stop
	// on a loaded machine (it takes about 2 s here).
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 130 || took > 45*time.Second {
		t.Errorf("after SIGINT: %v after %s; want exit status 130 within 45s\n%s%s", err, took, out.String(), stderr.String())
	}
	if syscall.Kill(child, 0) == nil {
		t.Errorf("alerts run (pid %d) still runs after the demo ended", child)
		syscall.Kill(child, syscall.SIGKILL)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}
