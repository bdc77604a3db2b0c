// Package testkit holds no code: its subpackages are the tools that test and
// measure the gateway (chaos scenarios, benchmarks, latency relays, test
// backends, parser differential fuzzing), kept apart so that the rest of
// internal/ is the gateway alone. Nothing outside tests and the cmd/sluice-*
// tools imports them.
package testkit
