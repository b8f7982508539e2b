package ingest

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/costpipe/costpipe/schemas"
)

// TestEveryAcknowledgedEventLandsOnce sends many concurrent requests in
// every format, some with invalid events, some forbidden, and checks that
// the topic holds exactly the events the responses reported accepted: none
// missing, none extra, none twice, each the canonical encoding of what was
// sent, under the right key.
func TestEveryAcknowledgedEventLandsOnce(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	const (
		workers  = 6
		requests = 40 // per worker
	)
	var (
		mu       sync.Mutex
		accepted = make(map[string]schemas.Event) // what the responses promised
		statuses = make(map[int]int)
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range requests {
				tenant, key := "acme", "key-acme"
				if rng.IntN(2) == 0 {
					tenant, key = "globex", "key-globex"
				}
				n := 1 + rng.IntN(60)
				var (
					elems  []string
					valid  = make(map[int]schemas.Event)
					forbid bool
				)
				for j := range n {
					id := fmt.Sprintf("w%d-r%d-e%d", w, i, j)
					var e string
					switch r := rng.IntN(20); {
					case r == 0: // invalid
						e = `{"event_id":"` + id + `","timestamp":"2025-11-01T10:00:00Z","tenant":"` + tenant + `","provider":"p","model":"m","status":"maybe"}`
					case r == 1 && i%7 == 3: // another tenant: the request is refused whole
						e = event(id, "initech")
						forbid = true
					case r == 2: // no tenant: takes the key's
						e = event(id, "")
					default:
						e = event(id, tenant)
						e = strings.Replace(e, `"input_tokens":1200`, fmt.Sprintf(`"input_tokens":%d`, 1000+rng.IntN(1000)), 1)
					}
					elems = append(elems, e)
					if !strings.Contains(e, `"maybe"`) && !strings.Contains(e, "initech") {
						var ev schemas.Event
						if err := schemas.DecodeJSON([]byte(strings.Replace(e, `"timestamp"`, `"tenant":"`+tenant+`","timestamp"`, 1)), &ev); err != nil {
							t.Errorf("test event %s: %v", e, err)
							return
						}
						valid[j] = ev
					}
				}
				var body string
				var headers []string
				switch i % 4 {
				case 0:
					body = "[" + strings.Join(elems, ",") + "]"
				case 1:
					body = strings.Join(elems, "\n")
					headers = append(headers, "Content-Type: application/x-ndjson")
				case 2:
					ces := make([]string, len(elems))
					for j, e := range elems {
						ces[j] = fmt.Sprintf(`{"specversion":"1.0","id":"%d","source":"/t","type":"t","data":%s}`, j, e)
					}
					body = "[" + strings.Join(ces, ",") + "]"
					headers = append(headers, "Content-Type: application/cloudevents-batch+json")
				case 3:
					body = gzipped("[\n " + strings.Join(elems, ",\n ") + "\n]")
					headers = append(headers, "Content-Encoding: gzip")
				}
				resp, r := g.post(t, key, body, headers...)
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
				wantCode, wantAccepted := http.StatusAccepted, len(valid)
				switch {
				case forbid:
					wantCode, wantAccepted = http.StatusForbidden, 0
				case len(valid) < n:
					wantCode = http.StatusBadRequest
				}
				if resp.StatusCode != wantCode || r.Accepted != wantAccepted || r.RejectedCount != n-len(valid) && !forbid {
					t.Errorf("request w%d-r%d: status %d, accepted %d, rejected %d; want %d, %d, %d",
						w, i, resp.StatusCode, r.Accepted, r.RejectedCount, wantCode, wantAccepted, n-len(valid))
					continue
				}
				for _, rj := range r.Rejected {
					if _, ok := valid[rj.Index]; ok && !forbid {
						t.Errorf("request w%d-r%d: valid event %d rejected: %s", w, i, rj.Index, rj.Error)
					}
				}
				if resp.StatusCode == http.StatusForbidden {
					continue
				}
				mu.Lock()
				for _, ev := range valid {
					accepted[ev.EventID] = ev
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if statuses[202] == 0 || statuses[400] == 0 || statuses[403] == 0 {
		t.Fatalf("statuses %v; the test wants some 202, 400 and 403", statuses)
	}
	got := consumeAll(t, g.broker.Addr(), g.opts.Topic, len(accepted), time.Second)
	missing, extra := 0, 0
	for id, want := range accepted {
		c, ok := got[id]
		if !ok {
			missing++
			if missing <= 5 {
				t.Errorf("accepted event %s is not on the topic", id)
			}
			continue
		}
		if c.value != string(schemas.AppendJSON(nil, &want)) || c.key != string(want.Key()) || c.contentType != schemas.ContentTypeJSON {
			t.Errorf("event %s: key %q value %s; want key %q value %s", id, c.key, c.value, want.Key(), schemas.AppendJSON(nil, &want))
		}
	}
	for id := range got {
		if _, ok := accepted[id]; !ok {
			extra++
			if extra <= 5 {
				t.Errorf("event %s is on the topic but was not accepted", id)
			}
		}
	}
	t.Logf("%d requests %v, %d events accepted, %d on the topic, %d missing, %d extra",
		workers*requests, statuses, len(accepted), len(got), missing, extra)
}
