package chtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/childproc"
)

// ClusterOptions shape a local ClickHouse cluster of StartCluster.
type ClusterOptions struct {
	// Name is the cluster's name in <remote_servers>; default "costpipe".
	Name string
	// Shards and Replicas per shard; default 1 and 1. One shard with two
	// replicas and two shards with one replica each are what the project's
	// tests run.
	Shards, Replicas int
}

// Cluster is a local ClickHouse cluster: one ZooKeeper process and
// Shards×Replicas clickhouse-server processes on 127.0.0.1, each in a
// directory of its own, with
//
//   - <remote_servers> naming every member under the cluster's Name,
//     internal_replication on;
//   - macros {cluster}, {shard} ("01", "02", …) and {replica} (unique across
//     the cluster: "s01r01", "s01r02", …), so one DDL text with
//     ON CLUSTER creates every replica;
//   - <distributed_ddl> at /clickhouse/task_queue/ddl and an interserver
//     HTTP port, so replicas fetch each other's parts.
//
// Its servers are ordinary Servers: Stop, Restart and Kill one to simulate a
// lost replica.
type Cluster struct {
	Name string
	// Shards holds the servers by shard, then replica.
	Shards    [][]*Server
	ZooKeeper *ZooKeeper
}

// Servers returns every member, shard by shard.
func (c *Cluster) Servers() []*Server {
	var out []*Server
	for _, sh := range c.Shards {
		out = append(out, sh...)
	}
	return out
}

// DSN is the DSN of database on the first member (any member answers
// queries over the Distributed tables and runs ON CLUSTER DDL).
func (c *Cluster) DSN(database string) string { return c.Shards[0][0].DSN(database) }

