package chtest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// TLS makes a private server accept native-protocol connections over TLS
// as well, on Server.TLSAddr (<tcp_port_secure>), with a certificate the
// test made (internal/testpki). The plaintext port stays open: the helper's
// own connections use it.
type TLS struct {
	// CertFile and KeyFile are the server's PEM certificate and key.
	CertFile, KeyFile string
}

// tlsAddr is Server.TLSAddr of a server on port.
func tlsAddr(t *TLS, port int) string {
	if t == nil {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// writeTLSConfig writes config.d/tls.xml, which the server merges into
// config.xml: the secure native port and the OpenSSL server settings
// (18.16's names, which current releases still read). Client certificates
// are not requested.
func writeTLSConfig(dir string, port int, t *TLS) error {
	for _, f := range []string{t.CertFile, t.KeyFile} {
		if strings.ContainsAny(f, "<>&") {
			return fmt.Errorf("cannot use TLS file %q in the server's XML config", f)
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("cannot use TLS file: %w", err)
		}
	}
	xml := fmt.Sprintf(`<?xml version="1.0"?>
<!-- Written by internal/chtest: the native protocol over TLS. -->
<yandex>
  <tcp_port_secure>%d</tcp_port_secure>
  <openSSL>
    <server>
      <certificateFile>%s</certificateFile>
      <privateKeyFile>%s</privateKeyFile>
      <verificationMode>none</verificationMode>
      <loadDefaultCAFile>false</loadDefaultCAFile>
      <cacheSessions>true</cacheSessions>
      <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
      <preferServerCiphers>true</preferServerCiphers>
    </server>
  </openSSL>
</yandex>
`, port, t.CertFile, t.KeyFile)
	return writeConfigD(dir, "tls.xml", xml)
}

// writeConfigD writes a file into the server's config.d, which the server
// merges into config.xml.
func writeConfigD(dir, name, content string) error {
	d := filepath.Join(dir, "config.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("cannot create %q: %w", d, err)
	}
	p := filepath.Join(d, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		return fmt.Errorf("cannot write %q: %w", p, err)
	}
	return nil
}
