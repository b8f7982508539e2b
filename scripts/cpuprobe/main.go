//go:build linux

// Command cpuprobe measures how fast this machine's CPU is from moment to
// moment, for benchmarks that report CPU time.
//
// A benchmark's CPU seconds are only comparable if the machine gives the
// same work the same time. On a shared virtual machine it does not: the
// host can run another guest beside ours, and the guest cannot see it (no
// steal time is reported), so the same code's CPU time per unit of work
// varies. On the 2-vCPU machine of docs/BENCHMARKS.md the JSON decoder
// benchmark moved between 327 and 724 ns per event within minutes, in
// phases of a few seconds, with nothing else running in the guest.
//
// cpuprobe runs a fixed unit of work (decoding one typical event with the
// aggregator's JSON decoder, -unit times) every -every, on one locked OS
// thread, and measures each unit in that thread's own CPU time
// (CLOCK_THREAD_CPUTIME_ID): time the guest's scheduler gave other threads
// does not count, time the host took from the guest does, as it does in
// the CPU time of the process being measured. It prints one line per
// unit: the wall-clock time in Unix milliseconds and the CPU nanoseconds
// per decoded event. scripts/bench-catchup.sh reads the lines of its
// measured window and reports how much slower than its fastest (the 5th
// percentile of all its units) the probe ran (see slowdown in stats.go).
//
// At the defaults (3000 events every 100 ms) it takes 1–2% of a core. Units
// much shorter than a millisecond read slower than the work they probe (each
// starts with cold caches after the work it interrupts).
//
//	cpuprobe >samples                      # until SIGINT or SIGTERM
//	cpuprobe -window FROM_MS,TO_MS <samples  # summary of a window
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/costpipe/costpipe/schemas"
)

// event is the decoder benchmark's typical event (schemas' benchEvent).
const event = `{"event_id":"0b7e3f1c-5d2a-4e8f-9a61-3c4d5e6f7a8b","timestamp":"2025-11-28T09:07:12.345Z",` +
	`"tenant":"acme-corp","provider":"anthropic","model":"claude-sonnet-4-5-20250929","status":"ok",` +
	`"application":"support-assistant","operation":"chat","region":"us-east-1",` +
	`"input_tokens":1834,"cached_input_tokens":1024,"cache_write_tokens":256,"output_tokens":412,` +
	`"reasoning_tokens":128,"latency_ms":2314.7,"ttft_ms":412.3}`

func main() {
	unit := flag.Int("unit", 3000, "events decoded per measured unit of work")
	every := flag.Duration("every", 100*time.Millisecond, "time from the start of one unit to the next")
	window := flag.String("window", "", "summarize the samples on stdin from FROM_MS to TO_MS (Unix milliseconds) instead of probing")
	flag.Parse()
	if *window != "" {
		if err := summarize(os.Stdin, os.Stdout, *window); err != nil {
			fmt.Fprintln(os.Stderr, "cpuprobe:", err)
			os.Exit(1)
		}
		return
	}
	if *unit < 1 || *every <= 0 {
		fmt.Fprintln(os.Stderr, "cpuprobe: -unit must be at least 1 and -every positive")
		os.Exit(2)
	}
	if err := run(*unit, *every); err != nil {
		fmt.Fprintln(os.Stderr, "cpuprobe:", err)
		os.Exit(1)
	}
}

func run(unit int, every time.Duration) error {
	runtime.LockOSThread() // the thread CPU clock must be this goroutine's
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()

	data := []byte(event)
	d := schemas.NewDecoder()
	var e schemas.Event
	if err := d.Decode(data, &e); err != nil {
		return fmt.Errorf("the probe's event does not decode: %w", err)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		t0, err := threadCPU()
		if err != nil {
			return err
		}
		for range unit {
			_ = d.Decode(data, &e)
		}
		t1, err := threadCPU()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%d %.1f\n", time.Now().UnixMilli(), float64(t1-t0)/float64(unit))
		if err := out.Flush(); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
	}
}

// threadCPU is the calling thread's CPU time in nanoseconds.
func threadCPU() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, fmt.Errorf("cannot read the thread's CPU clock: %w", err)
	}
	return ts.Nano(), nil
}
