package main

import (
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/internal/config"
)

// TestDemoPrintsDashboard checks that `sluice demo` on the quickstart
// config prints the proxy's and the dashboard's addresses.
func TestDemoPrintsDashboard(t *testing.T) {
	cfg, err := config.Load("../../examples/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	printDemoAddrs(&b, cfg)
	for _, want := range []string{"curl -s http://127.0.0.1:8080/api/hello", "dashboard: http://127.0.0.1:9901/"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("demo prints\n%s\nwithout %q", b.String(), want)
		}
	}
}
