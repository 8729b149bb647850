package config

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Size limits of the files a configuration names. A file larger than its
// limit is refused with an error that names the limit; none is read past
// it.
const (
	// MaxConfigFile bounds the configuration file and each device file:
	// 100,000 devices take about 5 MiB.
	MaxConfigFile = 32 << 20
	// MaxPasswordFile bounds a password_file.
	MaxPasswordFile = 4 << 10
	// MaxTLSFile bounds a tls_config ca_file, cert_file or key_file: a
	// bundle of every public root CA is about 250 KiB.
	MaxTLSFile = 1 << 20
)

// readFile reads the file at path, a kind of file ("device file", "CA
// file") named in its errors, through the limit. Symlinks are followed
// (Kubernetes mounts secrets as symlinks), and the file is opened without
// blocking and checked on the open descriptor to be a regular file before
// anything is read: a named pipe would block open and read for good, and
// /dev/zero would never end. Errors name the file, never its content.
func readFile(path, kind string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", kind, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", kind, err)
	}
	refuse := func(format string, args ...any) ([]byte, error) {
		return nil, &fs.PathError{Op: "read " + kind, Path: path, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case st.IsDir():
		return refuse("is a directory")
	case !st.Mode().IsRegular():
		return refuse("is not a regular file but %s", fileType(st.Mode()))
	case st.Size() > limit:
		return refuse("is larger than %s, the limit", sizeName(limit))
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", kind, err)
	}
	if int64(len(b)) > limit { // it grew since the Stat
		return refuse("is larger than %s, the limit", sizeName(limit))
	}
	return b, nil
}

// fileType names what a file that is not a regular file is.
func fileType(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	}
	return "type " + m.Type().String()
}

// sizeName writes a limit as people read it: 4096 bytes (4 KiB).
func sizeName(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d bytes (%d MiB)", n, n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d bytes (%d KiB)", n, n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ReadTLSFile reads a file named by a tls_config (ca_file, cert_file,
// key_file) as the configuration checked it: a regular file of at most
// MaxTLSFile bytes, opened without blocking.
func ReadTLSFile(path string) ([]byte, error) {
	return readFile(path, "TLS file", MaxTLSFile)
}
