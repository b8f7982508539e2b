package consumers

import (
	"hash/maphash"
	"time"
)

// idHash is a 128-bit hash of an event_id: two independently seeded 64-bit
// hashes, so a false "duplicate" (which would drop a real event) needs a
// 128-bit collision.
type idHash [2]uint64

// dedupe remembers the event_ids of one partition seen within a window of
// event time, bounded in entries. Not safe for concurrent use.
//
// Entries expire when their event time is older than the newest event time
// seen minus the window. When more than max entries are held, the oldest
// minutes are evicted early (counted in evicted), which shortens the window
// rather than growing memory.
type dedupe struct {
	window  int64 // seconds
	max     int
	seeds   [2]maphash.Seed
	ids     map[idHash]int64 // id → minute of its event time
	minutes []minuteIDs      // ring in ascending minute order
	newest  int64            // newest minute seen
	evicted uint64
}

type minuteIDs struct {
	minute int64
	ids    []idHash
}

func newDedupe(window time.Duration, max int, seeds [2]maphash.Seed) *dedupe {
	return &dedupe{window: int64(window / time.Second), max: max, seeds: seeds, ids: make(map[idHash]int64)}
}

func (d *dedupe) hash(id string) idHash {
	return idHash{maphash.String(d.seeds[0], id), maphash.String(d.seeds[1], id)}
}

// seen reports whether id was seen in the window and remembers it otherwise.
// ts is the event time.
func (d *dedupe) seen(id string, ts time.Time) bool {
	h := d.hash(id)
	if _, ok := d.ids[h]; ok {
		return true
	}
	minute := ts.Unix() / 60 * 60
	if minute < d.newest-d.window {
		// Older than the window: it cannot be compared with what was
		// forgotten, so it is accepted (and not remembered).
		return false
	}
	d.ids[h] = minute
	d.insert(minute, h)
	if minute > d.newest {
		d.newest = minute
		d.expire()
	}
	for len(d.ids) > d.max && len(d.minutes) > 1 {
		d.evictOldest(true)
	}
	return false
}

// insert appends h to its minute, keeping d.minutes sorted by minute.
func (d *dedupe) insert(minute int64, h idHash) {
	n := len(d.minutes)
	i := n
	for i > 0 && d.minutes[i-1].minute > minute {
		i--
	}
	if i > 0 && d.minutes[i-1].minute == minute {
		d.minutes[i-1].ids = append(d.minutes[i-1].ids, h)
		return
	}
	d.minutes = append(d.minutes, minuteIDs{})
	copy(d.minutes[i+1:], d.minutes[i:])
	d.minutes[i] = minuteIDs{minute: minute, ids: []idHash{h}}
}

func (d *dedupe) expire() {
	for len(d.minutes) > 0 && d.minutes[0].minute < d.newest-d.window {
		d.evictOldest(false)
	}
}

func (d *dedupe) evictOldest(early bool) {
	m := d.minutes[0]
	for _, h := range m.ids {
		if d.ids[h] == m.minute {
			delete(d.ids, h)
			if early {
				d.evicted++
			}
		}
	}
	d.minutes[0] = minuteIDs{}
	d.minutes = d.minutes[1:]
}

// size is the number of ids held.
func (d *dedupe) size() int { return len(d.ids) }
