//go:build !unix

package childproc

import "syscall"

// Attr is the default: a child shares the parent's console, and the
// parent must stop it.
func Attr(syscall.Signal) *syscall.SysProcAttr { return nil }
