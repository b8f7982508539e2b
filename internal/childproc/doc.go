// Package childproc sets up the child processes costpipe starts (the
// demo's `costpipe alerts run`, the tests' ClickHouse servers) so that they
// do not outlive it: each in a process group of its own, which the parent
// signals and a terminal's Ctrl-C does not reach behind the parent's back,
// and, on Linux, sent a signal when the parent dies.
package childproc
