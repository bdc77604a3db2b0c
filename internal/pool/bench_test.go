package pool

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// BenchmarkWireBaseline is the standard library's wire format alone, on one
// connection: (*http.Request).Write and http.ReadResponse. It is the floor
// the pool is compared with.
func BenchmarkWireBaseline(b *testing.B) {
	s := startBackend(b, nil, 0)
	nc, err := net.Dial("tcp", s.addr())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	br, bw := bufio.NewReaderSize(nc, 4<<10), bufio.NewWriterSize(nc, 4<<10)
	req, _ := http.NewRequest("GET", "http://"+s.addr()+"/", nil)
	b.ReportAllocs()
	for b.Loop() {
		req.Write(bw)
		bw.Flush()
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkPool is the same exchange through the pool: lease (with the
// liveness probe), write, read, and return at EOF. allocs/op minus
// BenchmarkWireBaseline's is what the pool's machinery costs.
func BenchmarkPool(b *testing.B) {
	s := startBackend(b, nil, 0)
	p := New(Options{Addr: s.addr()})
	defer p.Drain(nil)
	req, _ := http.NewRequest("GET", "http://"+s.addr()+"/", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := p.RoundTrip(ctx, req, time.Now().Add(time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
