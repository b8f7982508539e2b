//go:build !linux

package chtest

// tmpfsDir returns "": only Linux is known to mount a tmpfs at /dev/shm.
func tmpfsDir() string { return "" }
