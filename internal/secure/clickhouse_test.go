package secure_test

import (
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/secure"
	"github.com/costpipe/costpipe/internal/testpki"
	"github.com/costpipe/costpipe/warehouse"
)

// TestClickHouseTLS opens a private server's TLS port through
// warehouse.Open with a trusted CA, an untrusted one, and a plaintext
// client, and its plaintext port with TLS, and checks the errors say which.
func TestClickHouseTLS(t *testing.T) {
	pki := testpki.New(t, "costpipe test CA")
	other := testpki.New(t, "another CA")
	s := chtest.StartWithOptions(t, chtest.Options{TLS: &chtest.TLS{CertFile: pki.ServerCert, KeyFile: pki.ServerKey}})

	open := func(dsn string, tlsFiles secure.TLS) error {
		o := warehouse.DefaultOptions()
		o.DSN = dsn
		o.DialTimeout = 30 * time.Second // a loaded CI machine, not a slow answer, is what a shorter one measures
		var err error
		if o.TLS, err = tlsFiles.Config(); err != nil {
			t.Fatal(err)
		}
		w, err := warehouse.Open(t.Context(), o)
		if err == nil {
			defer w.Close()
			var one uint8
			if err := w.Conn().QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
				t.Errorf("SELECT 1 over TLS: %v, %d", err, one)
			}
		}
		return err
	}
	dsn := "clickhouse://" + s.TLSAddr + "/costpipe"

	if err := open(dsn, secure.TLS{CAFile: pki.CAFile}); err != nil {
		t.Errorf("CA file: %v", err)
	}
	if err := open(dsn+"?secure=true&skip_verify=true", secure.TLS{}); err != nil {
		t.Errorf("secure=true&skip_verify=true: %v", err)
	}
	err := open(dsn, secure.TLS{CAFile: other.CAFile})
	if !secure.Permanent(err) || !strings.Contains(err.Error(), "clickhouse: the server's TLS certificate is not trusted (signed by an unknown authority): give the CA that signed it with --clickhouse-ca-file") {
		t.Errorf("untrusted CA: %v", err)
	}
	err = open(dsn+"?secure=true", secure.TLS{})
	if !secure.Permanent(err) || !strings.Contains(err.Error(), "not trusted") {
		t.Errorf("secure=true with the system roots: %v", err)
	}
	// TLS to the plaintext native port, the usual mistake (9000 for 9440):
	// the server answers the hello in plaintext. (This used the HTTP port
	// until its answer once took longer than the 5 s dial timeout in CI, with
	// every package's servers running at once; 200 tries here all answered
	// within 3 ms. The dial timeout is generous for the same reason.)
	err = open("clickhouse://"+s.TCPAddr+"/costpipe", secure.TLS{CAFile: pki.CAFile})
	if !secure.Permanent(err) || !strings.Contains(err.Error(), "does not speak TLS at this address") {
		t.Errorf("TLS to the plaintext native port: %v", err)
	}
	err = open("clickhouse://wrong:password@"+s.TCPAddr+"/costpipe", secure.TLS{})
	if !secure.Permanent(err) || !strings.Contains(err.Error(), "clickhouse: wrong user name or password") {
		t.Errorf("unknown user: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "cannot reach") { // it answered, and refused the login
		t.Errorf("unknown user: %v; want no \"cannot reach\"", err)
	}
}
