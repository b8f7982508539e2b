//go:build unix && !linux

package childproc

import "syscall"

// Attr puts a child in its own process group. Outside Linux nothing
// signals it when the parent dies: the parent must stop it.
func Attr(syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
