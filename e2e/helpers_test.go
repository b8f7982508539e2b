package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/costpipe/costpipe/consumers"
	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/schemas"
	"github.com/costpipe/costpipe/warehouse"
)

// binPath is the costpipe binary built by TestMain.
var binPath string

const binDirPrefix = "costpipe-e2e-"

// TestMain builds the costpipe binary once (not under -short, where every
// test skips; with the race detector when COSTPIPE_E2E_RACE is set), then runs the tests through chtest.Main, which owns the
// shared ClickHouse server and exits. Because chtest.Main exits, the binary's
// directory is removed by the next run (sweepStaleBinaries), not by this one.
//
// The tests spend most of their time waiting (for a dead group member's
// session to expire, for ClickHouse to come back), so unless -test.parallel
// is given they run at least 4 at a time rather than GOMAXPROCS.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if p := flag.Lookup("test.parallel"); p != nil && !explicit {
		if n, err := strconv.Atoi(p.Value.String()); err == nil && n < 4 {
			p.Value.Set("4")
		}
	}
	if !testing.Short() {
		sweepStaleBinaries()
		dir, err := os.MkdirTemp("", binDirPrefix)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
		binPath = filepath.Join(dir, "costpipe")
		start := time.Now()
		args := []string{"build", "-o", binPath}
		if os.Getenv("COSTPIPE_E2E_RACE") != "" {
			args = append(args, "-race") // aggregators report data races on stderr and exit 66
		} else if b := os.Getenv("COSTPIPE_TEST_BIN"); b != "" {
			binPath = b // built once by make test for this package and cmd/costpipe
		}
		if binPath != os.Getenv("COSTPIPE_TEST_BIN") {
			out, err := exec.Command("go", append(args, "github.com/costpipe/costpipe/cmd/costpipe")...).CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "cannot build costpipe: %v\n%s", err, out)
				os.RemoveAll(dir)
				os.Exit(1)
			}
		}
		if testing.Verbose() {
			fmt.Fprintf(os.Stderr, "e2e: built %s in %s\n", binPath, time.Since(start).Round(time.Millisecond))
		}
		// The aggregators' default spool directory is relative to the
		// working directory: keep it out of the source tree.
		os.Setenv("COSTPIPE_DLQ_SPOOL", filepath.Join(dir, "dlq-spool"))
	}
	chtest.Main(m)
}

// sweepStaleBinaries removes binary directories of test binaries that have
// exited.
func sweepStaleBinaries() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

// ---------------------------------------------------------------------------
// Aggregator processes

// aggregator is one `costpipe aggregate` process.
type aggregator struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	started time.Time
	metrics string // host:port of /metrics
	addr    chan string

	mu    sync.Mutex
	lines []string
	done  chan struct{}
	state *os.ProcessState
}

