//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package devhttp

import (
	"errors"
	"net"
	"syscall"
)

// socketQuiet peeks at the socket without waiting and without taking
// anything from it: nothing to read is quiet; data, end of file (the device
// closed its side) or an error is not. (A Read with a passed deadline
// cannot do this: Go fails it before asking the socket.)
func socketQuiet(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var peekErr error
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, peekErr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for the socket to become readable
	})
	return err == nil && (errors.Is(peekErr, syscall.EAGAIN) || errors.Is(peekErr, syscall.EWOULDBLOCK))
}
