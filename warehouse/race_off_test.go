//go:build !race

package warehouse

// raceEnabled: the race detector is off (race_on_test.go).
const raceEnabled = false
