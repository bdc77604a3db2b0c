// Command sluice-backend is the test backend of Sluice's chaos tool as a
// process, so that it can be SIGTERMed or SIGKILLed. See package backend.
//
//	sluice-backend -listen 127.0.0.1:9001 -name b1 -idle-timeout 1s -record /tmp/b1.log -on-sigterm graceful
package main

import (
	"os"

	"github.com/sluice-gw/sluice/internal/testkit/backend"
)

func main() {
	os.Exit(backend.Main(os.Args[1:], os.Stdout, os.Stderr))
}
