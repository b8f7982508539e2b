package consumers

import (
	"hash/maphash"
	"strconv"
	"testing"
	"time"
)

// BenchmarkDedupeCatchUp is the dedupe of a catch-up: 3,000,000 new ids over
// 6 partitions in turn, each window at the default bound, looked up one by
// one ("direct") or through a look-ahead of n prefetched ids as
// Consumer.accept does ("ahead16"). Reports ns per id.
func BenchmarkDedupeCatchUp(b *testing.B) {
	const parts = 6
	ids := make([]string, 3_000_000)
	for i := range ids {
		ids[i] = "0193a4f2-7c1e-7b3a-9f00-" + strconv.FormatInt(int64(1e11+i), 10)
	}
	for _, ahead := range []int{0, 16} {
		name := "direct"
		if ahead > 0 {
			name = "ahead" + strconv.Itoa(ahead)
		}
		b.Run(name, func(b *testing.B) {
			for n := 0; n < b.N; n++ {
				seeds := [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
				ds := make([]*dedupe, parts)
				for p := range ds {
					ds[p] = newDedupe(time.Hour, 1_000_000, seeds)
				}
				if ahead == 0 {
					for i, id := range ids {
						if ds[i%parts].seen(id, 1000) {
							b.Fatalf("id %d seen twice", i)
						}
					}
					continue
				}
				hs := make([]idHash, len(ids))
				for i, id := range ids {
					d := ds[i%parts]
					hs[i] = d.hash(id)
					d.prefetch(hs[i])
					if j := i - ahead; j >= 0 && ds[j%parts].seenHash(hs[j], 1000) {
						b.Fatalf("id %d seen twice", j)
					}
				}
				for j := max(len(ids)-ahead, 0); j < len(ids); j++ {
					if ds[j%parts].seenHash(hs[j], 1000) {
						b.Fatalf("id %d seen twice", j)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/id")
		})
	}
}
