package collector

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is still running
// once they are all done: every exporter, simulated device and HTTP server
// a test starts must be closed by it. The hostile-device tests also check
// each case on its own (leakCheck).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
