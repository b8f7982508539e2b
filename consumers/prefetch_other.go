//go:build !amd64 && !arm64

package consumers

import "unsafe"

// prefetch is a no-op where costpipe has no prefetch instruction for the
// architecture (see prefetch_asm.go).
func prefetch(addr unsafe.Pointer) {}
