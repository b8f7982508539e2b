//go:build !linux

package hugeheap

func init() { result.Skipped = "huge pages are asked for on Linux only" }
