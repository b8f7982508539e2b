package ingest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const benchBatch = 500

// benchBodies returns n request bodies of benchBatch distinct events each,
// spread over 10 tenants and 5 models, as a JSON array or NDJSON.
func benchBodies(n int, ndjson bool) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		elems := make([]string, benchBatch)
		for j := range elems {
			e := event(fmt.Sprintf("bench-%d-%d", i, j), fmt.Sprintf("tenant-%d", j%10))
			elems[j] = strings.Replace(e, `"model":"gpt-4o"`, fmt.Sprintf(`"model":"model-%d"`, j%5), 1)
		}
		if ndjson {
			out[i] = []byte(strings.Join(elems, "\n") + "\n")
		} else {
			out[i] = []byte("[" + strings.Join(elems, ",") + "]")
		}
	}
	return out
}

// BenchmarkIngestHTTP posts batches of 500 events over real HTTP on
// loopback to a gateway backed by the embedded broker over TCP, from 8
// concurrent clients; every request waits for Kafka's acknowledgement. One
// op is one request; events/s counts events, p50-ms and p99-ms are request
// latencies.
func BenchmarkIngestHTTP(b *testing.B) {
	for _, bc := range []struct {
		name   string
		ndjson bool
		gzip   bool
	}{
		{"json-array", false, false},
		{"ndjson", true, false},
		{"json-array-gzip", false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := startGateway(b, nil)
			bodies := benchBodies(16, bc.ndjson)
			headers := http.Header{"Authorization": {"Bearer key-admin"}, "Content-Type": {"application/json"}}
			if bc.ndjson {
				headers.Set("Content-Type", "application/x-ndjson")
			}
			if bc.gzip {
				headers.Set("Content-Encoding", "gzip")
				for i := range bodies {
					bodies[i] = []byte(gzipped(string(bodies[i])))
				}
			}
			const clients = 8
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}}
			defer client.CloseIdleConnections()
			post := func(body []byte) error {
				req, _ := http.NewRequest(http.MethodPost, g.url+"/v1/events", bytes.NewReader(body))
				req.Header = headers.Clone()
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					return fmt.Errorf("status %d: %s", resp.StatusCode, out)
				}
				return nil
			}
			if err := post(bodies[0]); err != nil { // warm up: metadata, producer ID
				b.Fatal(err)
			}
			lat := postConcurrently(b, clients, bodies, post)
			pct := func(p float64) float64 { return percentileMs(lat, p) }
			b.ReportMetric(float64(b.N)*benchBatch/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}

// postConcurrently has clients goroutines post b.N requests, cycling
// through bodies, between b.ResetTimer and b.StopTimer, and returns their
// latencies, sorted. A failed post fails the benchmark.
func postConcurrently(b *testing.B, clients int, bodies [][]byte, post func([]byte) error) []time.Duration {
	b.Helper()
	var (
		next   atomic.Int64
		mu     sync.Mutex
		lat    = make([]time.Duration, 0, b.N)
		wg     sync.WaitGroup
		failed atomic.Pointer[error]
	)
	b.ResetTimer()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) || failed.Load() != nil {
					break
				}
				start := time.Now()
				if err := post(bodies[i%int64(len(bodies))]); err != nil {
					failed.Store(&err)
					break
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	slices.Sort(lat)
	return lat
}

// percentileMs is the p quantile (0..1) of sorted latencies, in ms.
func percentileMs(lat []time.Duration, p float64) float64 {
	return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
}

// BenchmarkDecodeBatch measures the CPU cost of decoding a 500-event JSON
// array into records (split, decode, validate, re-encode), without HTTP or
// Kafka. One op is one event.
func BenchmarkDecodeBatch(b *testing.B) {
	body := benchBodies(1, false)[0]
	bt := newBatch()
	b.SetBytes(int64(len(body) / benchBatch))
	b.ReportAllocs()
	for i := 0; i < b.N; i += benchBatch {
		bt.reset(AnyTenant, timeBounds{})
		if err := bt.decode(formatJSON, body); err != nil || len(bt.spans) != benchBatch {
			b.Fatalf("decode: %v, %d accepted", err, len(bt.spans))
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
