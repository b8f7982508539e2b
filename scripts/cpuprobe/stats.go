//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// minSamples is the fewest samples a figure is computed from: with fewer,
// the probe may never have run at the machine's full speed, and the
// figure is reported as unknown.
const minSamples = 20

// slowdown compares the probe's samples (CPU ns per event) of one window
// with all of its samples: base is the 5th percentile of all, the
// machine's speed when the host left it alone (a percentile, not the
// minimum, so that one lucky sample does not set it), mean the window's
// mean, and factor = mean / base, how much more CPU time the same work
// took on average over the window than at full speed. ok is false when
// either holds fewer than minSamples samples.
func slowdown(all, window []float64) (base, mean, factor float64, ok bool) {
	if len(all) < minSamples || len(window) < minSamples {
		return 0, 0, 0, false
	}
	s := slices.Clone(all)
	slices.Sort(s)
	base = s[len(s)*5/100]
	var sum float64
	for _, v := range window {
		sum += v
	}
	mean = sum / float64(len(window))
	return base, mean, mean / base, true
}

// summarize reads probe lines ("UNIX_MS NS_PER_EVENT") from r and writes
// the slowdown of those within window ("FROM_MS,TO_MS") against all of
// them to w as "samples N of M base B mean X factor F", or "samples N of M
// factor unknown".
func summarize(r io.Reader, w io.Writer, window string) error {
	from, to, ok := strings.Cut(window, ",")
	lo, err1 := strconv.ParseInt(from, 10, 64)
	hi, err2 := strconv.ParseInt(to, 10, 64)
	if !ok || err1 != nil || err2 != nil || hi < lo {
		return fmt.Errorf("-window %q: want FROM_MS,TO_MS, two Unix times in milliseconds, FROM_MS first", window)
	}
	var all, samples []float64
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			return fmt.Errorf("line %d: want UNIX_MS NS_PER_EVENT, got %q", line, sc.Text())
		}
		at, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return fmt.Errorf("line %d: time %q: %w", line, f[0], err)
		}
		ns, err := strconv.ParseFloat(f[1], 64)
		if err != nil || ns <= 0 {
			return fmt.Errorf("line %d: want a positive ns per event, got %q", line, f[1])
		}
		all = append(all, ns)
		if lo <= at && at <= hi {
			samples = append(samples, ns)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	base, mean, factor, ok := slowdown(all, samples)
	if !ok {
		_, err := fmt.Fprintf(w, "samples %d of %d factor unknown\n", len(samples), len(all))
		return err
	}
	_, err := fmt.Fprintf(w, "samples %d of %d base %.1f mean %.1f factor %.3f\n", len(samples), len(all), base, mean, factor)
	return err
}
