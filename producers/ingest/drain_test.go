package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/kafkatest"
)

// TestTooLargeWholeBodySentFirst: a client that writes its whole oversized
// body before reading (Python's urllib, many SDKs) reads the 413, not a
// connection reset, whether the gateway refused the body by its declared
// Content-Length, while reading a chunked body, or after decompressing.
func TestTooLargeWholeBodySentFirst(t *testing.T) {
	t.Parallel()
	const limit = 512 << 10
	addr, _ := startSmallBufferGateway(t, func(o *Options) { o.MaxBodyBytes = limit })

	// Over the limit by more than the socket buffers hold.
	plain := bytes.Repeat([]byte(" "), limit*7/4)
	var chunked bytes.Buffer
	for rest := plain; len(rest) > 0; {
		n := min(len(rest), 32<<10)
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", n, rest[:n])
		rest = rest[n:]
	}
	chunked.WriteString("0\r\n\r\n")
	// Small when compressed, over the limit after decompression early on,
	// then 400 KiB of incompressible bytes left unread.
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write(bytes.Repeat([]byte(" "), limit+(64<<10)))
	noise := make([]byte, 400<<10)
	rand.Read(noise)
	zw.Write(noise)
	zw.Close()
	if zipped.Len() > limit {
		t.Fatalf("gzip body of %d bytes is over the limit", zipped.Len())
	}

	for _, tc := range []struct {
		name    string
		headers string
		body    []byte
	}{
		{"content-length", "Content-Length: " + strconv.Itoa(len(plain)) + "\r\n", plain},
		{"chunked", "Transfer-Encoding: chunked\r\n", chunked.Bytes()},
		{"gzip", "Content-Encoding: gzip\r\nContent-Length: " + strconv.Itoa(zipped.Len()) + "\r\n", zipped.Bytes()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.(*net.TCPConn).SetWriteBuffer(16 << 10)
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			req := "POST /v1/events HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer key-acme\r\n" +
				"Content-Type: application/json\r\n" + tc.headers + "\r\n"
			if _, err := conn.Write(append([]byte(req), tc.body...)); err != nil {
				t.Fatalf("writing the request: %v", err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("reading the response: %v", err)
			}
			msg, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(msg, []byte(strconv.Itoa(limit))) {
				t.Fatalf("status %d, body %s; want 413", resp.StatusCode, msg)
			}
		})
	}
}

// startSmallBufferGateway serves a gateway whose connections have small
// receive buffers, so a body the gateway does not read fills the socket
// buffers and the client's write waits on the gateway, as over a real
// network; edit changes the options. It returns the address and the server.
func startSmallBufferGateway(t *testing.T, edit func(*Options)) (string, *Server) {
	t.Helper()
	b := kafkatest.Start(t, 1)
	opts := DefaultOptions()
	opts.Brokers = []string{b.Addr()}
	opts.Keys = testKeys(t)
	opts.ShutdownDelay = 0
	if edit != nil {
		edit(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, smallBufListener{ln}) }()
	t.Cleanup(func() {
		cancel()
		<-served
		srv.Close()
	})
	return ln.Addr().String(), srv
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		// Not below 64 KiB, loopback's segment size: a smaller window
		// opens only by the sender's zero-window probes, seconds apart.
		tc.SetReadBuffer(64 << 10)
	}
	return c, err
}

// TestTooLargeExpectContinue: a client that asked for 100-continue has not
// sent its body, so the 413 comes at once and the connection closes without
// waiting for a body.
func TestTooLargeExpectContinue(t *testing.T) {
	t.Parallel()
	addr, _ := startSmallBufferGateway(t, func(o *Options) { o.MaxBodyBytes = 64 << 10 })
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second)) // well below the 5 s drain
	req := "POST /v1/events HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer key-acme\r\n" +
		"Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the 413: read %d bytes, %v; want the connection closed", n, err)
	}
}

// TestRefusedWholeBodySentFirst: every refusal made before the body is
// read (401, 415, 429 for requests in flight and for bytes), on both
// endpoints, reaches a client that writes its whole body before reading
// (Python's urllib, many SDKs) as an answer, not as a connection reset.
func TestRefusedWholeBodySentFirst(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	addr, srv := startSmallBufferGateway(t, func(o *Options) {
		o.MaxBodyBytes, o.MaxInFlightBytes, o.MaxInFlight = limit, limit*3/2, 2
	})
	// More than the socket buffers and the 256 KiB Go's server discards
	// itself after the handler.
	body := bytes.Repeat([]byte(" "), limit)
	send := func(t *testing.T, path, headers string) *http.Response {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conn.(*net.TCPConn).SetWriteBuffer(16 << 10)
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		req := "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n" + headers +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
		if _, err := conn.Write(append([]byte(req), body...)); err != nil {
			t.Fatalf("writing the request: %v", err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("reading the response: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		return resp
	}
	type refusal struct {
		name, headers string
		code          int
	}
	check := func(t *testing.T, cases []refusal) {
		for _, path := range []string{"/v1/events", "/v1/traces"} {
			for _, tc := range cases {
				t.Run(path+"/"+tc.name, func(t *testing.T) {
					ct := "Content-Type: application/json\r\n"
					if path == "/v1/traces" {
						ct = "Content-Type: application/x-protobuf\r\n"
					}
					headers := strings.ReplaceAll(tc.headers, "CT\r\n", ct)
					resp := send(t, path, headers)
					if resp.StatusCode != tc.code {
						t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
					}
					if tc.code == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
						t.Errorf("429 without Retry-After")
					}
				})
			}
		}
	}
	check(t, []refusal{
		{"no key", "CT\r\n", http.StatusUnauthorized},
		{"unknown key", "Authorization: Bearer nope\r\nCT\r\n", http.StatusUnauthorized},
		{"content type", "Authorization: Bearer key-acme\r\nContent-Type: text/plain\r\n", http.StatusUnsupportedMediaType},
		{"content encoding", "Authorization: Bearer key-acme\r\nCT\r\nContent-Encoding: br\r\n", http.StatusUnsupportedMediaType},
	})
	// One request holding most of the bytes: the next is refused for bytes.
	holdSlot(t, addr, srv, limit, 1)
	check(t, []refusal{{"bytes in flight", "Authorization: Bearer key-acme\r\nCT\r\n", http.StatusTooManyRequests}})
	// Both slots held: refused for requests.
	holdSlot(t, addr, srv, 100, 2)
	check(t, []refusal{{"requests in flight", "Authorization: Bearer key-acme\r\nCT\r\n", http.StatusTooManyRequests}})
}

// holdSlot starts a POST /v1/events of contentLength bytes that sends only
// its first byte, once the gateway has n-1 requests in flight (refused
// ones may still be draining their bodies), and returns once it holds n;
// the connection closes when the test ends.
func holdSlot(t *testing.T, addr string, srv *Server, contentLength int, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); srv.inflight.Load() != n-1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests in flight before holding one, want %d", srv.inflight.Load(), n-1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := "POST /v1/events HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer key-globex\r\n" +
		"Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(contentLength) + "\r\n\r\n["
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); srv.inflight.Load() != n; {
		if time.Now().After(deadline) {
			t.Fatalf("the held request never got in flight (%d in flight, want %d)", srv.inflight.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
