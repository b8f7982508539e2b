package consumers

import (
	"syscall"
	"unsafe"
)

// mapHashes returns n zeroed id hashes in an anonymous mapping outside the
// Go heap, advised for transparent huge pages, and the function that unmaps
// it; ok is false when the mapping failed.
func mapHashes(n int) (s []idHash, unmap func(), ok bool) {
	b, err := syscall.Mmap(-1, 0, n*int(unsafe.Sizeof(idHash{})), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, nil, false
	}
	const madvHugePage = 14 // MADV_HUGEPAGE; refused or unavailable: 4 KiB pages
	_ = syscall.Madvise(b, madvHugePage)
	return unsafe.Slice((*idHash)(unsafe.Pointer(unsafe.SliceData(b))), n), func() { _ = syscall.Munmap(b) }, true
}
