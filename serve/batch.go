package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/costpipe/costpipe/render"
	"github.com/costpipe/costpipe/report"
)

// maxBatch bounds the questions of one batch request.
const maxBatch = 32

// batchParallel is how many questions of one batch run at once. The
// questions start in the order given, so the first ones (the dashboard
// asks for the panels at the top of the page first) are answered first;
// more at once than the machine has cores only makes each slower.
const batchParallel = 4

// errNoEndpoint is a request or a batch question for an endpoint the API
// does not have. The error answered (Server.noEndpoint) wraps it with the
// list of the endpoints served.
var errNoEndpoint = errors.New("no such endpoint")

// ContentTypeNDJSON is the media type of a batch answer: one JSON object
// per line.
const ContentTypeNDJSON = "application/x-ndjson"

// batchItem is one line of a batch answer: the question's position in the
// request, its HTTP status, and its JSON answer (status 200) or its error.
type batchItem struct {
	I      int             `json:"i"`
	Status int             `json:"status"`
	Cache  string          `json:"cache,omitempty"`
	Timing string          `json:"timing,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
	Error  string          `json:"error,omitempty"`
	Param  string          `json:"param,omitempty"`
}

// batch serves GET /api/v1/batch?q=usage%3Fsince%3D24h&q=top%3Fby%3Dmodel…:
// several questions in one request, each q an endpoint's path under
// /api/v1/ with its query string. Each question is answered exactly as
// the single request with the same key (the same checks, tenant scope,
// cache and slots; JSON), and the answers are streamed as NDJSON lines,
// {"i":N,"status":200,"body":…} or {"i":N,"status":4xx,"error":…}, as
// they are ready, not in order. A browser opens at most 6 connections to
// a server, so the dashboard's dozen questions as separate requests queue
// behind each other; in one batch they do not, and the page draws each
// panel as its answers arrive.
func (s *Server) batch(eps map[string]endpoint) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Cache-Control", "no-store")
		tenant, err := s.authenticate(r)
		if err != nil {
			unauthorized(rw, err)
			return
		}
		start := time.Now()
		query, err := parseQuery(r.URL.RawQuery)
		if err != nil {
			s.fail(rw, r, err)
			return
		}
		for name := range query {
			if name != "q" {
				s.fail(rw, r, &report.ParamError{Param: "q", Msg: "a batch takes only q parameters: q=ENDPOINT?QUERY (URL-encoded), once per question"})
				return
			}
		}
		qs := query["q"]
		if len(qs) == 0 || len(qs) > maxBatch {
			s.fail(rw, r, &report.ParamError{Param: "q", Msg: fmt.Sprintf("a batch asks 1 to %d questions: q=ENDPOINT?QUERY (URL-encoded), once per question", maxBatch)})
			return
		}
		rw.Header().Set("Content-Type", ContentTypeNDJSON)
		rw.Header().Set("Vary", "Authorization")
		rw.WriteHeader(http.StatusOK)
		flusher, _ := rw.(http.Flusher)
		if flusher != nil {
			flusher.Flush() // the page sees the answer begin at once
		}

		deadline := start.Add(s.opts.QueryTimeout)
		// The questions' work ends when the client leaves, the server shuts
		// down, or a write fails (cancel).
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		// done is unbuffered: a worker holds its answer until the handler
		// takes it, so at most one answer per worker and the one being
		// written wait for a slow reader (not every answer of the batch,
		// each up to MaxResponseBytes).
		done := make(chan batchItem)
		quit := make(chan struct{}) // closed when the handler returns
		defer close(quit)
		next := make(chan int, len(qs))
		for i := range qs {
			next <- i
		}
		close(next)
		for range min(batchParallel, len(qs)) {
			go func() {
				for i := range next {
					select {
					case done <- s.batchQuestion(ctx, r, eps, tenant, i, qs[i], deadline):
					case <-quit:
						return // nobody writes the answers any more
					}
				}
			}()
		}
		var line bytes.Buffer
		for range qs {
			it := <-done
			line.Reset()
			if err := json.NewEncoder(&line).Encode(it); err != nil {
				it = batchItem{I: it.I, Status: http.StatusInternalServerError, Error: "cannot encode the answer"}
				line.Reset()
				json.NewEncoder(&line).Encode(it)
			}
			if _, err := rw.Write(line.Bytes()); err != nil {
				// The client left: the questions running are abandoned
				// (their computations end unless another request waits for
				// them), the others are not begun.
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
	})
}

// batchQuestion is batchItem run by a batch's worker: a question not begun
// when ctx has ended is answered 503 at once (the client left, or the
// server is shutting down), and a panic is the question's 500, logged
// with its stack, not the end of the process.
func (s *Server) batchQuestion(ctx context.Context, r *http.Request, eps map[string]endpoint, tenant string, i int, q string, deadline time.Time) (it batchItem) {
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			it = batchItem{I: i}
			it.Status, it.Param, it.Error = s.classify(r, &panicError{value: v, stack: stack[:min(len(stack), maxStack)]})
		}
	}()
	if ctx.Err() != nil {
		// Not begun, so not computed for nobody.
		it = batchItem{I: i, Status: http.StatusServiceUnavailable, Error: "the client left"}
		if errors.Is(context.Cause(ctx), errShuttingDown) || s.stop.Err() != nil {
			it.Status, it.Param, it.Error = s.classify(r, errShuttingDown)
		}
		return it
	}
	return s.batchItem(ctx, r, eps, tenant, i, q, deadline)
}

// batchItem answers question i of a batch, q: "ENDPOINT?QUERY".
func (s *Server) batchItem(ctx context.Context, r *http.Request, eps map[string]endpoint, tenant string, i int, q string, deadline time.Time) batchItem {
	it := batchItem{I: i}
	path, rawQuery, _ := strings.Cut(q, "?")
	e, ok := eps[strings.TrimPrefix(path, "/api/v1/")]
	var err error
	var a answered
	if !ok {
		err = s.noEndpoint
	} else if vals, perr := parseQuery(rawQuery); perr != nil {
		err = perr // as the single request answers it
	} else {
		a = s.answer(ctx, e, tenant, vals, render.FormatJSON, "application/json", deadline)
		err = a.err
	}
	if err != nil {
		it.Status, it.Param, it.Error = s.classify(r, err)
		return it
	}
	// The encoder compacts the body onto the item's line.
	it.Status, it.Cache, it.Timing, it.Body = http.StatusOK, string(a.how), a.timing(), a.body
	return it
}
