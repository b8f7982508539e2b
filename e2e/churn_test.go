package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/schemas"
)

// Timeouts of the group tests (churn, static membership, rolling restart,
// stall): the broker's minimum session timeout, so that a dead member is
// noticed in seconds, and the rest scaled to it.
const (
	groupSession  = 6 * time.Second
	groupFlush    = 500 * time.Millisecond
	groupRebal    = 10 * time.Second
	groupLagEvery = time.Second
)

// groupFlags are the aggregator flags of the group tests, then extra.
func groupFlags(extra ...string) []string {
	return append([]string{"--flush-interval", groupFlush.String(),
		"--session-timeout", groupSession.String(), "--heartbeat-interval", "1s",
		"--rebalance-timeout", groupRebal.String(), "--flush-timeout-on-rebalance", "3s", "--insert-timeout", "5s",
		"--group-lag-interval", groupLagEvery.String(), "--stall-timeout", "15s"}, extra...)
}

// get returns the status code and body of a GET of path on the
// aggregator's metrics listener (-1 when it cannot be reached).
func (a *aggregator) get(path string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.metrics+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// countLog returns the number of stderr lines containing s.
func (a *aggregator) countLog(s string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, l := range a.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// groupOffsets returns the events topic's end offsets and the group's
// committed offsets (absent: none).
func groupOffsets(adm *kadm.Client, group string) (ends, committed map[int32]int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	le, err := adm.ListEndOffsets(ctx, schemas.DefaultTopic)
	if err == nil {
		err = le.Error()
	}
	if err != nil {
		return nil, nil, err
	}
	fo, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = fo.Error()
	}
	if err != nil {
		return nil, nil, err
	}
	ends, committed = map[int32]int64{}, map[int32]int64{}
	le.Each(func(o kadm.ListedOffset) {
		ends[o.Partition] = o.Offset
		if c, ok := fo.Lookup(schemas.DefaultTopic, o.Partition); ok && c.At >= 0 {
			committed[o.Partition] = c.At
		}
	})
	return ends, committed, nil
}

// behind lists the partitions whose committed offset is below want, as
// "p:committed<want".
func behind(committed, want map[int32]int64) []string {
	var out []string
	for p, w := range want {
		if c, ok := committed[p]; !ok || c < w {
			out = append(out, fmt.Sprintf("%d:%d<%d", p, c, w))
		}
	}
	sort.Strings(out)
	return out
}

// waitCaughtUp waits until the group has committed, on every partition, at
// least the end offsets in want: every record produced before want was
// read has landed. It returns how long that took from since, or false when
// it did not happen within timeout of since.
func waitCaughtUp(t *testing.T, adm *kadm.Client, group string, want map[int32]int64, since time.Time, timeout time.Duration) (time.Duration, bool) {
	t.Helper()
	var last []string
	for time.Since(since) < timeout {
		if _, committed, err := groupOffsets(adm, group); err == nil {
			if last = behind(committed, want); len(last) == 0 {
				return time.Since(since), true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("after %s the group is still behind on %v", timeout, last)
	return time.Since(since), false
}

// keepLogs writes the stderr of every aggregator in as to
// $COSTPIPE_E2E_LOG_DIR/<test>/<name>.log at the end of the test, when that
// variable is set (to study a run that passed).
func keepLogs(t *testing.T, as *[]*aggregator) {
	dir := os.Getenv("COSTPIPE_E2E_LOG_DIR")
	if dir == "" {
		return
	}
	t.Cleanup(func() {
		d := filepath.Join(dir, t.Name())
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Log(err)
			return
		}
		for _, a := range *as {
			os.WriteFile(filepath.Join(d, a.name+".log"), []byte(a.log(1<<30)), 0o644)
		}
		t.Logf("aggregator logs in %s", d)
	})
}

// envInt reads a positive integer from the environment, or def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// TestChurn is issue 13's crash loop: three aggregators in one group, load
// running, 30 cycles that SIGKILL a random instance and restart it, 1-3 s
// apart, ClickHouse stopped and restarted in the middle. After the last
// kill the group must have landed everything produced before it within the
// session timeout (the time the coordinator needs to notice the last dead
// member) + 15 s, and the rollups end exact.
//
// COSTPIPE_CHURN_CYCLES and COSTPIPE_CHURN_SEED change the schedule.
func TestChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop of the built binary")
	}
	t.Parallel()
	srv := chtest.Start(t)
	db := srv.NewDatabase(t)
	conn := srv.Conn(t, db)
	b := kafkatest.Start(t, 6)
	pr := newProducer(t, b.Addr(), "churn", 13)
	admin := adminClient(t, b.Addr())
	adm := kadm.NewClient(admin)
	const group = "e2e-churn"
	cycles := envInt(t, "COSTPIPE_CHURN_CYCLES", 30)
	seed := uint64(envInt(t, "COSTPIPE_CHURN_SEED", int(time.Now().UnixNano()%1e9)))
	rng := rand.New(rand.NewPCG(seed, seed))
	phase := phaser(t)
	phase("%d cycles, seed %d (COSTPIPE_CHURN_SEED)", cycles, seed)

	var all []*aggregator
	keepLogs(t, &all)
	aggs := make([]*aggregator, 3)
	for i := range aggs {
		a, err := spawnAggregator(t, fmt.Sprintf("I%d", i+1), b.Addr(), srv.DSN(db), group, groupFlags()...)
		if err != nil {
			t.Fatal(err)
		}
		aggs[i] = a
		all = append(all, a)
	}
	for _, a := range aggs {
		if err := a.ready(); err != nil {
			t.Fatal(err)
		}
	}
	bg := produceInBackground(pr, 100) // ~1000 events/s
	defer bg.stop()
	waitFor(t, 60*time.Second, "the three to share the 6 partitions and land", func() bool {
		sum := 0.0
		for _, a := range aggs {
			n := a.metric("costpipe_assigned_partitions")
			if n <= 0 {
				return false
			}
			sum += n
		}
		return sum == 6 && landedRequests(conn, db) > 0
	})
	phase("the three share the partitions; %d landed", landedRequests(conn, db))

	chStop, chStart := cycles/2, cycles/2+2
	var lastKill time.Time
	var atLastKill map[int32]int64
	for cycle := 1; cycle <= cycles; cycle++ {
		switch cycle {
		case chStop:
			srv.Stop(t)
			phase("stopped ClickHouse")
		case chStart:
			srv.Restart(t)
			conn = srv.Conn(t, db)
			phase("restarted ClickHouse")
		}
		i := rng.IntN(len(aggs))
		aggs[i].kill()
		lastKill = time.Now()
		if cycle == cycles {
			ends, _, err := groupOffsets(adm, group)
			if err != nil {
				t.Fatal(err)
			}
			atLastKill = ends
		}
		a, err := spawnAggregator(t, fmt.Sprintf("I%d.%d", i+1, cycle), b.Addr(), srv.DSN(db), group, groupFlags()...)
		if err != nil {
			t.Fatal(err)
		}
		aggs[i] = a
		all = append(all, a)
		if cycle < cycles {
			time.Sleep(time.Second + time.Duration(rng.Int64N(int64(2*time.Second))))
		}
	}
	phase("last kill; end offsets then %v", atLastKill)
	for _, a := range aggs {
		if err := a.ready(); err != nil {
			t.Fatal(err)
		}
	}
	budget := groupSession + 15*time.Second
	took, ok := waitCaughtUp(t, adm, group, atLastKill, lastKill, 3*time.Minute)
	if !ok || took > budget {
		t.Errorf("the group landed what was produced before the last kill %s after it, want within %s (session timeout + 15s)", took.Round(10*time.Millisecond), budget)
	}
	phase("RECOVERY: everything produced before the last kill landed %s after it (budget %s)", took.Round(10*time.Millisecond), budget)

	bg.stop()
	valid, invalid, _, dups := pr.snapshot()
	phase("stopped producing: %d valid events, %d duplicates, %d invalid records", len(valid), dups, len(invalid))
	waitTotals(t, conn, db, valid, 90*time.Second)
	joinErrors := 0
	for _, a := range aggs {
		joinErrors += a.countLog("cannot join the consumer group")
		a.mustTerm()
	}
	phase("the last three instances logged %d failed joins", joinErrors)
	checkExact(t, conn, db, valid)
	checkDLQ(t, b.Addr(), invalid)
}
