package cluster

import (
	"errors"
	"math/rand/v2"
	"net"
)

func randFloat() float64 { return rand.Float64() }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