// startAggregator runs `costpipe aggregate` with the given flags plus
// --metrics-listen 127.0.0.1:0 and returns once it serves metrics (it has
// migrated the database and is about to join the group). Its stderr goes to
// the test log when the test fails; it is SIGKILLed at the end of the test if
// still running.
func startAggregator(t *testing.T, name, brokers, dsn, group string, extra ...string) *aggregator {
	t.Helper()
	a, err := spawnAggregator(t, name, brokers, dsn, group, extra...)
	if err == nil {
		err = a.ready()
	}
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// spawnAggregator starts the process without waiting for it; ready waits.
// Safe to call from any goroutine.
func spawnAggregator(t *testing.T, name, brokers, dsn, group string, extra ...string) (*aggregator, error) {
	level := os.Getenv("COSTPIPE_E2E_LOG_LEVEL")
	if level == "" {
		level = "info"
	}
	args := []string{"--brokers", brokers, "--clickhouse", dsn, "--log-level", level, "aggregate",
		"--group", group, "--metrics-listen", "127.0.0.1:0"}
	args = append(args, extra...)
	a := &aggregator{t: t, name: name, cmd: exec.Command(binPath, args...), done: make(chan struct{}), addr: make(chan string, 1)}
	a.cmd.SysProcAttr = sysProcAttr()
	stderr, err := a.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	a.cmd.Stdout = io.Discard
	// The child gets SIGKILL when the thread that started it exits
	// (Pdeathsig), and Go ends a thread whose goroutine exits locked to it,
	// as chtest's server goroutines do when a server stops. So start the
	// child from a goroutine locked to its thread until the child is reaped.
	readDone := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := a.cmd.Start(); err != nil {
			started <- err
			return
		}
		a.started = time.Now()
		started <- nil
		<-readDone
		a.cmd.Wait() // after reading everything: Wait closes the pipe
		a.mu.Lock()
		a.state = a.cmd.ProcessState
		a.mu.Unlock()
		close(a.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("cannot start aggregator %s: %w", name, err)
	}
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.Index(line, `msg="serving metrics" addr=`); i >= 0 {
				f := strings.Fields(line[i+len(`msg="serving metrics" addr=`):])
				if len(f) > 0 {
					select {
					case a.addr <- strings.TrimSuffix(f[0], "/metrics"):
					default:
					}
				}
			}
			a.mu.Lock()
			a.lines = append(a.lines, fmt.Sprintf("%6.2fs %s", time.Since(a.started).Seconds(), line))
			a.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		if a.running() && t.Failed() {
			// Go dumps every goroutine's stack on SIGQUIT: show where it is.
			a.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-a.done:
			case <-time.After(5 * time.Second):
			}
		}
		if a.running() {
			a.cmd.Process.Signal(syscall.SIGKILL)
			<-a.done
		}
		if a.logContains("WARNING: DATA RACE") {
			t.Errorf("aggregator %s reported a data race", a.name)
		}
		if t.Failed() {
			t.Logf("--- stderr of aggregator %s (pid %d, %s):\n%s", a.name, a.cmd.Process.Pid, a.exitString(), a.log(2000))
		}
	})
	return a, nil
}

// ready waits until the aggregator serves metrics.
func (a *aggregator) ready() error {
	select {
	case a.metrics = <-a.addr:
		return nil
	case <-a.done:
		return fmt.Errorf("aggregator %s exited before serving metrics (%s):\n%s", a.name, a.exitString(), a.log(100))
	case <-time.After(60 * time.Second):
		return fmt.Errorf("aggregator %s did not serve metrics within 60s:\n%s", a.name, a.log(100))
	}
}

func (a *aggregator) running() bool {
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

func (a *aggregator) exitString() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state == nil {
		return "running"
	}
	return a.state.String()
}

// log returns the last n lines of the aggregator's stderr.
func (a *aggregator) log(n int) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.lines
	skipped := 0
	if len(l) > n {
		skipped = len(l) - n
		l = l[skipped:]
	}
	var b strings.Builder
	if skipped > 0 {
		fmt.Fprintf(&b, "[... %d earlier lines ...]\n", skipped)
	}
	for _, s := range l {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}

// logContains reports whether some stderr line contains s.
func (a *aggregator) logContains(s string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range a.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// kill SIGKILLs the aggregator, as a crash would, and waits for it to exit.
func (a *aggregator) kill() {
	a.t.Helper()
	a.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		a.t.Fatalf("aggregator %s did not die on SIGKILL", a.name)
	}
}

// term sends SIGTERM and returns the exit code; it fails the test if the
// aggregator does not exit within timeout.
func (a *aggregator) term(timeout time.Duration) int {
	a.t.Helper()
	start := time.Now()
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(timeout):
		a.t.Fatalf("aggregator %s did not exit within %s of SIGTERM", a.name, timeout)
	}
	a.t.Logf("aggregator %s exited %s after SIGTERM (%s)", a.name, time.Since(start).Round(time.Millisecond), a.exitString())
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state.ExitCode()
}

// mustTerm sends SIGTERM and fails the test unless the exit code is 0.
func (a *aggregator) mustTerm() {
	a.t.Helper()
	if code := a.term(45 * time.Second); code != 0 {
		a.t.Errorf("aggregator %s exited %d after SIGTERM, want 0", a.name, code)
	}
}

