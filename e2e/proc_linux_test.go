package e2e

import "syscall"

// sysProcAttr kills an aggregator when the test binary dies, so a panic or a
// timeout leaves no stray process behind. Pdeathsig fires when the starting
// thread exits: spawnAggregator starts it from a goroutine locked to its
// thread.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
