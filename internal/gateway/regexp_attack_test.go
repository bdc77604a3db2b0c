package gateway_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// A route regexp whose program is too large is refused at start, with its
// position and the reason.
func TestRouteRegexpProgramIsBounded(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	_, err := gatewaytest.TryStart(`
		routes:
		  - id: r
		    uri: http://` + be.Addr() + `
		    predicates: ["Header=X-A, [a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{500}"]
		`)
	if err == nil || !strings.Contains(err.Error(), "regexp too large") || !strings.Contains(err.Error(), "test.yaml:") {
		t.Fatalf("got %v", err)
	}
}

// A header regexp that is slow on long input (about 4 s on a 60 KB value
// without a bound) is not run on a value longer than its budget allows: the
// request is answered at once, as not matching.
func TestRouteRegexpMatchCostIsBounded(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	g := gatewaytest.Start(t, `
		routes:
		  - id: r
		    uri: http://`+be.Addr()+`
		    predicates: [{name: Header, args: {header: X-A, regexp: "(a|b|c|d|e)*[a-e]{0,900}x"}}]
		`)
	start := time.Now()
	resp, _ := gatewaytest.Raw(t, g.Addr(), "GET /x HTTP/1.1\nHost: gw\nX-A: "+strings.Repeat("abcde", 12000)+"\n")
	if d := time.Since(start); resp.StatusCode != http.StatusNotFound || d > time.Second {
		t.Errorf("answered %d after %v", resp.StatusCode, d)
	}
	resp, _ = gatewaytest.Raw(t, g.Addr(), "GET /x HTTP/1.1\nHost: gw\nX-A: abcx\n")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a short value that matches got %d", resp.StatusCode)
	}
}
