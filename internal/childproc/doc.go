// Package childproc sets up the child processes costpipe starts so that
// they do not outlive it: the tests' ClickHouse and ZooKeeper servers
// (Group: a process group of their own, signalled as a whole) and the
// demo's `costpipe alerts run` (Tied: stopped by the demo, and with it).
// On Linux both are sent a signal when the parent dies.
package childproc
