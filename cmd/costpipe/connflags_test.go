package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// findCommand returns the command at path ("query usage") of app.
func findCommand(t *testing.T, app *cli.App, path string) *cli.Command {
	t.Helper()
	cmds := app.Commands
	var cmd *cli.Command
	for _, name := range strings.Fields(path) {
		cmd = nil
		for _, c := range cmds {
			if c.Name == name {
				cmd = c
			}
		}
		if cmd == nil {
			t.Fatalf("no command %q", path)
		}
		cmds = cmd.Subcommands
	}
	return cmd
}

// TestConnFlagsBothPositions runs every command that uses a connection
// flag with the flag before the command name, after it, both, and from the
// environment, and checks the value the command reads.
func TestConnFlagsBothPositions(t *testing.T) {
	defaults := map[string]string{}
	envs := map[string]string{}
	for _, s := range connFlagSpecs() {
		defaults[s.Name] = s.Value
		envs[s.Name] = s.EnvVars[0]
		t.Setenv(s.EnvVars[0], "") // restored after the test
		os.Unsetenv(s.EnvVars[0])  // an empty variable would count as set
	}
	paths := make([]string, 0, len(connUsers))
	for p := range connUsers {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, path := range paths {
		for _, name := range connUsers[path] {
			for _, tc := range []struct{ before, after, env, want string }{
				{"", "", "", defaults[name]},
				{"before", "", "", "before"},
				{"", "after", "", "after"},
				{"before", "after", "", "after"},
				{"", "", "env", "env"},
				{"before", "", "env", "before"},
				{"", "after", "env", "after"},
				{"before", "after", "env", "after"},
			} {
				if tc.env != "" {
					t.Setenv(envs[name], tc.env)
				} else {
					os.Unsetenv(envs[name])
				}
				app := newApp()
				app.Writer, app.ErrWriter = io.Discard, io.Discard
				var got *string
				findCommand(t, app, path).Action = func(c *cli.Context) error {
					v := c.String(name)
					got = &v
					return nil
				}
				args := []string{"costpipe"}
				if tc.before != "" {
					args = append(args, "--"+name, tc.before)
				}
				args = append(args, strings.Fields(path)...)
				args = append(args, requiredArgs(findCommand(t, app, path))...)
				if tc.after != "" {
					args = append(args, "--"+name, tc.after)
				}
				if err := app.RunContext(context.Background(), args); err != nil {
					t.Errorf("%v (env %q): %v", args, tc.env, err)
					continue
				}
				if got == nil || *got != tc.want {
					t.Errorf("%v (env %q): %s reads %v, want %q", args, tc.env, path, got, tc.want)
				}
			}
		}
	}
}

// requiredArgs gives each required flag of cmd a placeholder value, so the
// test reaches the command's action (which it replaces) whatever else the
// command requires.
func requiredArgs(cmd *cli.Command) []string {
	var args []string
	for _, f := range cmd.Flags {
		if r, ok := f.(cli.RequiredFlag); ok && r.IsRequired() {
			args = append(args, "--"+f.Names()[0], "x")
		}
	}
	return args
}

// TestConnFlagsInHelp: each command's --help lists its connection flags
// with their environment variables.
func TestConnFlagsInHelp(t *testing.T) {
	t.Parallel()
	envs := map[string]string{}
	for _, s := range connFlagSpecs() {
		envs[s.Name] = s.EnvVars[0]
	}
	for path, names := range connUsers {
		r := run(t, "", nil, append(strings.Fields(path), "--help")...)
		if r.code != 0 {
			t.Fatalf("%s --help: exit %d: %s", path, r.code, r.stderr)
		}
		for _, name := range names {
			if !regexp.MustCompile(`(?m)^\s+--` + name + ` .*\[\$` + envs[name] + `\]$`).MatchString(r.stdout) {
				t.Errorf("%s --help does not list --%s with $%s:\n%s", path, name, envs[name], r.stdout)
			}
		}
	}
}

// TestConnUsersMatchSources keeps connUsers honest: the connection flags a
// command's file reads (c.String("name"), loadCatalog for --prices,
// openQuerier for --clickhouse) are
// the ones connUsers declares for its commands.
func TestConnUsersMatchSources(t *testing.T) {
	t.Parallel()
	files := map[string][]string{
		"aggregate.go": {"aggregate"}, "broker.go": {"broker"}, "demo.go": {"demo"}, "ingest.go": {"ingest"},
		"loadgen.go": {"loadgen"}, "migrate.go": {"migrate"}, "produce.go": {"produce"},
		"dlq.go":   {"dlq read", "dlq replay", "dlq unspool"},
		"query.go": {"query usage"}, "prices.go": {"prices list", "prices cost"},
		"prices_tools.go": {"prices coverage"}, "derive.go": {"derive"}, "serve.go": {"serve"},
		"retention.go": {"retention"}, "reprice.go": {"reprice"}, "alerts_run.go": {"alerts run"},
		"alerts_tools.go": {"alerts backtest", "alerts silence add", "alerts silence list", "alerts silence expire"},
	}
	// Files of helpers every command shares, which read a flag on behalf
	// of the command that calls them.
	shared := map[string]bool{"connflags.go": true, "connsecure.go": true}
	var names []string
	for _, s := range connFlagSpecs() {
		names = append(names, s.Name)
	}
	read := regexp.MustCompile(`c\.String\("(` + strings.Join(names, "|") + `)"\)`)
	// Every file that reads a connection flag is one of files: a command
	// added without its connUsers entry rejects the flag after its name.
	all, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range all {
		if strings.HasSuffix(file, "_test.go") || shared[file] || files[file] != nil {
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if m := read.FindString(string(src)); m != "" {
			t.Errorf("%s reads %s: map it to its commands here and declare them in connUsers", file, m)
		}
	}
	for file, cmds := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var used []string
		for _, m := range read.FindAllStringSubmatch(string(src), -1) {
			used = append(used, m[1])
		}
		if strings.Contains(strings.ReplaceAll(string(src), "func loadCatalog(", ""), "loadCatalog(") {
			used = append(used, "prices")
		}
		if strings.Contains(strings.ReplaceAll(string(src), "func openQuerier(", ""), "openQuerier(") {
			used = append(used, "clickhouse")
		}
		var declared []string
		for _, c := range cmds {
			declared = append(declared, connUsers[c]...)
		}
		slices.Sort(used)
		slices.Sort(declared)
		if used, declared = slices.Compact(used), slices.Compact(declared); !slices.Equal(used, declared) {
			t.Errorf("%s reads %v, connUsers declares %v for %v", file, used, declared, cmds)
		}
	}
}

// TestConnFlagsAfterCommandRun: query usage, migrate and retention use --clickhouse
// given after the command name, over one given before it.
func TestConnFlagsAfterCommandRun(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	const bogus = "clickhouse://127.0.0.1:1/nowhere"
	r := run(t, "", nil, "--clickhouse", bogus, "query", "usage", "--clickhouse", dsn,
		"--from", "2026-01-15T10:00:00Z", "--to", "2026-01-15T11:00:00Z", "--by", "model", "--format", "csv")
	if r.code != 0 || !strings.Contains(r.stdout, "claude-sonnet") {
		t.Errorf("query usage --clickhouse after: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--clickhouse", bogus)
	if r.code == 0 || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("query usage with a bogus --clickhouse after: exit %d, stderr %q", r.code, r.stderr)
	}
	r = run(t, "", nil, "migrate", "--clickhouse", dsn)
	if r.code != 0 {
		t.Errorf("migrate --clickhouse after: exit %d: %s", r.code, r.stderr)
	}
	r = run(t, "", nil, "--clickhouse", bogus, "retention", "--dry-run", "--clickhouse", dsn)
	if r.code != 0 {
		t.Errorf("retention --clickhouse after: exit %d: %s", r.code, r.stderr)
	}
}
