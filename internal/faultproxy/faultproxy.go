// Package faultproxy is a TCP proxy for tests that puts faults between a
// client and a real server (ClickHouse, a Kafka broker): it can delay or
// hold the server's answers while the server goes on working (the client
// waits, as behind a slow network), drop every connection, and refuse new
// ones.
//
// A Proxy's methods are safe for concurrent use. It is closed by t.Cleanup.
package faultproxy

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards connections from Addr to a target address.
type Proxy struct {
	// Addr is where clients connect, "127.0.0.1:PORT".
	Addr string

	target string
	ln     net.Listener

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	held    bool
	release chan struct{} // closed when held ends
	refuse  bool
	delay   time.Duration
	closed  bool
	wg      sync.WaitGroup
}

// Start listens on a free 127.0.0.1 port and forwards to target. The proxy
// is closed when the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultproxy: cannot listen: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}, release: make(chan struct{})}
	close(p.release)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.refuse || p.closed {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.mu.Unlock()
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(s, c, false) // client → server: always flows
		go p.pipe(c, s, true)  // server → client: can be held
	}
}

// pipe copies src to dst; when holdable, each chunk waits while the proxy
// holds.
func (p *Proxy) pipe(dst, src net.Conn, holdable bool) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if holdable {
				read := time.Now()
				p.mu.Lock()
				rel, delay := p.release, p.delay
				p.mu.Unlock()
				<-rel
				time.Sleep(time.Until(read.Add(delay)))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection: close both sides
		}
	}
}

// Hold stops forwarding the server's bytes to clients (requests still reach
// the server, which executes them); Release forwards what was held.
func (p *Proxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.held {
		p.held = true
		p.release = make(chan struct{})
	}
}

// Release ends Hold.
func (p *Proxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held {
		p.held = false
		close(p.release)
	}
}

// Delay forwards each chunk of the server's bytes d after it arrived (0:
// at once), as over a slow link: requests reach the server at once.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Cut closes every open connection (both sides).
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Refuse makes new connections fail (true) or pass again (false).
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection. Safe to call twice.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	if p.held {
		p.held = false
		close(p.release)
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}
