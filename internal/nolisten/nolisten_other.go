//go:build !unix

package nolisten

import "net"

// hold listens on a free port and closes it: another program may take the
// port meanwhile (the race the unix version avoids).
func hold() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, func() {}, nil
}
