//go:build !unix

package childproc

import "syscall"

// Group is the default: a child shares the parent's console, and the
// parent must stop it.
func Group(syscall.Signal) *syscall.SysProcAttr { return nil }

// Tied is the default, as Group.
func Tied(syscall.Signal) *syscall.SysProcAttr { return nil }
