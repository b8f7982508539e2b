package ingest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
)

// Errors of reading a request body, mapped to status codes by the handler.
var (
	errTooLarge   = errors.New("request body too large")          // 413
	errOverloaded = errors.New("too much request data in flight") // 429
	// errNeverFits: the buffer the body needs exceeds the whole byte
	// budget (--max-inflight-bytes), so no retry could succeed: 413.
	errNeverFits = errors.New("request body needs more buffer than the in-flight byte budget")
	// errSlowBody: the body did not arrive within the read timeout; the
	// request may succeed when sent again (408, or 503 for OTLP).
	errSlowBody = errors.New("request body not received within the read timeout")
)

// byteBudget bounds the bytes of request bodies held at once.
type byteBudget struct {
	used atomic.Int64
	max  int64
}

// tryAcquire reserves n bytes, or reports false without waiting.
func (b *byteBudget) tryAcquire(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *byteBudget) release(n int64) { b.used.Add(-n) }

// parseEncoding accepts no Content-Encoding, identity and gzip.
func parseEncoding(ce string) (gzipped bool, err error) {
	switch strings.ToLower(strings.TrimSpace(ce)) {
	case "", "identity":
		return false, nil
	case "gzip", "x-gzip":
		return true, nil
	}
	return false, fmt.Errorf("cannot decode Content-Encoding %s: want gzip or none", quote(ce))
}

var gzipReaders sync.Pool // of *gzip.Reader

// minBodyBuf is the first buffer size for a body of unknown length.
const minBodyBuf = 64 << 10

// readBody reads r's body whole, decompressing it when gzipped. It holds at
// most limit bytes (before and after decompression; errTooLarge beyond) and
// reserves from budget every byte of buffer it allocates (errOverloaded
// when the budget is spent now, errNeverFits when the buffer would exceed
// the whole budget). The caller must release *reserved bytes from budget
// once done with the returned buffer, also after an error. *started tells
// that reading the body began (a client that asked for 100-continue was
// told to send it).
func readBody(w http.ResponseWriter, r *http.Request, gzipped bool, limit int64, budget *byteBudget, reserved *int64, started *bool) ([]byte, error) {
	var src io.Reader = &startedReader{r: http.MaxBytesReader(w, r.Body, limit), started: started}
	size := int64(minBodyBuf)
	if r.ContentLength >= 0 {
		size = r.ContentLength
		if gzipped {
			size = 4 * r.ContentLength
		}
	}
	readErr := bodyErr
	if gzipped {
		gz := &gzipSource{r: src}
		readErr = gz.err
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(gz)
		} else {
			err = zr.Reset(gz)
		}
		if err != nil {
			return nil, readErr(err)
		}
		defer gzipReaders.Put(zr)
		src = zr
	}
	// An estimate (4× for gzip) is cut to what the budget can ever hold;
	// the buffer grows if the body needs more.
	size = min(max(size, 512), limit, budget.max)
	if !budget.tryAcquire(size) {
		return nil, errOverloaded
	}
	*reserved = size
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			// Full: the body may end here (a declared length fills the
			// buffer exactly). One more byte tells.
			var probe [1]byte
			n, err := io.ReadFull(src, probe[:])
			if n == 0 && err == io.EOF {
				return buf, nil
			}
			if n == 0 {
				// io.ErrUnexpectedEOF too: a chunked body or a gzip stream
				// cut short, never a whole body.
				return nil, readErr(err)
			}
			if int64(len(buf)) >= limit {
				return nil, errTooLarge
			}
			// Double, up to limit. The old buffer stays reserved until the
			// request ends: an overestimate, never an underestimate.
			grow := max(min(int64(cap(buf)), limit-int64(cap(buf))), 1)
			if *reserved+int64(len(buf))+grow > budget.max {
				return nil, errNeverFits
			}
			if !budget.tryAcquire(int64(len(buf)) + grow) {
				return nil, errOverloaded
			}
			*reserved += int64(len(buf)) + grow
			nb := make([]byte, len(buf), int64(len(buf))+grow)
			copy(nb, buf)
			buf = append(nb, probe[0])
			continue
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, readErr(err)
		}
	}
}

// startedReader notes the first Read of a request body: from then on the
// client was told to send it (100-continue).
type startedReader struct {
	r       io.Reader
	started *bool
}

func (s *startedReader) Read(p []byte) (int, error) {
	*s.started = true
	return s.r.Read(p)
}

// bodyErr maps a read error: the MaxBytesReader's limit is errTooLarge.
func bodyErr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errSlowBody
	}
	return fmt.Errorf("cannot read the request body: %w", err)
}

// gzipSource is a gzip-encoded body as the gzip reader reads it: it counts
// the bytes and keeps the first two, so that an error can say whether the
// body was empty, not gzip at all, or cut short ("EOF" says none of it).
type gzipSource struct {
	r    io.Reader
	n    int64
	head [2]byte
	rerr error // the body's own error, but its end
}

// Read reads from the body.
func (g *gzipSource) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	for i := 0; i < n && g.n+int64(i) < int64(len(g.head)); i++ {
		g.head[g.n+int64(i)] = p[i]
	}
	g.n += int64(n)
	if err != nil && err != io.EOF {
		g.rerr = err
	}
	return n, err
}

// err maps an error of reading a gzip-encoded body (see bodyErr): an
// empty body, one that does not start with gzip's magic bytes, or one that
// ends inside the gzip stream says so.
func (g *gzipSource) err(err error) error {
	switch {
	case g.rerr != nil: // reading the body failed (over the limit, too slow, or the client left), not gzip
		return bodyErr(g.rerr)
	case g.n == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		return errors.New("cannot read the request body: it is empty, but Content-Encoding is gzip (an empty gzip stream is 20 bytes)")
	case g.head[0] != 0x1f || g.n > 1 && g.head[1] != 0x8b:
		return errors.New("cannot read the request body: Content-Encoding is gzip, but the body does not start as gzip does (bytes 1f 8b)")
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("cannot read the request body: the gzip body is truncated: it ends after %d bytes, inside the gzip stream", g.n)
	}
	return bodyErr(err) // "gzip: invalid checksum", …
}
