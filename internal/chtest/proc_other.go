//go:build unix && !linux

package chtest

import "syscall"

// sysProcAttr puts the server in its own process group, so it can be
// signalled as a whole. Outside Linux nothing kills it when the test binary
// dies; Main and t.Cleanup do.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
