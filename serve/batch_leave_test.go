package serve

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestBatchClientLeaves: once the client of a batch has left, the
// questions not begun are not computed (the ones running finish into the
// cache, which another request may share). It computed all eight.
func TestBatchClientLeaves(t *testing.T) {
	// Not parallel: its margin between the questions' delay and the client leaving is 100 ms.
	s, p := proxiedServer(t, 16, nil)
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	p.Delay(300 * time.Millisecond) // every question takes a while
	q := url.Values{}
	for _, since := range []string{"1d", "2d", "3d", "4d", "5d", "6d", "7d", "8d"} {
		q.Add("q", "usage?since="+since+"&by=tenant")
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", hs.URL+"/api/v1/batch?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer root")
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	misses := func() float64 {
		var m dto.Metric
		s.metrics.cache.WithLabelValues(string(cacheMiss)).Write(&m)
		return m.GetCounter().GetValue()
	}
	time.Sleep(200 * time.Millisecond) // the first questions are running
	cancel()                           // and the client leaves
	resp.Body.Close()
	for deadline := time.Now().Add(20 * time.Second); misses() < batchParallel && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // nothing else starts
	if got := misses(); got != batchParallel {
		t.Errorf("%v questions computed after the client left with %d running, want %d", got, batchParallel, batchParallel)
	}
}
