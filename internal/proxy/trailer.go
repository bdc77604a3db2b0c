package proxy

import (
	"net/http"
	"strings"
)

// announceTrailers declares in dst's Trailer header the trailers the
// backend announced before its body: the keys resp.Trailer holds, without
// values, until the body is read.
func announceTrailers(dst, trailer http.Header) {
	if len(trailer) == 0 {
		return
	}
	keys := make([]string, 0, len(trailer))
	for k := range trailer {
		keys = append(keys, k)
	}
	dst["Trailer"] = []string{strings.Join(keys, ", ")}
}

// copyTrailers sets, once the body was copied, every trailer the backend
// sent, announced or not (grpc-go sends grpc-status without a Trailer
// header, as HTTP/2 allows), under http.TrailerPrefix: net/http sends a
// header set after the body only when it was declared or is so prefixed.
func copyTrailers(dst, trailer http.Header) {
	for k, vv := range trailer {
		dst[http.TrailerPrefix+k] = vv
	}
}