// metric returns the sum of every series of the named metric, or -1 when
// the aggregator cannot be scraped.
func (a *aggregator) metric(name string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.metrics+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name) || len(line) == len(name) || (line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// waitFor polls cond every 100ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Producing

type pos struct {
	p   int32
	off int64
}

// producer produces events over TCP with franz-go and keeps the truth: the
// unique valid events, the positions of the invalid records and the records
// that can be duplicated.
type producer struct {
	t       *testing.T
	brokers string
	cl      *kgo.Client
	rng     *rand.Rand
	prefix  string

	mu         sync.Mutex
	n          int              // events generated (ids)
	valid      []schemas.Event  // unique valid events: the truth
	records    []*kgo.Record    // produced records of valid events, in order
	invalid    map[pos]string   // position → kind of every invalid record
	dups       int              // exact duplicates produced
	validPos   map[pos]struct{} // positions of records of valid events and duplicates
	invalidSeq int
}

func newProducer(t *testing.T, brokers, prefix string, seed uint64) *producer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic(schemas.DefaultTopic),
		kgo.ProducerLinger(2*time.Millisecond), kgo.RecordRetries(math.MaxInt32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &producer{t: t, brokers: brokers, cl: cl, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), prefix: prefix,
		invalid: map[pos]string{}, validPos: map[pos]struct{}{}}
}

var (
	tenants = []string{"acme", "globex", "initech", "umbrella"}
	apps    = []string{"", "chat", "search"}
	models  = []struct{ provider, model string }{
		{"openai", "gpt-4o"}, {"openai", "gpt-4o-mini"}, {"anthropic", "claude-sonnet-4-5"},
		{"google", "gemini-2.5-pro"}, {"selfhosted", "llama-3-70b"}, // the last is unpriced
	}
)

// event generates a valid event at ts.
func (pr *producer) event(ts time.Time) schemas.Event {
	pr.n++
	rng := pr.rng
	m := models[rng.IntN(len(models))]
	in := rng.Int64N(300_000) // gemini-2.5-pro is tiered above 200k
	cached := rng.Int64N(in/2 + 1)
	out := rng.Int64N(4000)
	ev := schemas.Event{
		EventID: fmt.Sprintf("%s-%06d", pr.prefix, pr.n), Timestamp: ts.UTC().Truncate(time.Millisecond),
		Tenant: tenants[rng.IntN(len(tenants))], Application: apps[rng.IntN(len(apps))],
		Provider: m.provider, Model: m.model, Status: schemas.StatusOK,
		InputTokens: in, CachedInputTokens: cached, OutputTokens: out, ReasoningTokens: rng.Int64N(out/3 + 1),
		LatencyMs: float64(rng.IntN(20000)) / 4, HasLatency: true,
	}
	if m.provider == "anthropic" {
		ev.CacheWriteTokens = rng.Int64N(in - cached + 1)
	}
	if rng.IntN(3) == 0 {
		ev.TTFTMs, ev.HasTTFT = float64(rng.IntN(4000))/2, true
	}
	if m.provider == "selfhosted" {
		ev.GPUMs = float64(rng.IntN(100000)) / 8
	}
	if rng.IntN(20) == 0 {
		ev.Status = schemas.StatusError
		ev.ErrorType = []string{"rate_limit", "timeout", ""}[rng.IntN(3)]
	}
	return ev
}

func jsonRecord(ev *schemas.Event) *kgo.Record {
	return &kgo.Record{Key: ev.Key(), Value: schemas.AppendJSON(nil, ev),
		Headers: []kgo.RecordHeader{{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeJSON)}}}
}

