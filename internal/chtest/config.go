package chtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BinaryEnv names the environment variable that overrides the server
// binary: a path to clickhouse-server, or to the multi-tool clickhouse
// binary (then run as "clickhouse server").
const BinaryEnv = "CHTEST_CLICKHOUSE_BIN"

// installHint is the fix stated when no server binary is found.
const installHint = "run `apt-get install -y clickhouse-server clickhouse-client` " +
	"(Debian/Ubuntu), install ClickHouse from https://clickhouse.com/docs/install, " +
	"or set " + BinaryEnv + " to the server binary"

// FindBinary returns the command that runs the server, without its
// --config-file argument: $CHTEST_CLICKHOUSE_BIN, else the first of
// clickhouse-server, /usr/sbin/clickhouse-server, … and clickhouse server.
func FindBinary() ([]string, error) { return findBinary() }

func findBinary() ([]string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("cannot use %s=%q: %w", BinaryEnv, p, err)
		}
		if filepath.Base(p) == "clickhouse" {
			return []string{p, "server"}, nil
		}
		return []string{p}, nil
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c.name); err == nil {
			if c.multiTool {
				return []string{p, "server"}, nil
			}
			return []string{p}, nil
		}
	}
	return nil, errors.New("clickhouse-server not found: " + installHint)
}

// candidates are the server binaries tried in order. /usr/sbin is often
// missing from a non-root PATH; Debian installs clickhouse-server there.
var candidates = []struct {
	name      string
	multiTool bool // run as "clickhouse server"
}{
	{"clickhouse-server", false},
	{"/usr/sbin/clickhouse-server", false},
	{"/usr/bin/clickhouse-server", false},
	{"clickhouse", true},
	{"/usr/bin/clickhouse", true},
	{"/usr/local/bin/clickhouse", true},
}

var versionRE = regexp.MustCompile(`version (\d+)\.(\d+)`)

// majors caches binaryMajor per binary path: running the binary costs a few
// hundred milliseconds.
var majors struct {
	mu sync.Mutex
	m  map[string]int
}

// BinaryMajor returns the server's major version from `--version`, or 0
// when the binary does not understand the flag (18.x and older do not).
func BinaryMajor(bin []string) int { return binaryMajor(bin) }

func binaryMajor(bin []string) int {
	majors.mu.Lock()
	defer majors.mu.Unlock()
	if major, ok := majors.m[bin[0]]; ok {
		return major
	}
	if majors.m == nil {
		majors.m = map[string]int{}
	}
	major := runVersion(bin)
	majors.m[bin[0]] = major
	return major
}

func runVersion(bin []string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := append(append([]string{}, bin[1:]...), "--version")
	out, err := exec.CommandContext(ctx, bin[0], args...).CombinedOutput()
	if err != nil {
		return 0
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return 0
	}
	major, _ := strconv.Atoi(string(m[1]))
	return major
}

// Config is the configuration of a server WriteConfig writes: the test
// servers' (writeConfig) and the development server's of
// scripts/clickhouse-local.sh (cmd/chlocal), from one template.
type Config struct {
	// Dir holds the data, logs and the configuration files.
	Dir string
	// TCPPort and HTTPPort are the native and HTTP ports on 127.0.0.1.
	TCPPort, HTTPPort int
	// Major is the server's major version, 0 when unknown (assumed old).
	Major int
	// Timezone is the server's time zone. Default "UTC".
	Timezone string
	// MarkCacheBytes is mark_cache_size. Default 64 MiB.
	MarkCacheBytes int64
	// LogFiles is how many 100 MB server logs are kept. Default 1.
	LogFiles int
	// ZSTD compresses every part with ZSTD instead of LZ4 (server-wide:
	// 18.16 has no per-column CODEC). Default false.
	ZSTD bool
	// WrittenBy names the writer in the files' first comment.
	WrittenBy string
}

// writeConfig writes a test server's config.xml and users.xml (WriteConfig).
func writeConfig(dir string, tcpPort, httpPort, major int, timezone string) (string, error) {
	return WriteConfig(Config{Dir: dir, TCPPort: tcpPort, HTTPPort: httpPort, Major: major, Timezone: timezone,
		WrittenBy: "internal/chtest for one test server"})
}

// WriteConfig creates c.Dir's subdirectories and writes config.xml and
// users.xml into it; it returns the path of config.xml.
func WriteConfig(c Config) (string, error) {
	dir := c.Dir
	if c.Timezone == "" {
		c.Timezone = "UTC"
	}
	if c.MarkCacheBytes == 0 {
		c.MarkCacheBytes = 64 << 20
	}
	if c.LogFiles == 0 {
		c.LogFiles = 1
	}
	for _, sub := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return "", fmt.Errorf("cannot create %q: %w", filepath.Join(dir, sub), err)
		}
	}
	var extra strings.Builder
	if c.Major >= 20 {
		// Unknown on 18.x (ignored there); bounds a runaway test query.
		extra.WriteString("  <max_server_memory_usage>4294967296</max_server_memory_usage>\n")
	}
	if c.ZSTD {
		extra.WriteString("  <compression><case><min_part_size>0</min_part_size><min_part_size_ratio>0</min_part_size_ratio><method>zstd</method></case></compression>\n")
	}
	config := fmt.Sprintf(`<?xml version="1.0"?>
<!-- Written by %[6]s. -->
<yandex>
  <logger>
    <level>information</level>
    <log>%[1]s/log/server.log</log>
    <errorlog>%[1]s/log/server.err.log</errorlog>
    <size>100M</size>
    <count>%[7]d</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>%[2]d</tcp_port>
  <http_port>%[3]d</http_port>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <format_schema_path>%[1]s/format_schemas/</format_schema_path>
  <users_config>%[1]s/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>%[5]s</timezone>
  <mark_cache_size>%[8]d</mark_cache_size>
  <uncompressed_cache_size>0</uncompressed_cache_size>
  <max_concurrent_queries>64</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
%[4]s</yandex>
`, dir, c.TCPPort, c.HTTPPort, extra.String(), c.Timezone, c.WrittenBy, c.LogFiles, c.MarkCacheBytes)

	var profile strings.Builder
	// Idle native connections check for shutdown every poll_interval
	// seconds (default 10), which a graceful stop waits out.
	profile.WriteString("      <poll_interval>1</poll_interval>\n")
	if c.Major < 19 {
		// LowCardinality is experimental before 19.x; newer servers
		// know the setting only as obsolete.
		profile.WriteString("      <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>\n")
	}
	users := fmt.Sprintf(`<?xml version="1.0"?>
<!-- Written by %s. -->
<yandex>
  <profiles>
    <default>
%s    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default></default>
  </quotas>
</yandex>
`, c.WrittenBy, profile.String())

	configPath := filepath.Join(dir, "config.xml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return "", fmt.Errorf("cannot write %q: %w", configPath, err)
	}
	usersPath := filepath.Join(dir, "users.xml")
	if err := os.WriteFile(usersPath, []byte(users), 0o644); err != nil {
		return "", fmt.Errorf("cannot write %q: %w", usersPath, err)
	}
	return configPath, nil
}
