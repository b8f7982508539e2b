//go:build unix

package nolisten

import (
	"fmt"
	"syscall"
)

// hold binds a TCP socket to a port of 127.0.0.1 that the kernel picks,
// without SO_REUSEADDR and without listening.
func hold() (string, func(), error) {
	// Close-on-exec set under ForkLock, as package net does where
	// SOCK_CLOEXEC is missing (darwin): a child started meanwhile must not
	// inherit the socket and hold the port past the test.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return "", nil, fmt.Errorf("socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return "", nil, fmt.Errorf("bind: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return "", nil, fmt.Errorf("getsockname: %w", err)
	}
	in, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		syscall.Close(fd)
		return "", nil, fmt.Errorf("getsockname: %T, want an IPv4 address", sa)
	}
	return fmt.Sprintf("127.0.0.1:%d", in.Port), func() { syscall.Close(fd) }, nil
}
