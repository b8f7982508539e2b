package sketch_test

import (
	"fmt"

	"github.com/costpipe/costpipe/pipelines/sketch"
)

// Two aggregator instances each keep a histogram for the same key-minute;
// their flushed arrays, concatenated as ClickHouse's sumMap sums them, give
// the histogram of all the values.
func Example() {
	var a, b sketch.Histogram
	for _, ms := range []float64{120, 250, 250, 900} {
		a.Add(ms)
	}
	for _, ms := range []float64{0, 300, 4000} {
		b.Add(ms)
	}
	idx, cnt := a.AppendArrays(nil, nil)
	idx, cnt = b.AppendArrays(idx, cnt)

	h, err := sketch.FromArrays(idx, cnt)
	if err != nil {
		panic(err)
	}
	p50, _ := h.Quantile(0.5)
	p99, _ := h.Quantile(0.99)
	fmt.Printf("n=%d p50≈%.1f ms p99≈%.0f ms\n", h.Count(), p50, p99)
	fmt.Println(sketch.Index(250), sketch.Index(0) == sketch.ZeroIndex)
	// Output:
	// n=7 p50≈252.2 ms p99≈3985 ms
	// 277 true
}
