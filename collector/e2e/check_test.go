//go:build linux

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/basip/basip_exporter/collector/simulator/vendorsim"
)

// TestCheckDevice runs the binary with --check.device over simulated
// devices: a panel and a monitor found by api_version auto, a panel on
// HTTP Basic revealing its SIP password, and a device with the wrong
// password. It prints a report per device and exits 0 only when every
// device checked is up.
func TestCheckDevice(t *testing.T) {
	bin := buildExporter(t)
	const (
		user        = "admin"
		password    = "Check-Device-4471"
		sipPassword = "Sip-In-Clear-8812"
	)
	serve := func(d *simulator.Device) string {
		srv, err := simulator.Serve(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return srv.URL
	}
	pan := &simulator.Device{Username: user, Password: password, APIVersion: "v1"}
	pan.SetSettings(simulator.PanelSettings("100", "udp"))
	pan.SetStatus(simulator.StatusMillis("OK", 1732600000123))
	pan.SetInfo(simulator.Info("Entrance", "AV-08FB", "panel", "3.9.2", "2.0"))
	mon := &simulator.Device{Username: user, Password: password, APIVersion: "v0", MD5Case: simulator.MD5Lower}
	mon.SetSettings(simulator.MonitorSettings("101", "tcp"))
	mon.SetInfo(simulator.Info("Flat 101", "AQ-07L", "monitor", "5.3.2", "1.0"))
	old := &simulator.Device{Username: user, Password: password, APIVersion: "v1", Auth: simulator.AuthBasic}
	old.SetSettings(simulator.LeakyPanelSettings("102", "udp", sipPassword))
	old.SetInfo(simulator.Info("Back door", "AA-07BD", "panel", "3.8.0", "2.0"))
	twoN := vendorsim.New("2n", user, password)
	twoNSrv, err := vendorsim.Serve(twoN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { twoNSrv.Close() })
	wrong := &simulator.Device{Username: user, Password: "something-else", APIVersion: "v1"}
	wrong.SetSettings(simulator.PanelSettings("103", "udp"))

	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  api_version: auto
  timeout: 3s
credentials:
  default: {username: %[1]s, password: %[2]q}
  lower: {username: %[1]s, password: %[2]q, md5_case: lower}
  basic: {username: %[1]s, password: %[2]q, auth: basic}
policies:
  default:
    firmware: {min: "3.9.2"}
    password_exposed: forbidden
devices:
  - {name: panel, address: %[3]q}
  - {name: monitor, address: %[4]q, credentials: lower, policy: none}
  - {name: old-panel, address: %[5]q, credentials: basic}
  - {name: wrong, address: %[6]q}
  - {name: gate-2n, address: %[7]q, vendor: 2n, policy: none}
`, user, password, serve(pan), serve(mon), serve(old), serve(wrong), twoNSrv.URL)
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(devices ...string) (int, string, string) {
		t.Helper()
		args := []string{"--config.file=" + cfgFile, "--web.listen-address=127.0.0.1:0"}
		for _, d := range devices {
			args = append(args, "--check.device="+d)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		out := stdout.String()
		for _, secret := range []string{password, sipPassword} {
			if strings.Contains(out+stderr.String(), secret) {
				t.Errorf("a password is in the output:\n%s", out)
			}
		}
		return cmd.ProcessState.ExitCode(), out, stderr.String()
	}

	code, out, errOut := run("panel", "monitor", "old-panel", "gate-2n")
	if code != 0 {
		t.Fatalf("exit %d for devices that are up\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"== panel (http://127.0.0.1:", "): up\nAPI family:     v1 (api_version auto)\nAuthentication: token\n",
		"GET /api/v1/login: 400,", // the probe, without parameters
		"  settings: answered\n  status:   answered\n  info:     answered\n",
		`"register_last_attempt": 1732600000.123`,
		"Policy:         default: compliant\n",
		`basip_sip_last_registration_attempt_timestamp_seconds{device="panel"} 1.732600000123e+09`,

		"== monitor (", "API family:     v0 (api_version auto)",
		"GET /api/v1/login: 404,", "GET /api/v0/login: 400,",
		"  status:   unsupported (HTTP 404)\n", "Policy:         none\n",

		"== old-panel (", "Authentication: basic\n",
		`"outbound": "sip:sbc.example.com:5060"`, `"password": "<secret>"`,
		"Policy:         default: violated: firmware, password_exposed\n",
		`basip_sip_password_exposed{device="old-panel"} 1`,
		`basip_sip_policy_violation{device="old-panel",policy="default",rule="firmware"} 1`,

		// A 2N device: Digest, its challenge, then the answers.
		"== gate-2n (", "): up\nAuthentication: digest\n", "Vendor:         2n\n",
		"GET /api/phone/config: 401, 1 attempt(s)", "GET /api/phone/config: 200, 1 attempt(s)", "GET /api/phone/status: 200,",
		`basip_device_info{api_version="",device="gate-2n",firmware="2.40.1",model="2N IP Verso"`,
		`basip_sip_account_registered{account="2",device="gate-2n"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", out)
	}

	code, out, _ = run("all")
	if code != 1 {
		t.Errorf("exit %d with a device down, want 1", code)
	}
	if !strings.Contains(out, "== wrong (") || !strings.Contains(out, "down: GET /api/v1/login: device rejected the credentials: HTTP 400: Wrong login or password") {
		t.Errorf("the report of the device down:\n%s", out)
	}
	if n := strings.Count(out, "\n== "); n != 4 { // the first report starts the output
		t.Errorf("%d reports for all, want 5", n+1)
	}

	code, _, errOut = run("nope")
	if code != 1 || !strings.Contains(errOut, `unknown target "nope"`) {
		t.Errorf("unknown device: exit %d, %s", code, errOut)
	}
}
