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
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/kafkatest"
)

// TestTooLargeWholeBodySentFirst: a client that writes its whole oversized
// body before reading (Python's urllib, many SDKs) reads the 413, not a
// connection reset, whether the gateway refused the body by its declared
// Content-Length, while reading a chunked body, or after decompressing.
func TestTooLargeWholeBodySentFirst(t *testing.T) {
	const limit = 512 << 10
	addr := startSmallBufferGateway(t, limit)

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
// network; it returns the address.
func startSmallBufferGateway(t *testing.T, maxBody int64) string {
	t.Helper()
	b := kafkatest.Start(t, 1)
	opts := DefaultOptions()
	opts.Brokers = []string{b.Addr()}
	opts.Keys = testKeys(t)
	opts.MaxBodyBytes = maxBody
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
	return ln.Addr().String()
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(16 << 10)
	}
	return c, err
}

// TestTooLargeExpectContinue: a client that asked for 100-continue has not
// sent its body, so the 413 comes at once and the connection closes without
// waiting for a body.
func TestTooLargeExpectContinue(t *testing.T) {
	addr := startSmallBufferGateway(t, 64<<10)
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
