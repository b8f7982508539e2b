//go:build unix && !linux

package childproc

import "syscall"

// Group puts a child in its own process group. Outside Linux nothing
// signals it when the parent dies: the parent must stop it.
func Group(syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// Tied leaves the child in the parent's process group: without a
// parent-death signal, a terminal's Ctrl-C or hang-up must reach it too,
// or it would outlive a parent killed before it could stop it.
func Tied(syscall.Signal) *syscall.SysProcAttr { return nil }
