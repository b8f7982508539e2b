//go:build !linux

package hugeheap

// Advise does nothing here: huge pages are asked for on Linux only.
func Advise() Result { return Result{Skipped: "huge pages are asked for on Linux only"} }
