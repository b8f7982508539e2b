package warehouse

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Unavailable reports whether err says the server could not be reached or
// dropped the connection (refused, reset, closed mid-answer, a dial that
// timed out, a connection it accepted and never greeted, a host name that
// does not resolve): an outage, worth a retry later, not a fault of the
// statement. An error the server answered with (a clickhouse.Exception), a
// query's read that reached its deadline, a context's end and anything else
// are not.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return false
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
		syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ETIMEDOUT, io.EOF, io.ErrUnexpectedEOF} {
		if errors.Is(err, e) {
			return true
		}
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	// A failed dial is an outage, whatever its cause; a read or write
	// that failed is one unless it only hit its deadline (a slow query
	// cut by the caller's time bound, which is the caller's to report) —
	// but a deadline hit during the handshake, before any query, is a
	// server that accepts connections and does not answer them (hung,
	// starting, a port forward to nothing).
	var op *net.OpError
	return errors.As(err, &op) && (op.Op == "dial" || !op.Timeout() || inHandshake(err))
}

// inHandshake reports whether err arose while clickhouse-go greeted a new
// connection (its errors there start "handshake: ").
func inHandshake(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if strings.HasPrefix(err.Error(), "handshake: ") {
			return true
		}
	}
	return false
}

// PoolExhausted reports whether err is clickhouse-go's timeout waiting for
// a free connection of the pool (every connection busy for the dial
// timeout): the process is saturated, not ClickHouse down, and a client
// is told to come back (503), not that the query failed.
func PoolExhausted(err error) bool { return errors.Is(err, clickhouse.ErrAcquireConnTimeout) }
