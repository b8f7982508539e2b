package childproc

import "syscall"

// Group puts a child in its own process group, so that it can be
// signalled as a whole, and sends it onParentDeath when the parent dies
// (Linux's parent-death signal). That signal fires when the thread that
// started the child exits: a caller that locks its goroutine to a thread
// (runtime.LockOSThread) and lets the goroutine end ends the child too.
func Group(onParentDeath syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: onParentDeath}
}

// Tied is Group on Linux: the parent's own Ctrl-C does not reach the
// child behind its back (the parent stops it), and the child gets
// onParentDeath if the parent dies first.
func Tied(onParentDeath syscall.Signal) *syscall.SysProcAttr { return Group(onParentDeath) }