// invalidRecord returns a record that must go to the DLQ, of a rotating kind.
func (pr *producer) invalidRecord(now time.Time) (*kgo.Record, string) {
	pr.invalidSeq++
	i := pr.invalidSeq
	key := []byte(tenants[i%len(tenants)] + "\x00" + models[i%len(models)].model)
	switch i % 7 {
	case 0:
		return &kgo.Record{Key: key, Value: []byte(fmt.Sprintf(`{"event_id":"bad-%d","timestamp":`, i))}, "malformed_json"
	case 1:
		return &kgo.Record{Key: key, Value: []byte(fmt.Sprintf(`{"event_id":"bad-%d","timestamp":%q,"tenant":"acme","provider":"openai","model":"gpt-4o","status":"ok","output_tokens":2,"reasoning_tokens":3}`,
			i, now.UTC().Format(time.RFC3339)))}, "reasoning_gt_output"
	case 2:
		ev := pr.event(now.Add(-8 * 24 * time.Hour))
		ev.EventID = fmt.Sprintf("old-%d", i)
		return jsonRecord(&ev), "too_old"
	case 3:
		ev := pr.event(now.Add(2 * time.Hour))
		ev.EventID = fmt.Sprintf("future-%d", i)
		return jsonRecord(&ev), "too_far_in_future"
	case 4:
		return &kgo.Record{Key: key, Value: []byte("hello"),
			Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("text/plain")}}}, "unsupported_content"
	case 5:
		return &kgo.Record{Key: key, Value: []byte("\xff\xff\xff\xffnot arrow"),
			Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(schemas.ContentTypeArrow)}}}, "bad_arrow"
	default:
		return &kgo.Record{Key: key, Value: []byte(fmt.Sprintf(`{"event_id":"bad-%d","timestamp":%q,"provider":"openai","model":"gpt-4o","status":"ok"}`,
			i, now.UTC().Format(time.RFC3339)))}, "missing_tenant"
	}
}

