//go:build linux

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/internal/testutil"
)

// TestNamedPipeInDeviceFiles: a device_files glob comes to match a named
// pipe on a running exporter. POST /-/reload answers at once with 500
// naming the pipe, the devices in force keep being polled and
// last_reload_successful is 0; a SIGHUP reload of the same configuration
// followed by SIGTERM exits within the grace period.
func TestNamedPipeInDeviceFiles(t *testing.T) {
	t.Parallel()
	_, srv := serveDoor(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	replaceFile(t, cfgPath, "global:\n  collect: [settings]\n  min_poll_interval: 0s\ncredentials:\n  default:\n    username: admin\n    password: "+
		firstPassword+"\ndevice_files: [devices/*.yaml]\n")
	if err := os.Mkdir(filepath.Join(dir, "devices"), 0o700); err != nil {
		t.Fatal(err)
	}
	replaceFile(t, filepath.Join(dir, "devices", "site.yaml"), "- name: door-1\n  address: "+srv.URL+"\n")
	p := startExporterBinary(t, "--config.file="+cfgPath)
	base := "http://" + p.addr
	c := loopbackClient(nil)
	c.Timeout = 10 * time.Second

	pipe := filepath.Join(dir, "devices", "more.yaml")
	if err := syscall.Mkfifo(pipe, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, body, err := tryFetchURL(c, http.MethodPost, base+"/-/reload", "", "")
	t.Logf("POST /-/reload answered in %v: %d %q %v", time.Since(start).Round(time.Millisecond), code, body, err)
	if err != nil || code != http.StatusInternalServerError || !strings.Contains(body, pipe) || !strings.Contains(body, "named pipe") {
		t.Errorf("POST /-/reload with a named pipe matched: %d %q %v, want 500 naming the pipe at once", code, body, err)
	}
	if code, m, err := tryFetchURL(c, http.MethodGet, base+"/metrics", "", ""); err != nil || code != 200 ||
		seriesValue(m, `basip_up{device="door-1"}`) != "1" || seriesValue(m, "basip_exporter_config_last_reload_successful") != "0" {
		t.Errorf("after the refused reload: %d %v\n%s", code, err, testutil.Grep(m, "basip_"))
	}

	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the reload under way, or done
	exit, took := p.terminate(15 * time.Second)
	t.Logf("exited with %d %v after SIGTERM", exit, took.Round(time.Millisecond))
	if exit != 0 || took > 6*time.Second {
		t.Errorf("exit %d after %v, want 0 within the 5 s grace period", exit, took)
	}
}
