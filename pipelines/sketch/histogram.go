package sketch

import (
	"fmt"
	"math"
	"math/bits"
	"unsafe"
)

// Histogram is a sparse, mergeable map from bucket index to count for one
// key-window: the values added to it, or the sum of the histograms merged
// into it. The zero value is an empty histogram ready for use.
//
// It stores only the buckets it saw, as a sorted slice of int16 indices and
// a parallel slice of counts: 6 bytes per distinct bucket while the total
// count fits 32 bits, 10 bytes once it exceeds math.MaxUint32 (the counts
// are then widened to 64 bits), plus an 80-byte header. The total count is
// at most math.MaxUint64; Add, AddN and Merge panic beyond that.
//
// A Histogram is not safe for concurrent use, and it must not be copied by
// value once used (the copy would share storage): Merge it into a new one.
type Histogram struct {
	idx  []int16  // distinct bucket indices, ascending (ZeroIndex first)
	cnt  []uint32 // counts, parallel to idx, while n ≤ math.MaxUint32; nil once wide
	wide []uint64 // counts, parallel to idx, once n exceeded math.MaxUint32; nil before
	n    uint64   // total count
}

// headerBytes is the size of a Histogram without its slices' contents.
const headerBytes = int(unsafe.Sizeof(Histogram{}))

// errOverflow is the panic of Add, AddN and Merge when the total count
// would exceed math.MaxUint64.
const errOverflow = "sketch: histogram count overflows uint64"

// Add records one value x, in milliseconds, into its bucket (Index(x)). The
// caller validated x: finite and ≥ 0 (see Index for other inputs). It does
// not allocate unless x falls into a bucket the histogram has not seen yet.
func (h *Histogram) Add(x float64) {
	i := Index(x)
	if h.n >= math.MaxUint32 {
		if h.n == math.MaxUint64 {
			panic(errOverflow)
		}
		if h.wide == nil {
			h.widen()
		}
	}
	h.n++
	j, found := h.search(i)
	if !found {
		h.insert(j, i)
	}
	if h.wide != nil {
		h.wide[j]++
	} else {
		h.cnt[j]++
	}
}

// AddN adds n to the count of bucket i, which must be ZeroIndex or in
// [MinIndex, MaxIndex]: it panics otherwise. It is the way to rebuild a
// histogram from stored (index, count) pairs one at a time; FromArrays
// validates untrusted arrays instead of panicking.
func (h *Histogram) AddN(i int16, n uint64) {
	if !validIndex(i) {
		panic(fmt.Sprintf("sketch: bucket index %d is outside [%d, %d] and not ZeroIndex", i, MinIndex, MaxIndex))
	}
	h.addN(i, n)
}

// addN is AddN for a valid index.
func (h *Histogram) addN(i int16, n uint64) {
	if n == 0 {
		return
	}
	total, carry := bits.Add64(h.n, n, 0)
	if carry != 0 {
		panic(errOverflow)
	}
	if total > math.MaxUint32 && h.wide == nil {
		h.widen()
	}
	h.n = total
	j, found := h.search(i)
	if !found {
		h.insert(j, i)
	}
	if h.wide != nil {
		h.wide[j] += n
	} else {
		h.cnt[j] += uint32(n) // n ≤ total ≤ MaxUint32
	}
}

// Merge adds every bucket count of o to h, so that h becomes the histogram
// of both value sets. o is not modified (it may be h itself, which doubles
// every count); a nil o is empty.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	total, carry := bits.Add64(h.n, o.n, 0)
	if carry != 0 {
		panic(errOverflow)
	}
	if total > math.MaxUint32 && h.wide == nil {
		h.widen()
	}
	if h == o {
		for j := range h.idx {
			h.setCount(j, 2*h.count(j))
		}
		h.n = total
		return
	}

	// Count the buckets of o that h lacks.
	added := 0
	for i, j := 0, 0; j < len(o.idx); {
		switch {
		case i < len(h.idx) && h.idx[i] < o.idx[j]:
			i++
		case i < len(h.idx) && h.idx[i] == o.idx[j]:
			i++
			j++
		default:
			added++
			j++
		}
	}

	if added == 0 {
		for i, j := 0, 0; j < len(o.idx); i++ {
			if h.idx[i] == o.idx[j] {
				h.setCount(i, h.count(i)+o.count(j))
				j++
			}
		}
		h.n = total
		return
	}

	// Merge backwards in place, from the ends of both.
	l := len(h.idx)
	h.resize(l + added)
	i, j, k := l-1, len(o.idx)-1, l+added-1
	for j >= 0 {
		switch {
		case i >= 0 && h.idx[i] > o.idx[j]:
			h.idx[k] = h.idx[i]
			h.setCount(k, h.count(i))
			i--
		case i >= 0 && h.idx[i] == o.idx[j]:
			h.idx[k] = h.idx[i]
			h.setCount(k, h.count(i)+o.count(j))
			i--
			j--
		default:
			h.idx[k] = o.idx[j]
			h.setCount(k, o.count(j))
			j--
		}
		k--
	}
	h.n = total
}

