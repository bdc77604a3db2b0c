package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// testService is grpc's interop TestService, written here so that the
// tests control it: it echoes metadata back as headers and trailers,
// answers the status a request asks for (with a detail), and reports the
// deadline and the cancellation it saw.
type testService struct {
	testpb.UnimplementedTestServiceServer
	canceled chan struct{} // FullDuplexCall closes it when its client cancelled
	once     sync.Once
	deadline chan time.Duration // UnaryCall sends the deadline it saw, when asked to
}

func (s *testService) echoMetadata(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-echo"); len(v) > 0 {
		grpc.SetHeader(ctx, metadata.Pairs("x-echo-header", v[0]))
		grpc.SetTrailer(ctx, metadata.Pairs("x-echo-trailer", v[0], "x-echo-trailer-bin", "\x00\xffbin"))
	}
}

func payload(n int, seed byte) *testpb.Payload {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i%251)
	}
	return &testpb.Payload{Body: b}
}

func (s *testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.echoMetadata(ctx)
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("x-report-deadline")) > 0 {
		d, ok := ctx.Deadline()
		if !ok {
			d = time.Time{}
		}
		s.deadline <- time.Until(d)
	}
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("x-hang")) > 0 {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if st := req.GetResponseStatus(); st != nil {
		s, err := status.New(codes.Code(st.Code), st.Message).WithDetails(&testpb.EchoStatus{Code: st.Code, Message: "detail: " + st.Message})
		if err != nil {
			return nil, err
		}
		return nil, s.Err()
	}
	resp := &testpb.SimpleResponse{Payload: req.GetPayload()}
	if req.ResponseSize > 0 {
		resp.Payload = payload(int(req.ResponseSize), 7)
	}
	return resp, nil
}

func (s *testService) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	s.echoMetadata(stream.Context())
	for i, p := range req.ResponseParameters {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: payload(int(p.Size), byte(i))}); err != nil {
			return err
		}
	}
	if st := req.GetResponseStatus(); st != nil {
		return status.Error(codes.Code(st.Code), st.Message)
	}
	return nil
}

func (s *testService) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
	total := 0
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(m.GetPayload().GetBody())
	}
}

func (s *testService) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	s.echoMetadata(stream.Context())
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if status.Code(err) == codes.Canceled {
				s.once.Do(func() { close(s.canceled) })
			}
			return err
		}
		for _, p := range m.ResponseParameters {
			if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: payload(int(p.Size), 1)}); err != nil {
				return err
			}
		}
	}
}

