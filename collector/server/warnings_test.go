package server

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a log destination that handlers may write to while the
// test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestReloadWithWarningsIsAccepted: a configuration whose password file is
// readable by others and whose reuse outlasts a scrape is reloaded (200,
// reload_successful 1) and each warning is logged; the exporter keeps
// serving.
func TestReloadWithWarningsIsAccepted(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("a-Passw0rd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pw, 0o644); err != nil {
		t.Fatal(err)
	}
	y := "global: {min_poll_interval: 5m}\ncredentials:\n  default: {username: admin, password_file: pw}\ndevices:\n  - {name: a, address: 192.0.2.1}\n"
	var logs lockedBuffer
	_, srv, _ := serve(t, y, dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if code, body, _ := do(t, http.MethodPost, srv.URL+"/-/reload"); code != http.StatusOK {
		t.Fatalf("POST /-/reload with warnings = %d %q, want 200", code, body)
	}
	_, body, _ := get(t, srv.URL+"/metrics/exporter")
	if !strings.Contains(body, "basip_exporter_config_last_reload_successful 1\n") {
		t.Errorf("a reload with warnings counts as failed:\n%s", body)
	}
	for _, want := range []string{"readable by every user (mode 0644)", "min_poll_interval: 5m0s is longer than 1m0s"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the reload did not log %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "a-Passw0rd") {
		t.Error("the log shows the password")
	}
}