// Count returns the number of values in the histogram.
func (h *Histogram) Count() uint64 {
	return h.n
}

// Len returns the number of distinct buckets: the length of the arrays
// AppendArrays appends.
func (h *Histogram) Len() int {
	return len(h.idx)
}

// Reset empties the histogram and keeps its storage for reuse.
func (h *Histogram) Reset() {
	h.idx = h.idx[:0]
	if h.wide != nil {
		h.cnt = make([]uint32, 0, cap(h.idx))
		h.wide = nil
	}
	h.cnt = h.cnt[:0]
	h.n = 0
}

// AppendArrays appends the histogram's buckets to idx and their counts to
// cnt and returns the extended slices: indices strictly ascending, no zero
// count. This is the ClickHouse insert format, two parallel columns
// (idx Array(Int16), cnt Array(UInt64)).
func (h *Histogram) AppendArrays(idx []int16, cnt []uint64) ([]int16, []uint64) {
	idx = append(idx, h.idx...)
	if h.wide != nil {
		return idx, append(cnt, h.wide...)
	}
	for _, c := range h.cnt {
		cnt = append(cnt, uint64(c))
	}
	return idx, cnt
}

// FromArrays returns the histogram of the parallel arrays idx and cnt, as
// read from ClickHouse. The indices may be unsorted and repeated (their
// counts are summed) and counts may be zero (ignored). It fails when the
// lengths differ, when an index is neither ZeroIndex nor in [MinIndex,
// MaxIndex], or when the total count overflows uint64.
func FromArrays(idx []int16, cnt []uint64) (*Histogram, error) {
	if len(idx) != len(cnt) {
		return nil, fmt.Errorf("cannot decode histogram: %d bucket indices but %d counts", len(idx), len(cnt))
	}
	var total uint64
	entries := 0
	sorted := true
	for k, i := range idx {
		if !validIndex(i) {
			return nil, fmt.Errorf("cannot decode histogram: bucket index %d at position %d is outside [%d, %d] and not %d",
				i, k, MinIndex, MaxIndex, ZeroIndex)
		}
		var carry uint64
		total, carry = bits.Add64(total, cnt[k], 0)
		if carry != 0 {
			return nil, fmt.Errorf("cannot decode histogram: total count overflows uint64 at position %d (count %d)", k, cnt[k])
		}
		if cnt[k] != 0 {
			entries++
		}
		if k > 0 && idx[k-1] >= i {
			sorted = false
		}
	}

	h := &Histogram{n: total, idx: make([]int16, 0, entries)}
	if total > math.MaxUint32 {
		h.wide = make([]uint64, 0, entries)
	} else {
		h.cnt = make([]uint32, 0, entries)
	}
	if sorted {
		for k, i := range idx {
			if c := cnt[k]; c != 0 {
				h.idx = append(h.idx, i)
				if h.wide != nil {
					h.wide = append(h.wide, c)
				} else {
					h.cnt = append(h.cnt, uint32(c))
				}
			}
		}
		return h, nil
	}
	h.n = 0
	for k, i := range idx {
		h.addN(i, cnt[k])
	}
	return h, nil
}

