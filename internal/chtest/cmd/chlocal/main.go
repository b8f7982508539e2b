// Command chlocal runs a development ClickHouse server in the foreground:
// scripts/clickhouse-local.sh builds and runs it. It finds the server
// binary and writes its configuration as the tests' servers do
// (internal/chtest: chtest.FindBinary, chtest.WriteConfig), then replaces
// itself with the server, so the script's process is the server's.
//
// Settings come from the environment: CLICKHOUSE_DIR (default
// $TMPDIR/costpipe-clickhouse; data persists there between runs),
// CH_TCP_PORT (9000), CH_HTTP_PORT (8123), CH_COMPRESSION (zstd: parts
// compressed with ZSTD instead of LZ4) and CHTEST_CLICKHOUSE_BIN (the server
// binary).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/costpipe/costpipe/internal/chtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "clickhouse-local: "+err.Error())
		os.Exit(1)
	}
}

func run() error {
	dir := os.Getenv("CLICKHOUSE_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "costpipe-clickhouse")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	port := func(env string, def int) (int, error) {
		v := os.Getenv(env)
		if v == "" {
			return def, nil
		}
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return 0, fmt.Errorf("%s=%q: want a port number", env, v)
		}
		return p, nil
	}
	tcp, err := port("CH_TCP_PORT", 9000)
	if err != nil {
		return err
	}
	http, err := port("CH_HTTP_PORT", 8123)
	if err != nil {
		return err
	}
	var zstd bool
	switch c := os.Getenv("CH_COMPRESSION"); c {
	case "", "lz4":
	case "zstd":
		zstd = true
	default:
		return fmt.Errorf("CH_COMPRESSION=%q: want zstd or lz4 (the default)", c)
	}
	bin, err := chtest.FindBinary()
	if err != nil {
		return err
	}
	config, err := chtest.WriteConfig(chtest.Config{Dir: dir, TCPPort: tcp, HTTPPort: http, Major: chtest.BinaryMajor(bin),
		MarkCacheBytes: 256 << 20, LogFiles: 3, ZSTD: zstd, WrittenBy: "scripts/clickhouse-local.sh; rewritten on every run"})
	if err != nil {
		return err
	}
	fmt.Printf("clickhouse: native 127.0.0.1:%d, HTTP 127.0.0.1:%d, data and logs in %s\n", tcp, http, dir)
	fmt.Printf("DSN: clickhouse://127.0.0.1:%d/costpipe\n", tcp)
	if err := os.Chdir(dir); err != nil {
		return err
	}
	path := bin[0]
	args := append(append([]string{filepath.Base(path)}, bin[1:]...), "--config-file="+config)
	env := append(os.Environ(), "CLICKHOUSE_WATCHDOG_ENABLE=0")
	return syscall.Exec(path, args, env)
}
