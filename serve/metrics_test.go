package serve

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestInstrumentKeepsFlusher: a handler behind the metrics wrapper can
// flush (the batch streams its answers line by line; the wrapper hid the
// connection's http.Flusher, so nothing was sent before the last answer).
func TestInstrumentKeepsFlusher(t *testing.T) {
	t.Parallel()
	s := &Server{metrics: newMetrics(func() uint64 { return 0 })}
	rec := httptest.NewRecorder()
	var flushed bool
	s.instrument("test", http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		f, ok := rw.(http.Flusher)
		if !ok {
			t.Fatal("the instrumented ResponseWriter is no http.Flusher")
		}
		rw.Write([]byte("line 1\n"))
		f.Flush()
		flushed = rec.Flushed
		rw.Write([]byte("line 2\n"))
	})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if !flushed || rec.Body.String() != "line 1\nline 2\n" || rec.Code != http.StatusOK {
		t.Errorf("flushed %v, body %q, code %d; want the first line flushed before the second", flushed, rec.Body.String(), rec.Code)
	}
}
