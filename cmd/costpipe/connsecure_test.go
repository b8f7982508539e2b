package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestSecureFlagsBothPositions: every command that reads --brokers or
// --clickhouse takes their TLS and SASL flags before or after its name and
// from the environment, with the same precedence as the other connection
// flags, booleans included.
func TestSecureFlagsBothPositions(t *testing.T) {
	envs := map[string]string{}
	isBool := map[string]bool{}
	for _, s := range secureStringFlagSpecs() {
		envs[s.Name] = s.EnvVars[0]
	}
	for _, s := range secureBoolFlagSpecs() {
		envs[s.Name], isBool[s.Name] = s.EnvVars[0], true
	}
	for _, env := range envs {
		t.Setenv(env, "")
		os.Unsetenv(env)
	}
	var paths []string
	for p := range connUsers {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	checked := 0
	for _, path := range paths {
		for _, name := range connFlagNames(path) {
			env, ok := envs[name]
			if !ok {
				continue // not a TLS or SASL flag
			}
			checked++
			cases := []struct{ before, after, env, want string }{
				{"", "", "", ""}, {"before", "", "", "before"}, {"", "after", "", "after"},
				{"before", "after", "", "after"}, {"", "", "env", "env"}, {"before", "", "env", "before"},
			}
			if isBool[name] {
				cases = []struct{ before, after, env, want string }{
					{"", "", "", "false"}, {"true", "", "", "true"}, {"", "true", "", "true"},
					{"true", "false", "", "false"}, {"", "", "true", "true"}, {"false", "", "true", "false"},
				}
			}
			for _, tc := range cases {
				if tc.env != "" {
					t.Setenv(env, tc.env)
				} else {
					os.Unsetenv(env)
				}
				app := newApp()
				app.Writer, app.ErrWriter = io.Discard, io.Discard
				var got *string
				findCommand(t, app, path).Action = func(c *cli.Context) error {
					v := c.String(name)
					if isBool[name] {
						v = strconv.FormatBool(c.Bool(name))
					}
					got = &v
					return nil
				}
				flagArg := func(v string) []string {
					if isBool[name] {
						return []string{"--" + name + "=" + v}
					}
					return []string{"--" + name, v}
				}
				args := []string{"costpipe"}
				if tc.before != "" {
					args = append(args, flagArg(tc.before)...)
				}
				args = append(args, strings.Fields(path)...)
				args = append(args, requiredArgs(findCommand(t, app, path))...)
				if tc.after != "" {
					args = append(args, flagArg(tc.after)...)
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
	if checked == 0 {
		t.Fatal("no command takes a TLS or SASL flag")
	}
}

// TestSecureFlagsInHelp: the Kafka commands list the Kafka TLS and SASL
// flags, the ClickHouse commands ClickHouse's, each with its variable.
func TestSecureFlagsInHelp(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"aggregate", "produce", "ingest", "loadgen", "alerts run", "query usage", "migrate", "serve"} {
		r := run(t, "", nil, append(strings.Fields(path), "--help")...)
		if r.code != 0 {
			t.Fatalf("%s --help: exit %d: %s", path, r.code, r.stderr)
		}
		for _, name := range connFlagNames(path) {
			if !regexp.MustCompile(`(?m)^\s+--` + name + `\b.*\[\$COSTPIPE_[A-Z_]+\]$`).MatchString(r.stdout) {
				t.Errorf("%s --help does not list --%s with its variable", path, name)
			}
		}
	}
	r := run(t, "", nil, "produce", "--help")
	if !strings.Contains(r.stdout, "--kafka-sasl-password-file") || !strings.Contains(r.stdout, "$"+kafkaPasswordEnv) {
		t.Errorf("produce --help does not say where the password comes from:\n%s", r.stdout)
	}
}

func TestKafkaSecurityPassword(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	os.WriteFile(file, []byte("s3cret\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, tc := range []struct {
		args          []string
		env, want, er string
	}{
		{args: []string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u", "--kafka-sasl-password-file", file}, want: "s3cret"},
		{args: []string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u"}, env: "fromenv", want: "fromenv"},
		{args: []string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u", "--kafka-sasl-password-file", file}, env: "x",
			er: "both --kafka-sasl-password-file and $COSTPIPE_KAFKA_SASL_PASSWORD are set"},
		{args: []string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u", "--kafka-sasl-password-file", empty}, er: "is empty"},
		{args: []string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u"}, er: "needs a password"},
		{args: []string{"--kafka-sasl-mechanism", "OAUTHBEARER", "--kafka-sasl-username", "u"}, env: "p", er: `unknown SASL mechanism "OAUTHBEARER"`},
	} {
		if tc.env != "" {
			t.Setenv(kafkaPasswordEnv, tc.env)
		} else {
			t.Setenv(kafkaPasswordEnv, "")
			os.Unsetenv(kafkaPasswordEnv)
		}
		app := newApp()
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		var got string
		var err error
		findCommand(t, app, "produce").Action = func(c *cli.Context) error {
			k, e := kafkaSecurity(c)
			got, err = k.SASL.Password, e
			return nil
		}
		if e := app.RunContext(context.Background(), append([]string{"costpipe", "produce"}, tc.args...)); e != nil {
			t.Fatal(e)
		}
		switch {
		case tc.er != "" && (err == nil || !strings.Contains(err.Error(), tc.er)):
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.er)
		case tc.er == "" && (err != nil || got != tc.want):
			t.Errorf("%v: password %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
}

func TestDSNWithPassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ dsn, want string }{
		{"clickhouse://127.0.0.1:9440/costpipe?secure=true", "clickhouse://default:p%40ss@127.0.0.1:9440/costpipe?secure=true"},
		{"clickhouse://reader:old@ch:9000/costpipe", "clickhouse://reader:p%40ss@ch:9000/costpipe"},
	} {
		got, err := dsnWithPassword(tc.dsn, "p@ss")
		if err != nil || got != tc.want {
			t.Errorf("dsnWithPassword(%q) = %q, %v; want %q", tc.dsn, got, err, tc.want)
		}
	}
	if _, err := dsnWithPassword("not a url", "p"); err == nil {
		t.Error("a DSN without a host: no error")
	}
}