// Quantile returns the value at quantile q, in milliseconds: the value of
// the bucket holding the value of rank ⌈q·n⌉ (1-based, clamped to [1, n];
// q ≤ 0 is the minimum, q ≥ 1 the maximum), within Alpha relative error of
// the exact value at that rank. ok is false when the histogram is empty or q
// is NaN.
func (h *Histogram) Quantile(q float64) (v float64, ok bool) {
	if h.n == 0 || q != q {
		return 0, false
	}
	r := rank(q, h.n)
	var cum uint64
	if h.wide != nil {
		for j, c := range h.wide {
			if cum += c; cum >= r {
				return Value(h.idx[j]), true
			}
		}
	} else {
		for j, c := range h.cnt {
			if cum += uint64(c); cum >= r {
				return Value(h.idx[j]), true
			}
		}
	}
	return Value(h.idx[len(h.idx)-1]), true // not reached: the counts sum to n
}

// rank is the 1-based rank of quantile q among n > 0 values: ⌈q·n⌉ clamped
// to [1, n].
func rank(q float64, n uint64) uint64 {
	if !(q > 0) {
		return 1
	}
	if q >= 1 {
		return n
	}
	r := math.Ceil(q * float64(n))
	switch {
	case r < 1:
		return 1
	case r >= float64(n):
		return n
	}
	return uint64(r)
}

// Bytes returns the approximate memory footprint of the histogram in bytes,
// header and allocated capacity included, for memory accounting.
func (h *Histogram) Bytes() int {
	return headerBytes + 2*cap(h.idx) + 4*cap(h.cnt) + 8*cap(h.wide)
}

// search returns the position of the first index ≥ i, and whether it is i.
func (h *Histogram) search(i int16) (int, bool) {
	s := h.idx
	if len(s) == 0 {
		return 0, false
	}
	base, n := 0, len(s)
	for n > 1 {
		// Branch-free: the sign of s[base+half]−i selects whether to
		// advance, so the loop does not stall on mispredictions.
		half := n >> 1
		base += half & ((int(s[base+half]) - int(i)) >> 63)
		n -= half
	}
	if s[base] < i {
		base++
	}
	return base, base < len(s) && s[base] == i
}

// insert inserts bucket i with count 0 at position j.
func (h *Histogram) insert(j int, i int16) {
	l := len(h.idx)
	h.resize(l + 1)
	copy(h.idx[j+1:], h.idx[j:l])
	h.idx[j] = i
	if h.wide != nil {
		copy(h.wide[j+1:], h.wide[j:l])
		h.wide[j] = 0
	} else {
		copy(h.cnt[j+1:], h.cnt[j:l])
		h.cnt[j] = 0
	}
}

// capacities are the capacities the parallel slices grow through: steps of
// 1.14–2×, each a multiple of 4 whose 2- and 4-byte arrays fill Go's
// allocation size classes up to 1792 bytes, ending at the largest possible
// number of buckets (the regular buckets and the zero bucket).
var capacities = [...]int{4, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256,
	320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, numBuckets + 1}

// resize sets the length of the parallel slices to l, growing their
// capacity to the next step of capacities when needed; the new tail is
// unspecified.
func (h *Histogram) resize(l int) {
	if l > cap(h.idx) {
		c := l
		for _, step := range capacities {
			if step >= l {
				c = step
				break
			}
		}
		idx := make([]int16, len(h.idx), c)
		copy(idx, h.idx)
		h.idx = idx
		if h.wide != nil {
			wide := make([]uint64, len(h.wide), c)
			copy(wide, h.wide)
			h.wide = wide
		} else {
			cnt := make([]uint32, len(h.cnt), c)
			copy(cnt, h.cnt)
			h.cnt = cnt
		}
	}
	h.idx = h.idx[:l]
	if h.wide != nil {
		h.wide = h.wide[:l]
	} else {
		h.cnt = h.cnt[:l]
	}
}

// widen switches the counts to 64 bits.
func (h *Histogram) widen() {
	wide := make([]uint64, len(h.cnt), cap(h.idx))
	for j, c := range h.cnt {
		wide[j] = uint64(c)
	}
	h.wide, h.cnt = wide, nil
}

// count returns the count at position j.
func (h *Histogram) count(j int) uint64 {
	if h.wide != nil {
		return h.wide[j]
	}
	return uint64(h.cnt[j])
}

// setCount sets the count at position j; c fits 32 bits unless h is wide.
func (h *Histogram) setCount(j int, c uint64) {
	if h.wide != nil {
		h.wide[j] = c
	} else {
		h.cnt[j] = uint32(c)
	}
}
