package secure

import (
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ClickHouse exception codes of refused credentials: UNKNOWN_USER and
// WRONG_PASSWORD (18.x–22.x), AUTHENTICATION_FAILED (later releases).
const (
	codeUnknownUser          = 192
	codeWrongPassword        = 193
	codeAuthenticationFailed = 516
)

// ClickHouseHints name, in errors, the settings a user changes. The zero
// value means costpipe's flag and DSN parameter names.
type ClickHouseHints struct {
	CAFile, CertFile, KeyFile string
}

// DefaultClickHouseHints are costpipe's flag names.
func DefaultClickHouseHints() ClickHouseHints {
	return ClickHouseHints{CAFile: "--clickhouse-ca-file", CertFile: "--clickhouse-cert-file", KeyFile: "--clickhouse-key-file"}
}

// ExplainClickHouse returns err with what it means: an *Error for a
// certificate, TLS or authentication failure, err with a hint when the
// server closed the connection at once, err itself otherwise (nil for nil).
// secure tells whether the connection used TLS.
func ExplainClickHouse(err error, secure bool) error {
	if err == nil || Permanent(err) {
		return err
	}
	h := DefaultClickHouseHints()
	if e := explainTLS(err, hints{what: "clickhouse", caFile: h.CAFile, serverName: "tls_server_name=NAME in the DSN",
		clientCert: h.CertFile + " and " + h.KeyFile, noTLS: "drop secure=true from the DSN (and " + h.CAFile + ", which turns TLS on too)"}); e != nil {
		return e
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case codeUnknownUser, codeWrongPassword, codeAuthenticationFailed:
			return &Error{Reason: "authentication failed", err: err, msg: fmt.Sprintf(
				"clickhouse: wrong user name or password (the DSN's user:password@): the server refused the login with %s (code %d): %v", ex.Name, ex.Code, err)}
		}
	}
	if !secure && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)) {
		return fmt.Errorf("%w (the server closed the connection: is this its TLS port? then add secure=true to the DSN)", err)
	}
	return err
}
