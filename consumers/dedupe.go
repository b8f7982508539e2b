package consumers

import (
	"hash/maphash"
	"runtime"
	"time"
	"unsafe"
)

// idHash is a 128-bit hash of an event_id: two independently seeded 64-bit
// hashes, so a false "duplicate" (which would drop a real event) needs a
// 128-bit collision.
type idHash [2]uint64

// dedupeGenerations is how many generations the window is cut into: an id is
// remembered for at least (g-1)/g of the window and at most the window.
const dedupeGenerations = 4

// dedupe remembers the event_ids of one partition seen within a window of
// arrival time (the Kafka record timestamp), bounded in entries. Not safe for
// concurrent use.
//
// The window is cut into dedupeGenerations generations by arrival time; each
// is one hash set. A lookup checks every generation; when the newest arrival
// time moves into a new generation, the oldest set is dropped whole (no
// per-entry bookkeeping). An id always goes into the newest generation,
// whatever its event time: a retry of a backfilled or delayed event is a
// duplicate too. An id is therefore remembered for at least
// (generations−1) × span = the window of arrival time after it was last
// added. When the current generation holds max/generations ids, a new
// generation starts early and the oldest is dropped (counted in evicted): the
// window shrinks under load instead of memory growing.
type dedupe struct {
	span   int64 // seconds of arrival time per generation
	perGen int
	seeds  [2]maphash.Seed
	gens   [dedupeGenerations]*idSet // gens[0] is the newest
	// slots[i] is the filter bit of gens[i].
	slots [dedupeGenerations]uint8
	// filter is a one-hash filter of all generations at once: a table of
	// 4-bit cells (16 per word, about 8 cells per id at capacity), bit
	// slots[i] of a cell set when an id of gens[i] maps to it. One load
	// tells which generations may hold an id: most lookups of a new id stop
	// there, in a table that fits the CPU cache, instead of probing large
	// hash sets. A dropped generation's bit is cleared in every cell.
	filter  []uint64
	mask    uint64 // cells − 1
	genOf   int64  // generation number (arrival seconds / span) of gens[0]
	started bool
	evicted uint64
}

// cellBits has, in every 4-bit cell of a filter word, the bit of slot 0.
const cellBits = 0x1111111111111111

func newDedupe(window time.Duration, max int, seeds [2]maphash.Seed) *dedupe {
	span := int64(window/time.Second) / (dedupeGenerations - 1)
	if span < 1 {
		span = 1
	}
	perGen := max / dedupeGenerations
	cells := uint64(64)
	for cells < uint64(perGen)*8 {
		cells <<= 1
	}
	d := &dedupe{span: span, perGen: perGen, seeds: seeds, mask: cells - 1}
	for i := range d.slots {
		d.slots[i] = uint8(i)
	}
	return d
}

func (d *dedupe) hash(id string) idHash {
	// The low bit of the first word is forced to 1 so that no id hashes to
	// the zero value, which marks an empty slot (127 bits remain).
	return idHash{maphash.String(d.seeds[0], id) | 1, maphash.String(d.seeds[1], id)}
}

// idSet is an insert-only open-addressing hash set of id hashes (linear
// probing, load ≤ 3/4). Generations are dropped whole, so it needs no delete;
// one probe usually costs one cache line, less than a Go map.
//
// A large set (offHeapBytes and up) lives outside the Go heap, in an
// anonymous mapping advised for transparent huge pages (Linux; see
// mapHashes). The sets are the aggregator's largest state (up to 16 MiB per
// 1,000,000 ids of --dedupe-max-ids per partition): on the heap, every byte
// of them doubles the heap goal and is faulted in 4 KiB at a time (each
// fault costs microseconds on a virtual machine; catching up, page faults
// were a fifth of the aggregator's CPU); a huge page is one fault per 2 MiB.
// They hold no pointers, so the garbage collector need not see them. A
// mapping is unmapped when the set grows or its generation is dropped
// (release), or by a cleanup once the set is unreachable (a dedupe window
// replaced or forgotten whole).
type idSet struct {
	slots   []idHash
	n       int
	unmap   func() // unmaps slots when they are off the heap, else nil
	cleanup runtime.Cleanup
}

// offHeapBytes is the smallest set kept outside the Go heap.
const offHeapBytes = 2 << 20

func newIDSet(hint int) *idSet {
	size := 64
	for size*3/4 < hint {
		size <<= 1
	}
	s := &idSet{}
	s.alloc(size)
	return s
}

// alloc gives s n empty slots (the caller releases the old ones).
func (s *idSet) alloc(n int) {
	s.slots, s.unmap, s.cleanup = nil, nil, runtime.Cleanup{}
	if n*int(unsafe.Sizeof(idHash{})) >= offHeapBytes {
		if slots, unmap, ok := mapHashes(n); ok {
			s.slots, s.unmap = slots, unmap
			s.cleanup = runtime.AddCleanup(s, func(unmap func()) { unmap() }, unmap)
			return
		}
	}
	s.slots = make([]idHash, n)
}

