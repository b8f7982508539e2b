//go:build race

package warehouse

// raceEnabled: the race detector is on, and its instrumentation allocates
// where the compiled code does not (testing.AllocsPerRun counts it).
const raceEnabled = true
