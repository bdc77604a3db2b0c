//go:build !linux

package server

import "net"

const keepAliveInherited = false

func setKeepAlive(int, net.KeepAliveConfig) error { return nil }