// wave produces n new valid events with timestamps up to spread before now,
// about dupPct% exact duplicates of earlier records (chosen among the first
// dupFrom records, all when dupFrom ≤ 0) and invalid invalid records, in
// one ProduceSync, shuffled. Safe to call from one goroutine at a time; it
// reports errors with t.Errorf and returns false.
func (pr *producer) wave(n int, spread time.Duration, dupPct float64, dupFrom, invalid int) bool {
	now := time.Now()
	pr.mu.Lock()
	type item struct {
		r       *kgo.Record
		ev      *schemas.Event
		kind    string
		isDup   bool
		invalid bool
	}
	var items []item
	for range n {
		ev := pr.event(now.Add(-time.Duration(pr.rng.Int64N(int64(spread)))))
		items = append(items, item{r: jsonRecord(&ev), ev: &ev})
	}
	pool := len(pr.records)
	if dupFrom > 0 && dupFrom < pool {
		pool = dupFrom
	}
	ndup := int(float64(n)*dupPct/100 + pr.rng.Float64())
	for range ndup {
		if pool == 0 {
			break
		}
		orig := pr.records[pr.rng.IntN(pool)]
		items = append(items, item{r: &kgo.Record{Key: orig.Key, Value: orig.Value, Headers: orig.Headers}, isDup: true})
	}
	for range invalid {
		r, kind := pr.invalidRecord(now)
		items = append(items, item{r: r, kind: kind, invalid: true})
	}
	pr.rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	pr.mu.Unlock()

	recs := make([]*kgo.Record, len(items))
	for i := range items {
		recs[i] = items[i].r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pr.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		pr.t.Errorf("produce: %v", err)
		return false
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for _, it := range items {
		ps := pos{it.r.Partition, it.r.Offset}
		switch {
		case it.invalid:
			pr.invalid[ps] = it.kind
		case it.isDup:
			pr.dups++
			pr.validPos[ps] = struct{}{}
		default:
			pr.valid = append(pr.valid, *it.ev)
			pr.records = append(pr.records, it.r)
			pr.validPos[ps] = struct{}{}
		}
	}
	return true
}

// duplicates produces k exact duplicates of records chosen among the first
// from valid records.
func (pr *producer) duplicates(k, from int) {
	pr.t.Helper()
	pr.mu.Lock()
	from = min(from, len(pr.records))
	recs := make([]*kgo.Record, 0, k)
	for range k {
		orig := pr.records[pr.rng.IntN(from)]
		recs = append(recs, &kgo.Record{Key: orig.Key, Value: orig.Value, Headers: orig.Headers})
	}
	pr.mu.Unlock()
	if err := pr.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		pr.t.Errorf("produce duplicates: %v", err)
		return
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.dups += len(recs)
	for _, r := range recs {
		pr.validPos[pos{r.Partition, r.Offset}] = struct{}{}
	}
}

// recordCount is the number of records produced so far (valid, duplicate
// and invalid; kcat's included).
func (pr *producer) recordCount() int {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return len(pr.valid) + pr.dups + len(pr.invalid)
}

// produceEvents produces the given valid events (each once) and adds them to
// the truth.
func (pr *producer) produceEvents(evs ...schemas.Event) {
	pr.t.Helper()
	recs := make([]*kgo.Record, len(evs))
	for i := range evs {
		recs[i] = jsonRecord(&evs[i])
	}
	if err := pr.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		pr.t.Fatalf("produce: %v", err)
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for i := range evs {
		pr.valid = append(pr.valid, evs[i])
		pr.records = append(pr.records, recs[i])
		pr.validPos[pos{recs[i].Partition, recs[i].Offset}] = struct{}{}
	}
}

// kcatEvents produces n new valid events through librdkafka's kcat (keyed,
// Java-compatible murmur2 partitioning, content-type header) and adds them
// to the truth. They are never duplicated.
func (pr *producer) kcatEvents(n int, spread time.Duration) {
	pr.t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		pr.t.Logf("kcat not installed; producing the kcat slice with franz-go")
		pr.wave(n, spread, 0, 0, 0)
		return
	}
	now := time.Now()
	pr.mu.Lock()
	var in bytes.Buffer
	evs := make([]schemas.Event, 0, n)
	for range n {
		ev := pr.event(now.Add(-time.Duration(pr.rng.Int64N(int64(spread)))))
		evs = append(evs, ev)
		in.Write(ev.Key())
		in.WriteByte('|')
		in.Write(schemas.AppendJSON(nil, &ev))
		in.WriteByte('\n')
	}
	pr.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", "-P", "-b", pr.brokers, "-t", schemas.DefaultTopic, "-K", "|",
		"-H", "content-type=application/json", "-X", "topic.partitioner=murmur2_random", "-X", "linger.ms=5")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		pr.t.Errorf("kcat: %v\n%s", err, out)
		return
	}
	pr.mu.Lock()
	pr.valid = append(pr.valid, evs...)
	pr.mu.Unlock()
}

// snapshot returns copies of the truth.
func (pr *producer) snapshot() (valid []schemas.Event, invalid map[pos]string, validPos map[pos]struct{}, dups int) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	invalid = make(map[pos]string, len(pr.invalid))
	for k, v := range pr.invalid {
		invalid[k] = v
	}
	validPos = make(map[pos]struct{}, len(pr.validPos))
	for k := range pr.validPos {
		validPos[k] = struct{}{}
	}
	return append([]schemas.Event(nil), pr.valid...), invalid, validPos, pr.dups
}

// recordsLen is the number of records produced with franz-go that
// duplicates can copy.
func (pr *producer) recordsLen() int {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return len(pr.records)
}

func (pr *producer) validCount() int {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return len(pr.valid)
}

// ---------------------------------------------------------------------------
// Truth and ClickHouse

// sums are the compared measures of a set of events or rollup rows.
type sums struct {
	Requests, Errors, Input, Cached, CacheWrite, Output, Reasoning, GPUus, Unpriced, LatencyCount, TTFTCount uint64
	Cost                                                                                                     string
}

type group struct{ Tenant, Model string }

var rollupTables = []string{"usage_1m", "usage_1h", "usage_1d"}

