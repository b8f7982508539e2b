package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/schemas"
)

// kcatLine is one record for kcat -K '|': key|value.
type kcatLine struct{ key, value []byte }

// kcatProduce produces lines through librdkafka's kcat with the given
// content type (Java-compatible murmur2 partitioning by key). Safe to call
// from any goroutine.
func kcatProduce(brokers, contentType string, lines []kcatLine) error {
	var in bytes.Buffer
	for _, l := range lines {
		if bytes.ContainsAny(l.value, "\n") || bytes.Contains(l.key, []byte("|")) {
			return fmt.Errorf("kcat line cannot carry %q|%q", l.key, l.value)
		}
		in.Write(l.key)
		in.WriteByte('|')
		in.Write(l.value)
		in.WriteByte('\n')
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", "-P", "-b", brokers, "-t", schemas.DefaultTopic, "-K", "|",
		"-H", "content-type="+contentType, "-X", "topic.partitioner=murmur2_random", "-X", "linger.ms=5")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kcat: %v\n%s", err, out)
	}
	return nil
}

// positionsOf reads the whole events topic back and returns the position of
// every record whose value is in values (kcat does not report offsets).
func positionsOf(t *testing.T, brokers string, values map[string]string) map[pos]string {
	t.Helper()
	out := map[pos]string{}
	readTopic(t, brokers, schemas.DefaultTopic, func(r *kgo.Record) {
		if kind, ok := values[string(r.Value)]; ok {
			out[pos{r.Partition, r.Offset}] = kind
		}
	})
	if len(out) != len(values) {
		t.Fatalf("found %d of the %d invalid records in the events topic", len(out), len(values))
	}
	return out
}

// TestKcatClientEndToEnd is the rollup core's acceptance run with a real
// non-Go client: every record is produced by kcat (librdkafka). Event times
// spread over the last 3 h, 1% delayed by 24–48 h, 2% duplicates re-sent up
// to ~3000 records after their original (delayed events' retries among
// them), invalid records of several kinds; the aggregator is SIGKILLed
// mid-stream and restarted, and ClickHouse is stopped and restarted. The
// rollups must end exact per tenant and model (cost to the picodollar),
// every duplicate dropped, every invalid record in the DLQ.
//
// TestKcatClientEndToEndCluster runs it unchanged against a two-shard
// cluster (e2e/cluster_test.go).
func TestKcatClientEndToEnd(t *testing.T) {
	t.Parallel()
	kcatClientEndToEnd(t, singleServer(t))
}