// StartCluster starts ZooKeeper and the cluster's servers and registers a
// t.Cleanup that stops them and removes their directories. It returns once
// every server answers and sees ZooKeeper. It fails the test, saying what to
// install, when Debian's zookeeper package or Java is missing; under
// go test -short it skips the test.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	skipShort(t)
	if o.Name == "" {
		o.Name = "costpipe"
	}
	if o.Shards <= 0 {
		o.Shards = 1
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	zk, err := startZooKeeper()
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	c := &Cluster{Name: o.Name, ZooKeeper: zk}
	t.Cleanup(func() {
		for _, s := range c.Servers() {
			if t.Failed() {
				t.Logf("chtest: log tail of cluster member %s (%s):\n%s", s.TCPAddr, s.Dir, s.LogTail(20))
			}
			s.destroy()
		}
		zk.destroy()
	})

	// Every member's config names every other member: choose all ports first.
	n := o.Shards * o.Replicas
	all, err := freePorts(4 * n)
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	ports := func(shard, replica int) []int {
		i := shard*o.Replicas + replica
		return all[4*i : 4*i+4]
	}
	var remote strings.Builder
	for sh := range o.Shards {
		remote.WriteString("      <shard>\n        <internal_replication>true</internal_replication>\n")
		for r := range o.Replicas {
			fmt.Fprintf(&remote, "        <replica><host>127.0.0.1</host><port>%d</port></replica>\n", ports(sh, r)[0])
		}
		remote.WriteString("      </shard>\n")
	}

	c.Shards = make([][]*Server, o.Shards)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for sh := range o.Shards {
		c.Shards[sh] = make([]*Server, o.Replicas)
		for r := range o.Replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := ports(sh, r)
				xml := fmt.Sprintf(`<?xml version="1.0"?>
<!-- Written by internal/chtest: member s%02dr%02d of cluster %s. -->
<yandex>
  <zookeeper>
    <node><host>127.0.0.1</host><port>%d</port></node>
    <session_timeout_ms>30000</session_timeout_ms>
  </zookeeper>
  <remote_servers>
    <%s>
%s    </%s>
  </remote_servers>
  <macros>
    <cluster>%s</cluster>
    <shard>%02d</shard>
    <replica>s%02dr%02d</replica>
  </macros>
  <distributed_ddl>
    <path>/clickhouse/task_queue/ddl</path>
  </distributed_ddl>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <interserver_http_port>%d</interserver_http_port>
</yandex>
`, sh+1, r+1, o.Name, zk.Port, o.Name, remote.String(), o.Name, o.Name, sh+1, sh+1, r+1, p[3])
				s, err := start(Options{ports: p, configD: map[string]string{"cluster.xml": xml}})
				if err != nil {
					errs[sh*o.Replicas+r] = fmt.Errorf("member s%02dr%02d: %w", sh+1, r+1, err)
					return
				}
				c.Shards[sh][r] = s
			}()
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("chtest: cannot start cluster %s: %v", o.Name, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	for _, s := range c.Servers() {
		if err := s.waitZooKeeper(ctx); err != nil {
			t.Fatalf("chtest: cluster member %s does not reach ZooKeeper on %s: %v", s.TCPAddr, zk.Addr, err)
		}
	}
	return c
}

// waitZooKeeper polls until the server can read ZooKeeper's root.
func (s *Server) waitZooKeeper(ctx context.Context) error {
	conn, err := s.open("default")
	if err != nil {
		return err
	}
	defer conn.Close()
	for {
		var n uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/'").Scan(&n)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ZooKeeperJarEnv names the environment variable that overrides the
// ZooKeeper jar (default Debian's /usr/share/java/zookeeper.jar, whose
// manifest names the jars it needs).
const ZooKeeperJarEnv = "CHTEST_ZOOKEEPER_JAR"

const zkInstallHint = "run `apt-get install -y zookeeper` (Debian/Ubuntu; it brings Java), or set " +
	ZooKeeperJarEnv + " to a zookeeper jar whose manifest lists its dependencies"

// ZooKeeper is a private standalone ZooKeeper server process.
type ZooKeeper struct {
	// Addr is "127.0.0.1:PORT"; Port its port.
	Addr string
	Port int
	Dir  string

	mu   sync.Mutex
	proc *process
}

func startZooKeeper() (*ZooKeeper, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, errors.New("java not found: " + zkInstallHint)
	}
	jar := os.Getenv(ZooKeeperJarEnv)
	if jar == "" {
		jar = "/usr/share/java/zookeeper.jar"
	}
	if _, err := os.Stat(jar); err != nil {
		return nil, fmt.Errorf("zookeeper jar: %w: %s", err, zkInstallHint)
	}
	sweepStaleDirs()
	dir, err := os.MkdirTemp(baseDir(), dirPrefix+"zk-")
	if err != nil {
		return nil, fmt.Errorf("cannot create a ZooKeeper directory: %w", err)
	}
	if err := claim(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		release(dir)
		return nil, err
	}
	zk := &ZooKeeper{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), Port: ports[0], Dir: dir}
	logf, err := os.Create(filepath.Join(dir, "zookeeper.log"))
	if err != nil {
		release(dir)
		return nil, err
	}
	defer logf.Close()
	// C1 only (TieredStopAtLevel=1): a test's ZooKeeper serves a few
	// thousand requests, which do not repay C2's compile threads.
	cmd := exec.Command(java, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Dzookeeper.admin.enableServer=false", "-Dzookeeper.jmx.log4j.disable=true",
		"-cp", jar, "org.apache.zookeeper.server.ZooKeeperServerMain",
		strconv.Itoa(zk.Port), filepath.Join(dir, "data"))
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
	cmd.SysProcAttr = childproc.Group(syscall.SIGKILL) // as the servers'
	p, err := startProcess(cmd)
	if err != nil {
		release(dir)
		return nil, fmt.Errorf("cannot run ZooKeeper: %w", err)
	}
	zk.proc = p
	// Ready when it grants a session: ClickHouse 18.16's DDL worker crashes
	// the server if its first session fails, so servers must not start
	// before.
	deadline := time.Now().Add(startTimeout)
	for {
		if zk.serving() {
			return zk, nil
		}
		select {
		case <-p.done:
			out, _ := os.ReadFile(filepath.Join(dir, "zookeeper.log"))
			zk.destroy()
			return nil, fmt.Errorf("ZooKeeper exited while starting: %v\n%s", p.err, tail(string(out), 20))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			zk.destroy()
			return nil, fmt.Errorf("ZooKeeper on %s did not listen within %s", zk.Addr, startTimeout)
		}
	}
}

// serving reports whether ZooKeeper completes a session handshake: a
// ConnectRequest answered by a ConnectResponse. (It answers "ruok" before it
// serves sessions, and closes connections until then.)
func (zk *ZooKeeper) serving() bool {
	c, err := net.DialTimeout("tcp", zk.Addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	// protocolVersion int32, lastZxidSeen int64, timeOut int32,
	// sessionId int64, passwd (int32 length + 16 bytes), readOnly bool.
	req := make([]byte, 4+4+8+4+8+4+16+1)
	binary.BigEndian.PutUint32(req[0:], uint32(len(req)-4))
	binary.BigEndian.PutUint32(req[16:], 10000)
	binary.BigEndian.PutUint32(req[28:], 16)
	if _, err := c.Write(req); err != nil {
		return false
	}
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return false
	}
	// protocolVersion, timeOut, sessionId, passwd: a session was granted.
	return binary.BigEndian.Uint32(n[:]) >= 4+4+8+4
}

func (zk *ZooKeeper) destroy() {
	zk.mu.Lock()
	if zk.proc != nil {
		killGroup(zk.proc)
	}
	zk.mu.Unlock()
	release(zk.Dir)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
