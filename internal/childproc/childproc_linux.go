package childproc

import "syscall"

// Attr puts a child in its own process group and sends it onParentDeath
// when the parent dies (Linux's parent-death signal). That signal fires
// when the thread that started the child exits: a caller that locks its
// goroutine to a thread (runtime.LockOSThread) and lets the goroutine end
// ends the child too.
func Attr(onParentDeath syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: onParentDeath}
}
