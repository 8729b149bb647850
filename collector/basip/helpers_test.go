package basip

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/basip/basip_exporter/collector/internal/rawdev"
)

// The raw devices of package rawdev, under the names these tests use.

func rawServer(t *testing.T, handle func(c net.Conn)) string { return rawdev.Server(t, handle) }

func rawHTTP(t *testing.T, answer func(c net.Conn, conn, req int, r *http.Request) string) (string, *atomic.Int64) {
	return rawdev.HTTP(t, answer)
}

func testTLS(t *testing.T) (server, client *tls.Config) { return rawdev.TLS(t) }