func kcatClientEndToEnd(t *testing.T, ch chTarget) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat is required (apt-get install kcat; .ci/run installs it)")
	}
	db, conn := ch.db, ch.conn
	b := kafkatest.Start(t, 4)
	pr := newProducer(t, b.Addr(), "kc", 7) // generates events and keeps the truth
	phase := phaser(t)
	invalid := map[string]string{} // value → kind
	var sent []kcatLine            // valid records in produce order, for retries
	delayed, dups := 0, 0
	// wave produces n new events and their retries and invalid records; it
	// runs on one goroutine at a time.
	wave := func(n int) error {
		now := time.Now()
		var lines, other []kcatLine
		for range n {
			ts := now.Add(-time.Duration(pr.rng.Int64N(int64(3 * time.Hour))))
			if pr.rng.IntN(100) == 0 {
				ts = now.Add(-24*time.Hour - time.Duration(pr.rng.Int64N(int64(24*time.Hour))))
				delayed++
			}
			ev := pr.event(ts)
			pr.valid = append(pr.valid, ev)
			l := kcatLine{ev.Key(), schemas.AppendJSON(nil, &ev)}
			lines = append(lines, l)
			sent = append(sent, l)
			// 2% retries of a record up to ~3000 records back.
			if pr.rng.IntN(50) == 0 {
				back := min(len(sent), 3000)
				lines = append(lines, sent[len(sent)-1-pr.rng.IntN(back)])
				dups++
			}
		}
		for i := range n / 200 {
			seq := len(invalid)
			kinds := []struct{ kind, value string }{
				{"malformed_json", fmt.Sprintf(`{"event_id":"bad-%d","timestamp":`, seq)},
				{"reasoning_gt_output", fmt.Sprintf(`{"event_id":"bad-%d","timestamp":%q,"tenant":"acme","provider":"openai","model":"gpt-4o","status":"ok","output_tokens":2,"reasoning_tokens":3}`, seq, now.UTC().Format(time.RFC3339))},
				{"too_old", fmt.Sprintf(`{"event_id":"old-%d","timestamp":%q,"tenant":"acme","provider":"openai","model":"gpt-4o","status":"ok"}`, seq, now.Add(-8*24*time.Hour).UTC().Format(time.RFC3339))},
				{"missing_tenant", fmt.Sprintf(`{"event_id":"bad-%d","timestamp":%q,"provider":"openai","model":"gpt-4o","status":"ok"}`, seq, now.UTC().Format(time.RFC3339))},
				{"control_character", fmt.Sprintf(`{"event_id":"bad-%d","timestamp":%q,"tenant":"acme\u001b[31m","provider":"openai","model":"gpt-4o","status":"ok"}`, seq, now.UTC().Format(time.RFC3339))},
			}
			k := kinds[(seq+i)%len(kinds)]
			invalid[k.value] = k.kind
			lines = append(lines, kcatLine{[]byte("acme\x00gpt-4o"), []byte(k.value)})
		}
		pr.rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
		if err := kcatProduce(b.Addr(), schemas.ContentTypeJSON, lines); err != nil {
			return err
		}
		// One record of a content type no decoder reads.
		v := fmt.Sprintf("plain text %d", len(invalid))
		invalid[v] = "unsupported_content"
		other = append(other, kcatLine{[]byte("acme\x00gpt-4o"), []byte(v)})
		return kcatProduce(b.Addr(), "text/plain", other)
	}
	mustWave := func(n int) {
		t.Helper()
		if err := wave(n); err != nil {
			t.Fatal(err)
		}
	}

	const group = "e2e-kcat"
	flags := append([]string{"--flush-interval", "300ms"}, ch.flags...)
	a1 := startAggregator(t, "A1", b.Addr(), ch.dsn, group, flags...)
	for range 4 {
		mustWave(2500)
	}
	waitFor(t, 30*time.Second, "A1 to land the first waves", func() bool {
		return landedRequests(conn, db) >= uint64(len(pr.valid))
	})
	// Kill A1 mid-stream: while kcat produces more waves and A1 has landed
	// part of them.
	landedBefore := landedRequests(conn, db)
	streaming := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < 4 && err == nil; i++ {
			err = wave(1500)
		}
		streaming <- err
	}()
	waitFor(t, 30*time.Second, "A1 to land part of the stream", func() bool { return landedRequests(conn, db) > landedBefore })
	admin := adminClient(t, b.Addr())
	dead := memberOf(t, admin, group, a1)
	a1.kill()
	phase("SIGKILLed A1 mid-stream; %d events landed", landedRequests(conn, db))
	if err := <-streaming; err != nil {
		t.Fatal(err)
	}
	phase("%d valid events produced", len(pr.valid))
	evict(t, admin, group, dead)
	a2 := startAggregator(t, "A2", b.Addr(), ch.dsn, group, flags...)
	mustWave(2500)
	waitFor(t, 30*time.Second, "A2 to land", func() bool { return a2.metric("costpipe_flushes_total") >= 1 })
	ch.stop(t)
	phase("stopped %s", ch.what)
	mustWave(2500)
	time.Sleep(3 * time.Second)
	ch.restart(t)
	phase("restarted %s", ch.what)
	mustWave(2500)
	phase("produced %d valid events (%d delayed 24–48 h), %d retries, %d invalid records, all through kcat",
		len(pr.valid), delayed, dups, len(invalid))

	waitTotals(t, conn, db, pr.valid, 90*time.Second)
	phase("converged; A2 dropped %.0f duplicates, skipped %.0f replayed records, saw %.0f ClickHouse errors",
		a2.metric("costpipe_duplicates_total"), a2.metric("costpipe_records_already_landed_total"), a2.metric("costpipe_clickhouse_errors_total"))
	if n := a2.metric("costpipe_clickhouse_errors_total"); n <= 0 {
		t.Errorf("A2 reports %v ClickHouse errors: the outage was not exercised", n)
	}
	if n := a2.metric("costpipe_duplicates_total"); n <= 0 {
		t.Errorf("A2 dropped %v duplicates", n)
	}
	a2.mustTerm()
	checkExact(t, conn, db, pr.valid)
	checkDLQ(t, b.Addr(), positionsOf(t, b.Addr(), invalid))
	if !strings.Contains(a2.log(5000), "warming dedupe window") {
		t.Error("A2 did not warm its dedupe window from Kafka")
	}
	phase("done")
}
