package compress

import (
	"compress/gzip"
	"io"
	"testing"
	"time"
)

// TestGzipBodyStreams checks that each chunk from the backend can be
// decompressed by the client before the next one exists.
func TestGzipBodyStreams(t *testing.T) {
	pr, pw := io.Pipe()
	body := newGzipBody(pr)
	defer body.Close()
	zr := make(chan *gzip.Reader, 1)
	errs := make(chan error, 1)
	go func() {
		r, err := gzip.NewReader(body)
		if err != nil {
			errs <- err
			return
		}
		zr <- r
	}()
	go pw.Write([]byte("data: one\n\n"))
	var r *gzip.Reader
	select {
	case r = <-zr:
	case err := <-errs:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("no gzip header before the body ended")
	}
	buf := make([]byte, 64)
	got := make(chan string, 1)
	go func() { n, _ := io.ReadAtLeast(r, buf, len("data: one\n\n")); got <- string(buf[:n]) }()
	select {
	case s := <-got:
		if s != "data: one\n\n" {
			t.Fatalf("first chunk %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first chunk held back until more data came")
	}
	go func() {
		pw.Write([]byte("data: two\n\n"))
		pw.Close()
	}()
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "data: two\n\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want bool
	}{
		{name: "gzip", in: []string{"gzip"}, want: true},
		{name: "list", in: []string{"br, gzip, deflate"}, want: true},
		{name: "q zero", in: []string{"gzip;q=0"}},
		{name: "star", in: []string{"*"}, want: true},
		{name: "identity only", in: []string{"identity"}},
		{name: "none", in: nil},
		{name: "two header lines", in: []string{"br", "GZIP; q=0.1"}, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := acceptsGzip(tc.in); got != tc.want {
				t.Errorf("acceptsGzip(%q) = %v", tc.in, got)
			}
		})
	}
}