// release frees s's slots now; s must not be used after.
func (s *idSet) release() {
	if s.unmap != nil {
		s.cleanup.Stop()
		s.unmap()
	}
	s.slots, s.unmap, s.n = nil, nil, 0
}

func (s *idSet) has(h idHash) bool {
	mask := uint64(len(s.slots) - 1)
	for i := h[1] & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case idHash{}:
			return false
		}
	}
}

func (s *idSet) add(h idHash) {
	if (s.n+1)*4 > len(s.slots)*3 {
		old := *s
		s.alloc(len(old.slots) * 2)
		s.n = 0
		for _, x := range old.slots {
			if x != (idHash{}) {
				s.insert(x)
			}
		}
		old.release()
	}
	s.insert(h)
}

func (s *idSet) insert(h idHash) {
	mask := uint64(len(s.slots) - 1)
	i := h[1] & mask
	for s.slots[i] != (idHash{}) {
		if s.slots[i] == h {
			return
		}
		i = (i + 1) & mask
	}
	s.slots[i] = h
	s.n++
}

// seen reports whether id was seen in the window and remembers it otherwise.
// at is the record's arrival time in unix seconds; arrival times that go
// backwards (producers' clocks differ) leave the window where it is.
func (d *dedupe) seen(id string, at int64) bool { return d.seenHash(d.hash(id), at) }

// prefetch starts loading the memory seenHash(h, …) reads first: the
// filter word and the newest generation's slot of h. Catching up, nearly
// every id is new and both are cache misses (the filter is about 1 MiB and
// the sets many MiB per partition); prefetching a few events ahead
// overlaps those misses instead of paying them one after the other.
func (d *dedupe) prefetch(h idHash) {
	if !d.started {
		return
	}
	cell := (h[0] >> 1) & d.mask
	prefetch(unsafe.Pointer(&d.filter[cell>>4]))
	if g := d.gens[0]; g != nil && len(g.slots) > 0 {
		prefetch(unsafe.Pointer(&g.slots[h[1]&uint64(len(g.slots)-1)]))
	}
}

// seenHash is seen of the id whose hash is h.
func (d *dedupe) seenHash(h idHash, at int64) bool {
	cell := (h[0] >> 1) & d.mask
	word, shift := cell>>4, (cell&15)*4
	if d.started {
		if bits := (d.filter[word] >> shift) & 0xF; bits != 0 {
			for i, g := range d.gens {
				if g != nil && bits&(1<<d.slots[i]) != 0 && g.has(h) {
					return true
				}
			}
		}
	}
	gen := at / d.span
	if !d.started {
		d.started, d.genOf = true, gen
		d.gens[0] = newIDSet(0)
		d.filter = make([]uint64, (d.mask+1)/16)
	}
	if gen > d.genOf {
		d.advance(gen - d.genOf)
		d.genOf = gen
	}
	if d.gens[0].n >= d.perGen {
		if last := d.gens[dedupeGenerations-1]; last != nil {
			d.evicted += uint64(last.n)
		}
		d.advance(1)
	}
	// An id lands in the newest generation even when its arrival time is a
	// little older: it is then remembered slightly longer, never shorter.
	d.gens[0].add(h)
	d.filter[word] |= 1 << (shift + uint64(d.slots[0]))
	return false
}

// advance shifts n generations: the oldest are dropped (their filter bits
// cleared), new empty ones start, the newest pre-sized like the current one
// to avoid rehashing while it fills.
func (d *dedupe) advance(n int64) {
	size := 0
	if d.gens[0] != nil {
		size = d.gens[0].n
	}
	if n >= dedupeGenerations {
		for _, g := range d.gens {
			if g != nil {
				g.release()
			}
		}
		d.gens = [dedupeGenerations]*idSet{}
		clear(d.filter)
	} else {
		for _, g := range d.gens[dedupeGenerations-n:] {
			if g != nil {
				g.release()
			}
		}
		var drop uint64
		freed := d.slots[dedupeGenerations-n:]
		for _, s := range freed {
			drop |= cellBits << s
		}
		var reuse [dedupeGenerations]uint8
		copy(reuse[:], freed)
		for w := range d.filter {
			d.filter[w] &^= drop
		}
		copy(d.gens[n:], d.gens[:dedupeGenerations-n])
		copy(d.slots[n:], d.slots[:dedupeGenerations-n])
		for i := int64(0); i < n; i++ {
			d.gens[i], d.slots[i] = nil, reuse[i]
		}
	}
	d.gens[0] = newIDSet(size)
}

// size is the number of ids held.
func (d *dedupe) size() int {
	n := 0
	for _, g := range d.gens {
		if g != nil {
			n += g.n
		}
	}
	return n
}
