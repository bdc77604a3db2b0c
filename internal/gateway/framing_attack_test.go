package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// exchangeRaw writes raw on a new connection to addr, reads one response
// and reports whether the gateway then closed the connection.
func exchangeRaw(t *testing.T, addr, raw string) (status int, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, strings.ReplaceAll(raw, "\n", "\r\n"))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = br.ReadByte()
	return resp.StatusCode, err == io.EOF
}

// A request with both Content-Length and Transfer-Encoding (a CL.TE desync
// behind a front proxy that frames by Content-Length) is refused with 400
// and its connection closed; it reaches no backend. A chunked request
// without Content-Length keeps its connection.
func TestContentLengthWithTransferEncoding(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	g := startOne(t, be.Addr(), "")
	tests := []struct {
		desc       string
		raw        string
		wantStatus int
		wantClosed bool
	}{
		{
			desc:       "Content-Length then Transfer-Encoding",
			raw:        "POST /x HTTP/1.1\nHost: gw\nContent-Length: 6\nTransfer-Encoding: chunked\n\n0\n\nGET /smuggled HTTP/1.1\nHost: gw\n\n",
			wantStatus: 400, wantClosed: true,
		},
		{
			desc:       "Transfer-Encoding then content-length, lower case",
			raw:        "POST /x HTTP/1.1\nHost: gw\ntransfer-encoding: chunked\ncontent-length: 5\n\n0\n\n",
			wantStatus: 400, wantClosed: true,
		},
		{
			desc:       "Content-Length: 0 with chunked",
			raw:        "POST /x HTTP/1.1\nHost: gw\nContent-Length: 0\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
			wantStatus: 400, wantClosed: true,
		},
		{
			desc:       "chunked alone keeps the connection",
			raw:        "POST /x HTTP/1.1\nHost: gw\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
			wantStatus: 200, wantClosed: false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			before := be.Hits()
			status, closed := exchangeRaw(t, g.Addr(), tc.raw)
			if status != tc.wantStatus || closed != tc.wantClosed {
				t.Errorf("got %d, closed %v; want %d, closed %v", status, closed, tc.wantStatus, tc.wantClosed)
			}
			if tc.wantStatus == 400 && be.Hits() != before {
				t.Errorf("the backend saw %d requests", be.Hits()-before)
			}
		})
	}
}