// truthOf computes the sums of events independently of the pipeline: cost
// with the default catalog in exact picodollars.
func truthOf(events []schemas.Event) (total sums, byGroup map[group]sums) {
	cat := pricing.Default()
	type acc struct {
		s    sums
		cost pricing.Pico
	}
	var all acc
	groups := map[group]*acc{}
	add := func(a *acc, e *schemas.Event, c pricing.Pico, priced bool) {
		a.s.Requests++
		if e.Status == schemas.StatusError {
			a.s.Errors++
		}
		a.s.Input += uint64(e.InputTokens)
		a.s.Cached += uint64(e.CachedInputTokens)
		a.s.CacheWrite += uint64(e.CacheWriteTokens)
		a.s.Output += uint64(e.OutputTokens)
		a.s.Reasoning += uint64(e.ReasoningTokens)
		a.s.GPUus += uint64(math.Round(e.GPUMs * 1000))
		if e.HasLatency {
			a.s.LatencyCount++
		}
		if e.HasTTFT {
			a.s.TTFTCount++
		}
		if priced {
			a.cost = a.cost.Add(c)
		} else {
			a.s.Unpriced++
		}
	}
	for i := range events {
		e := &events[i]
		c, priced := cat.Total(e)
		add(&all, e, c, priced)
		g := group{e.Tenant, e.Model}
		if groups[g] == nil {
			groups[g] = &acc{}
		}
		add(groups[g], e, c, priced)
	}
	all.s.Cost = all.cost.String()
	byGroup = map[group]sums{}
	for g, a := range groups {
		a.s.Cost = a.cost.String()
		byGroup[g] = a.s
	}
	return all.s, byGroup
}

// sumsSelect merges every measure of a rollup table (warehouse's list of
// columns); scanSums reads it into sums.
var sumsSelect = warehouse.MergeSelect()

func scanSums(s interface{ Scan(...any) error }, dst *sums, prefix ...any) error {
	var m warehouse.Merged
	if err := s.Scan(append(prefix, m.Dest()...)...); err != nil {
		return err
	}
	if err := m.Done(); err != nil {
		return err
	}
	*dst = sums{Requests: m.Requests, Errors: m.Errors, Input: m.InputTokens, Cached: m.CachedInputTokens,
		CacheWrite: m.CacheWriteTokens, Output: m.OutputTokens, Reasoning: m.ReasoningTokens, GPUus: m.GPUMicros,
		Unpriced: m.UnpricedRequests, LatencyCount: m.Latency.Count, TTFTCount: m.TTFT.Count, Cost: m.Cost.String()}
	return nil
}

// tableTotal reads the total sums of one rollup table.
func tableTotal(ctx context.Context, conn driver.Conn, db, table string) (sums, error) {
	var s sums
	err := scanSums(conn.QueryRow(ctx, "SELECT "+sumsSelect+" FROM "+db+"."+table), &s)
	if s.Requests == 0 {
		// sum over no rows: normalise the decimal's spelling
		s.Cost = pricing.Pico{}.String()
	}
	return s, err
}

// tableGroups reads the sums of one rollup table by tenant and model.
func tableGroups(ctx context.Context, conn driver.Conn, db, table string) (map[group]sums, error) {
	rows, err := conn.Query(ctx, "SELECT tenant, model, "+sumsSelect+" FROM "+db+"."+table+" GROUP BY tenant, model")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[group]sums{}
	for rows.Next() {
		var g group
		var s sums
		if err := scanSums(rows, &s, &g.Tenant, &g.Model); err != nil {
			return nil, err
		}
		out[g] = s
	}
	return out, rows.Err()
}

// totalsMatch reports whether every rollup table's total equals want, and
// the first mismatch.
func totalsMatch(conn driver.Conn, db string, want sums) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tbl := range rollupTables {
		got, err := tableTotal(ctx, conn, db, tbl)
		if err != nil {
			return false, fmt.Sprintf("%s: %v", tbl, err)
		}
		if got != want {
			return false, fmt.Sprintf("%s total %+v, want %+v", tbl, got, want)
		}
	}
	return true, ""
}

