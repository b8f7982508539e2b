// Package deploy holds no code: its test checks the compose files at the
// top of the repository (docker-compose.yml, docker-compose.cluster.yml).
package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// composeFiles are the stacks to check: the single-node one and the
// 2-shard cluster on top of it.
var composeFiles = [][]string{
	{"../docker-compose.yml"},
	{"../docker-compose.yml", "../docker-compose.cluster.yml"},
}

// compose returns the compose command: Debian's docker-compose, or the
// docker CLI plugin.
func compose(t *testing.T) []string {
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	t.Fatal("docker-compose not found: run scripts/install-deps.sh (Debian's docker-compose package)")
	return nil
}

// TestComposeConfig: `docker-compose config -q` accepts both stacks, and
// the merged configuration pins every image tag, binds every published
// port to 127.0.0.1 and takes passwords from secret files.
func TestComposeConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("runs docker-compose: skipped under -short")
	}
	cmd := compose(t)
	for _, files := range composeFiles {
		var args []string
		for _, f := range files {
			args = append(args, "-f", f)
		}
		run := func(extra ...string) string {
			c := exec.Command(cmd[0], append(append(append([]string{}, cmd[1:]...), args...), extra...)...)
			c.Env = append(os.Environ(), "COSTPIPE_SECRETS_DIR=./deploy/secrets")
			out, err := c.CombinedOutput()
			if err != nil {
				t.Fatalf("%s %v: %v\n%s", strings.Join(cmd, " "), append(args, extra...), err, out)
			}
			return string(out)
		}
		run("config", "-q")
		merged := run("config")

		images := regexp.MustCompile(`(?m)^\s+image:\s*(\S+)\s*$`).FindAllStringSubmatch(merged, -1)
		if len(images) == 0 {
			t.Fatalf("%v: no image in\n%s", files, merged)
		}
		pinned := regexp.MustCompile(`^[a-z0-9./-]+:v?[0-9]+(\.[0-9]+)+$`)
		for _, m := range images {
			if strings.HasPrefix(m[1], "costpipe/costpipe:") {
				continue // built from this tree
			}
			if !pinned.MatchString(m[1]) {
				t.Errorf("%v: image %q is not pinned to a version", files, m[1])
			}
		}
		// Published ports: long syntax (compose v2: published and host_ip)
		// or short (docker-compose 1.x: - HOST_IP:PORT:PORT/tcp).
		long, local := strings.Count(merged, "published:"), strings.Count(merged, "host_ip: 127.0.0.1")
		short := regexp.MustCompile(`(?m)^\s+- (\d+\.\d+\.\d+\.\d+:)?\d+:\d+`).FindAllStringSubmatch(merged, -1)
		if long+len(short) == 0 {
			t.Errorf("%v: no published port found in\n%s", files, merged)
		}
		if long != local {
			t.Errorf("%v: %d published ports, %d bound to 127.0.0.1", files, long, local)
		}
		for _, p := range short {
			if p[1] != "127.0.0.1:" {
				t.Errorf("%v: port %q is not bound to 127.0.0.1", files, strings.TrimSpace(p[0]))
			}
		}
		if regexp.MustCompile(`(?im)password:[ \t]*\S`).MatchString(merged) {
			t.Errorf("%v: a password in the environment; use a secret file", files)
		}
		for _, svc := range []string{"redpanda", "clickhouse", "migrate", "aggregate", "ingest", "alerts", "serve", "grafana"} {
			if !regexp.MustCompile(`(?m)^  ` + svc + `:$`).MatchString(merged) {
				t.Errorf("%v: no service %s", files, svc)
			}
		}
	}
}
