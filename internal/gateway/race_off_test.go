//go:build !race

package gateway_test

// raceDetector is true under -race, which slows every goroutine several
// times over: latency bounds measured in-process mean nothing then.
const raceDetector = false