// waitTotals polls until every table's total equals the truth of events.
func waitTotals(t *testing.T, conn driver.Conn, db string, events []schemas.Event, timeout time.Duration) {
	t.Helper()
	want, _ := truthOf(events)
	deadline := time.Now().Add(timeout)
	start := time.Now()
	for {
		ok, why := totalsMatch(conn, db, want)
		if ok {
			t.Logf("totals converged after %s: %d requests, cost %s", time.Since(start).Round(time.Millisecond), want.Requests, want.Cost)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("totals did not converge within %s: %s", timeout, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// pollTotals is waitTotals without failing: it reports whether the totals
// converged within timeout.
func pollTotals(conn driver.Conn, db string, events []schemas.Event, timeout time.Duration) bool {
	want, _ := truthOf(events)
	deadline := time.Now().Add(timeout)
	for {
		if ok, _ := totalsMatch(conn, db, want); ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkExact compares every rollup table with the truth of events, in total
// and by tenant and model, and reports every difference.
func checkExact(t *testing.T, conn driver.Conn, db string, events []schemas.Event) {
	t.Helper()
	wantTotal, wantGroups := truthOf(events)
	ctx := context.Background()
	for _, tbl := range rollupTables {
		got, err := tableTotal(ctx, conn, db, tbl)
		if err != nil {
			t.Fatal(err)
		}
		if got != wantTotal {
			t.Errorf("%s total:\n got %+v\nwant %+v", tbl, got, wantTotal)
		}
		groups, err := tableGroups(ctx, conn, db, tbl)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[group]bool{}
		for g := range groups {
			keys[g] = true
		}
		for g := range wantGroups {
			keys[g] = true
		}
		var sorted []group
		for g := range keys {
			sorted = append(sorted, g)
		}
		sort.Slice(sorted, func(i, j int) bool {
			return sorted[i].Tenant+"/"+sorted[i].Model < sorted[j].Tenant+"/"+sorted[j].Model
		})
		bad := 0
		for _, g := range sorted {
			if groups[g] != wantGroups[g] {
				bad++
				t.Errorf("%s %s/%s:\n got %+v\nwant %+v", tbl, g.Tenant, g.Model, groups[g], wantGroups[g])
			}
		}
		if bad == 0 {
			t.Logf("%s exact: %d requests in %d tenant/model groups, cost %s", tbl, got.Requests, len(groups), got.Cost)
		}
	}
}

// ---------------------------------------------------------------------------
// DLQ

// dlqRecord is what the test reads back from the DLQ topic.
type dlqRecord struct {
	src    pos
	topic  string
	reason string
}

// readDLQ reads the whole DLQ topic (up to its end offsets now).
func readDLQ(t *testing.T, brokers string) []dlqRecord {
	t.Helper()
	var out []dlqRecord
	readTopic(t, brokers, schemas.DefaultDLQTopic, func(r *kgo.Record) {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		p, _ := strconv.Atoi(h[consumers.HeaderDLQSourcePartition])
		off, err := strconv.ParseInt(h[consumers.HeaderDLQSourceOffset], 10, 64)
		if err != nil {
			t.Errorf("DLQ record %d/%d without a source offset: %v", r.Partition, r.Offset, h)
		}
		out = append(out, dlqRecord{src: pos{int32(p), off}, topic: h[consumers.HeaderDLQSourceTopic], reason: h[consumers.HeaderDLQReason]})
	})
	return out
}

// readTopic calls fn for every record of topic, up to its end offsets now.
func readTopic(t *testing.T, brokers, topic string, fn func(*kgo.Record)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (still waiting for %v)", topic, ctx.Err(), want)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("%s fetch partition %d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			fn(r)
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
}

// checkDLQ asserts every invalid record is in the DLQ at least once and no
// other record is.
func checkDLQ(t *testing.T, brokers string, invalid map[pos]string) {
	t.Helper()
	recs := readDLQ(t, brokers)
	seen := map[pos]int{}
	kinds := map[string]int{}
	for _, r := range recs {
		if r.topic != schemas.DefaultTopic {
			t.Errorf("DLQ record of %v names source topic %q", r.src, r.topic)
		}
		kind, ok := invalid[r.src]
		if !ok {
			t.Errorf("DLQ holds the record at partition %d offset %d (reason %q), which is not one of the invalid records", r.src.p, r.src.off, r.reason)
			continue
		}
		if seen[r.src] == 0 {
			kinds[kind+"→"+r.reason]++
		}
		seen[r.src]++
	}
	missing := 0
	for p, kind := range invalid {
		if seen[p] == 0 {
			missing++
			if missing <= 10 {
				t.Errorf("invalid record (%s) at partition %d offset %d is not in the DLQ", kind, p.p, p.off)
			}
		}
	}
	redelivered := 0
	for _, n := range seen {
		redelivered += n - 1
	}
	t.Logf("DLQ: %d records for %d invalid ones (%d missing, %d redelivered); kinds→reasons %v", len(recs), len(invalid), missing, redelivered, kinds)
}

// ---------------------------------------------------------------------------
// Group membership

// assigned returns the partitions of the aggregator's last "partitions
// assigned" log line.
func (a *aggregator) assigned() []int32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.lines) - 1; i >= 0; i-- {
		l := a.lines[i]
		if !strings.Contains(l, `msg="partitions assigned"`) {
			continue
		}
		j := strings.Index(l, "partitions=")
		if j < 0 {
			return nil
		}
		v := l[j+len("partitions="):]
		if strings.HasPrefix(v, `"`) {
			v = v[1:]
			v = v[:strings.IndexByte(v, '"')]
		} else if k := strings.IndexByte(v, ' '); k >= 0 {
			v = v[:k]
		}
		var out []int32
		for _, f := range strings.Fields(strings.Trim(v, "[]")) {
			n, _ := strconv.Atoi(f)
			out = append(out, int32(n))
		}
		sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
		return out
	}
	return nil
}

// groupMembers returns the group's members and the partitions of the events
// topic assigned to each.
func groupMembers(t *testing.T, cl *kgo.Client, group string) map[string][]int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gs, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("describe group %s: %v", group, err)
	}
	out := map[string][]int32{}
	for _, m := range gs[group].Members {
		var ps []int32
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range c.Topics {
				if tp.Topic == schemas.DefaultTopic {
					ps = append(ps, tp.Partitions...)
				}
			}
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		out[m.MemberID] = ps
	}
	return out
}

// memberOf returns the member ID of the group member assigned exactly the
// partitions a reports in its log.
func memberOf(t *testing.T, cl *kgo.Client, group string, a *aggregator) string {
	t.Helper()
	want := fmt.Sprint(a.assigned())
	var found []string
	members := groupMembers(t, cl, group)
	for id, ps := range members {
		if fmt.Sprint(ps) == want {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		t.Fatalf("cannot identify the member of aggregator %s (assigned %s) among %v", a.name, want, members)
	}
	return found[0]
}

// evict removes a member from the group (LeaveGroup on its behalf), as the
// expiry of its session would. A SIGKILLed aggregator cannot leave; without
// this the group waits for its 45s session timeout (franz-go's default, not
// settable through costpipe's flags).
func evict(t *testing.T, cl *kgo.Client, group, memberID string) {
	t.Helper()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = group
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = memberID
	req.Members = append(req.Members, m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
		for _, rm := range resp.Members {
			if err == nil {
				err = kerr.ErrorForCode(rm.ErrorCode)
			}
		}
	}
	if err != nil {
		t.Fatalf("evict member %s from group %s: %v", memberID, group, err)
	}
}

// phaser returns a logger of a test's phases, each line with the seconds
// since phaser was called.
func phaser(t *testing.T) func(format string, args ...any) {
	began := time.Now()
	return func(format string, args ...any) {
		t.Helper()
		t.Logf("%6.2fs  %s", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
}

// adminClient returns a plain client for admin requests, closed at the end
// of the test.
func adminClient(t *testing.T, brokers string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