// startGRPCBackend serves svc with grpc-go's own server (HTTP/2 with prior
// knowledge) on a loopback port.
func startGRPCBackend(t *testing.T, svc testpb.TestServiceServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	testpb.RegisterTestServiceServer(s, svc)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// dialGRPC returns a grpc-go client connection to addr, in clear text or
// over TLS trusting pool.
func dialGRPC(t *testing.T, addr string, pool *x509.CertPool) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if pool != nil {
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "api.example.com"})
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// grpc-go's client and server through Sluice, over h2c and over TLS (ALPN
// h2): every kind of call, metadata both ways, statuses with details,
// deadlines, cancellation, a 3 MB message and 200 calls at once.
func TestGRPCInteropThroughGateway(t *testing.T) {
	svc := &testService{canceled: make(chan struct{}), deadline: make(chan time.Duration, 1)}
	backend := startGRPCBackend(t, svc)
	dir := t.TempDir()
	certFile, keyFile, cert := writeCert(t, dir, "api", 1, "api.example.com")
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	upstream := `
		upstreams:
		  grpc:
		    endpoints: ["` + backend + `"]
		    protocol: h2c
		routes:
		  - id: grpc
		    uri: lb://grpc
		    predicates: ["Path=/grpc.testing.TestService/**"]`
	modes := []struct {
		name   string
		server string
		pool   *x509.CertPool
	}{
		{"h2c", "", nil},
		{"tls", `
		tls:
		  certificates: [{cert_file: "` + certFile + `", key_file: "` + keyFile + `"}]`, pool},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			g := gatewaytest.Start(t, upstream, gatewaytest.WithServer(m.server))
			c := testpb.NewTestServiceClient(dialGRPC(t, g.Addr(), m.pool))
			t.Run("UnaryWithMetadata", func(t *testing.T) { grpcUnary(t, c) })
			t.Run("ServerStreaming", func(t *testing.T) { grpcServerStreaming(t, c) })
			t.Run("ServerStreamEndingInError", func(t *testing.T) { grpcServerStreamError(t, c) })
			t.Run("ClientStreaming", func(t *testing.T) { grpcClientStreaming(t, c) })
			t.Run("BidiStreaming", func(t *testing.T) { grpcBidi(t, c) })
			t.Run("StatusWithDetails", func(t *testing.T) { grpcStatusDetails(t, c) })
			t.Run("Deadline", func(t *testing.T) { grpcDeadline(t, c, svc) })
			t.Run("Cancellation", func(t *testing.T) { grpcCancel(t, c, svc) })
			t.Run("LargeMessage3MB", func(t *testing.T) { grpcLarge(t, c) })
			t.Run("Concurrent200", func(t *testing.T) { grpcConcurrent(t, c) })
		})
	}
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func grpcUnary(t *testing.T, c testpb.TestServiceClient) {
	ctx := metadata.AppendToOutgoingContext(callCtx(t), "x-echo", "hello")
	var header, trailer metadata.MD
	resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{Payload: payload(100, 3)}, grpc.Header(&header), grpc.Trailer(&trailer))
	if err != nil {
		t.Fatalf("UnaryCall: %v", err)
	}
	if !bytes.Equal(resp.GetPayload().GetBody(), payload(100, 3).Body) {
		t.Fatalf("payload not echoed")
	}
	if got := header.Get("x-echo-header"); len(got) != 1 || got[0] != "hello" {
		t.Errorf("header metadata %v", header)
	}
	if got := trailer.Get("x-echo-trailer"); len(got) != 1 || got[0] != "hello" {
		t.Errorf("trailer metadata %v", trailer)
	}
	if got := trailer.Get("x-echo-trailer-bin"); len(got) != 1 || got[0] != "\x00\xffbin" {
		t.Errorf("binary trailer metadata %v", trailer)
	}
}

func grpcServerStreaming(t *testing.T, c testpb.TestServiceClient) {
	sizes := []int32{1, 10, 1000, 65536, 0}
	req := &testpb.StreamingOutputCallRequest{}
	for _, n := range sizes {
		req.ResponseParameters = append(req.ResponseParameters, &testpb.ResponseParameters{Size: n})
	}
	ctx := metadata.AppendToOutgoingContext(callCtx(t), "x-echo", "s")
	stream, err := c.StreamingOutputCall(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range sizes {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if len(m.GetPayload().GetBody()) != int(n) {
			t.Fatalf("message %d: %d bytes, want %d", i, len(m.GetPayload().GetBody()), n)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("end of stream: %v, want io.EOF (status OK in the trailers)", err)
	}
	if got := stream.Trailer().Get("x-echo-trailer"); len(got) != 1 || got[0] != "s" {
		t.Errorf("trailer metadata %v", stream.Trailer())
	}
}

func grpcServerStreamError(t *testing.T, c testpb.TestServiceClient) {
	stream, err := c.StreamingOutputCall(callCtx(t), &testpb.StreamingOutputCallRequest{
		ResponseParameters: []*testpb.ResponseParameters{{Size: 5}},
		ResponseStatus:     &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("first message: %v", err)
	}
	_, err = stream.Recv()
	if s := status.Convert(err); s.Code() != codes.NotFound || s.Message() != "no such thing" {
		t.Fatalf("end of stream: %v, want NotFound: no such thing", err)
	}
}

func grpcClientStreaming(t *testing.T, c testpb.TestServiceClient) {
	stream, err := c.StreamingInputCall(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range []int{27182, 8, 1828, 45904} {
		if err := stream.Send(&testpb.StreamingInputCallRequest{Payload: payload(n, 0)}); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	if int(resp.AggregatedPayloadSize) != total {
		t.Fatalf("server counted %d bytes, want %d", resp.AggregatedPayloadSize, total)
	}
}

func grpcBidi(t *testing.T, c testpb.TestServiceClient) {
	ctx := metadata.AppendToOutgoingContext(callCtx(t), "x-echo", "b")
	stream, err := c.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Ping-pong: each answer arrives before the next request is sent.
	for _, n := range []int32{31415, 9, 2653, 58979} {
		if err := stream.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: n}}}); err != nil {
			t.Fatal(err)
		}
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(m.GetPayload().GetBody()) != int(n) {
			t.Fatalf("got %d bytes, want %d", len(m.GetPayload().GetBody()), n)
		}
	}
	stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("end of stream: %v, want io.EOF", err)
	}
	if got := stream.Trailer().Get("x-echo-trailer"); len(got) != 1 || got[0] != "b" {
		t.Errorf("trailer metadata %v", stream.Trailer())
	}
}

