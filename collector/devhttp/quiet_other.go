//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package devhttp

import "net"

// socketQuiet cannot peek at a socket on this system, so it never calls a
// connection quiet: every request gets a new connection.
func socketQuiet(net.Conn) bool { return false }
