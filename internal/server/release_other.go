//go:build !unix

package server

import "net"

const releaseSupported = false

func waitReadable(net.Conn) error { return errReleased }