func grpcStatusDetails(t *testing.T, c testpb.TestServiceClient) {
	msg := "nicht gefunden: 100% \t ünïcode\r\n"
	_, err := c.UnaryCall(callCtx(t), &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: msg}})
	s := status.Convert(err)
	if s.Code() != codes.NotFound || s.Message() != msg {
		t.Fatalf("got %v, want NotFound %q", err, msg)
	}
	d := s.Details()
	if len(d) != 1 {
		t.Fatalf("details %v, want one", d)
	}
	if e, ok := d[0].(*testpb.EchoStatus); !ok || e.Message != "detail: "+msg {
		t.Fatalf("detail %v", d[0])
	}
}

func grpcDeadline(t *testing.T, c testpb.TestServiceClient, svc *testService) {
	// The client's deadline reaches the server as grpc-timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-report-deadline", "1")
	if _, err := c.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	if d := <-svc.deadline; d <= 0 || d > 10*time.Second {
		t.Fatalf("server saw a deadline %v away, want within 10s", d)
	}
	// A call that outlives its deadline ends DeadlineExceeded.
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-hang", "1")
	_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
}

func grpcCancel(t *testing.T, c testpb.TestServiceClient, svc *testService) {
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := c.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("client: %v, want Canceled", err)
	}
	select {
	case <-svc.canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the server never saw the cancellation")
	}
}

func grpcLarge(t *testing.T, c testpb.TestServiceClient) {
	const size = 3 << 20
	resp, err := c.UnaryCall(callCtx(t), &testpb.SimpleRequest{Payload: payload(size, 9), ResponseSize: size})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.GetPayload().GetBody(), payload(size, 7).Body) {
		t.Fatalf("3 MB response damaged (%d bytes)", len(resp.GetPayload().GetBody()))
	}
}

func grpcConcurrent(t *testing.T, c testpb.TestServiceClient) {
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			want := []byte(fmt.Sprintf("call %d", i))
			resp, err := c.UnaryCall(callCtx(t), &testpb.SimpleRequest{Payload: &testpb.Payload{Body: want}})
			if err == nil && !bytes.Equal(resp.GetPayload().GetBody(), want) {
				err = fmt.Errorf("call %d got %q", i, resp.GetPayload().GetBody())
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		t.Fatalf("%d of %d calls failed; first: %v", len(all), n, errors.Join(all[:min(3, len(all))]...))
	}
}

// hangingService answers UnaryCall only when release is closed, whatever
// the call's deadline: a backend too slow for its clients.
type hangingService struct {
	testpb.UnimplementedTestServiceServer
	release chan struct{}
	arrived chan struct{} // a hanging call arrived (buffered, 1)
}

func (s *hangingService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("x-hang")) > 0 {
		select {
		case s.arrived <- struct{}{}:
		default:
		}
		<-s.release
	}
	return &testpb.SimpleResponse{}, nil
}

