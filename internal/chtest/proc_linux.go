package chtest

import "syscall"

// sysProcAttr puts the server in its own process group, so it can be
// signalled as a whole, and kills it when the test binary dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