// The errors Sluice itself answers to a gRPC call are gRPC statuses, as
// Envoy's: HTTP 200 with grpc-status and grpc-message, so that grpc-go
// reports what happened (a timeout is DeadlineExceeded, not the
// Unavailable that clients take as safe to retry) and the reason shows.
func TestGRPCErrorsTheGatewayProduces(t *testing.T) {
	svc := &hangingService{release: make(chan struct{}), arrived: make(chan struct{}, 1)}
	backend := startGRPCBackend(t, svc)
	t.Cleanup(func() { close(svc.release) }) // runs before the backend stops
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	// deaf ignores grpc-timeout (grpc-go's server would reset the stream
	// at the deadline itself) and answers when the gateway gives up.
	deaf := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-svc.release:
		}
	}))
	g := gatewaytest.Start(t, `
		upstreams:
		  grpc:
		    endpoints: ["`+backend+`"]
		    protocol: h2c
		  gone:
		    endpoints: ["`+deadAddr+`"]
		    protocol: h2c
		  deaf:
		    endpoints: ["`+deaf+`"]
		    protocol: h2c
		routes:
		  - id: slow
		    uri: lb://grpc
		    predicates: ["Path=/grpc.testing.TestService/UnaryCall", "Header=x-route, slow"]
		    response_timeout: 300ms
		  - id: limited
		    uri: lb://grpc
		    predicates: ["Path=/grpc.testing.TestService/UnaryCall", "Header=x-route, limited"]
		    max_concurrent_requests: 1
		  - id: gone
		    uri: lb://gone
		    predicates: ["Path=/grpc.testing.TestService/UnaryCall", "Header=x-route, gone"]
		  - id: deaf
		    uri: lb://deaf
		    predicates: ["Path=/grpc.testing.TestService/UnaryCall", "Header=x-route, deaf"]
		  - id: patient
		    uri: lb://grpc
		    predicates: ["Path=/grpc.testing.TestService/**"]`)
	cc := dialGRPC(t, g.Addr(), nil)
	c := testpb.NewTestServiceClient(cc)
	call := func(ctx context.Context, md ...string) (*status.Status, metadata.MD) {
		var trailer metadata.MD
		_, err := c.UnaryCall(metadata.AppendToOutgoingContext(ctx, md...), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
		return status.Convert(err), trailer
	}
	check := func(t *testing.T, s *status.Status, code codes.Code, reason string) {
		t.Helper()
		if s.Code() != code || !strings.Contains(s.Message(), reason) {
			t.Fatalf("got %v: %q, want %v with reason %s", s.Code(), s.Message(), code, reason)
		}
	}

	t.Run("ResponseTimeoutIsDeadlineExceeded", func(t *testing.T) {
		s, _ := call(callCtx(t), "x-route", "slow", "x-hang", "1")
		check(t, s, codes.DeadlineExceeded, "response_timeout")
	})
	t.Run("NoRouteIsUnimplemented", func(t *testing.T) {
		_, err := testpb.NewUnimplementedServiceClient(cc).UnimplementedCall(callCtx(t), &testpb.Empty{})
		check(t, status.Convert(err), codes.Unimplemented, "no_route")
	})
	t.Run("ConnectFailureIsUnavailable", func(t *testing.T) {
		s, _ := call(callCtx(t), "x-route", "gone")
		check(t, s, codes.Unavailable, "upstream_connect_failure")
	})
	t.Run("OverloadIsUnavailableWithPushback", func(t *testing.T) {
		select {
		case <-svc.arrived: // an earlier subtest's
		default:
		}
		hold, cancel := context.WithCancel(context.Background())
		held := make(chan struct{})
		go func() {
			defer close(held)
			call(hold, "x-route", "limited", "x-hang", "1") // holds the route's one slot
		}()
		defer func() { cancel(); <-held }()
		select {
		case <-svc.arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the call that holds the slot never reached the backend")
		}
		s, trailer := call(callCtx(t), "x-route", "limited")
		check(t, s, codes.Unavailable, "overloaded")
		if got := trailer.Get("grpc-retry-pushback-ms"); len(got) != 1 || got[0] != "1000" {
			t.Fatalf("grpc-retry-pushback-ms %v, want 1000", got)
		}
	})
	t.Run("GRPCTimeoutBoundsTheWait", func(t *testing.T) {
		// The route's response timeout is the default 30 s; the call's own
		// deadline, sent as grpc-timeout, ends the gateway's wait. A raw
		// HTTP/2 request to a backend that ignores the deadline, so that
		// only the gateway can end it.
		tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("POST", "http://"+g.Addr()+"/grpc.testing.TestService/UnaryCall", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Te", "trailers")
		req.Header.Set("Grpc-Timeout", "500m")
		req.Header.Set("X-Route", "deaf")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := tr.RoundTrip(req.WithContext(ctx))
		if err != nil {
			t.Fatalf("no answer within 10 s: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "4" || resp.Header.Get("X-Sluice-Reason") != "response_timeout" {
			t.Fatalf("got %d, grpc-status %q, reason %q; want 200, 4, response_timeout",
				resp.StatusCode, resp.Header.Get("Grpc-Status"), resp.Header.Get("X-Sluice-Reason"))
		}
	})
}

// startH2C serves h with net/http's cleartext HTTP/2 (prior knowledge) on a
// loopback port.
func startH2C(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &p, Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
