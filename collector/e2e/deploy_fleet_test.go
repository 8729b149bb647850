//go:build linux

package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestDeployExamplesHoldForAFleet checks what the deploy examples must get
// right for a fleet beyond loading: the Kubernetes configuration reuses a
// poll for just under the ServiceMonitor's interval, so that an HA pair of
// Prometheus servers does not poll every device twice; the systemd unit
// bounds the memory, with GOMEMLIMIT below the bound; no build line hard-
// codes an architecture; and every --config.check command for the systemd
// layout finds the password where the configuration names it
// (/run/credentials/basip_exporter.service/, which a systemd-run with its
// own LoadCredential= does not provide).
func TestDeployExamplesHoldForAFleet(t *testing.T) {
	root := repoRoot(t)
	texts := map[string]string{}
	_ = filepath.WalkDir(filepath.Join(root, "deploy"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) != ".png" {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			texts[rel] = strings.ReplaceAll(string(b), "\\\n", " ")
		}
		return nil
	})

	t.Run("kubernetes min_poll_interval", func(t *testing.T) {
		var cm struct {
			Data map[string]string `yaml:"data"`
		}
		var sm struct {
			Spec struct {
				Endpoints []struct {
					Interval string `yaml:"interval"`
				} `yaml:"endpoints"`
			} `yaml:"spec"`
		}
		for file, v := range map[string]any{"configmap.yaml": &cm, "servicemonitor.yaml": &sm} {
			if err := yaml.Unmarshal([]byte(texts[filepath.Join("deploy", "kubernetes", file)]), v); err != nil {
				t.Fatal(file, err)
			}
		}
		var cfg struct {
			Global struct {
				MinPollInterval string `yaml:"min_poll_interval"`
			} `yaml:"global"`
		}
		if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
			t.Fatal(err)
		}
		if len(sm.Spec.Endpoints) != 1 {
			t.Fatalf("servicemonitor.yaml: %d endpoints", len(sm.Spec.Endpoints))
		}
		reuse, err1 := time.ParseDuration(cfg.Global.MinPollInterval)
		interval, err2 := time.ParseDuration(sm.Spec.Endpoints[0].Interval)
		if err1 != nil || err2 != nil || reuse < interval/2 || reuse >= interval {
			t.Errorf("configmap.yaml: global.min_poll_interval %q, want under the ServiceMonitor's interval %q and over half of it: a second Prometheus within the interval gets the first one's poll",
				cfg.Global.MinPollInterval, sm.Spec.Endpoints[0].Interval)
		}
	})

	t.Run("systemd MemoryMax", func(t *testing.T) {
		unit := texts[filepath.Join("deploy", "systemd", "basip_exporter.service")]
		memMax := regexp.MustCompile(`(?m)^MemoryMax=(\S+)$`).FindStringSubmatch(unit)
		limit := regexp.MustCompile(`(?m)^Environment=GOMEMLIMIT=(\S+)$`).FindStringSubmatch(unit)
		if memMax == nil || limit == nil {
			t.Fatalf("the unit sets MemoryMax=%v and GOMEMLIMIT %v; want both", memMax, limit)
		}
		// systemd's M and Go's MiB are both 2^20 bytes.
		m, err1 := strconv.Atoi(strings.TrimSuffix(memMax[1], "M"))
		l, err2 := strconv.Atoi(strings.TrimSuffix(limit[1], "MiB"))
		if err1 != nil || err2 != nil || l >= m || l < m*8/10 {
			t.Errorf("GOMEMLIMIT=%s, MemoryMax=%s: want the Go limit a little below the unit's", limit[1], memMax[1])
		}
	})

	t.Run("no architecture hard-coded", func(t *testing.T) {
		for where, text := range texts {
			if m := regexp.MustCompile(`GOARCH=[a-z0-9]+`).FindString(text); m != "" {
				t.Errorf("%s: %s; a build line for the host's architecture names none", where, m)
			}
		}
	})

	t.Run("config.check under systemd", func(t *testing.T) {
		for where, text := range texts {
			for _, line := range strings.Split(text, "\n") {
				if strings.Contains(line, "--config.check") && strings.Contains(line, "systemd-run") && strings.Contains(line, "LoadCredential=") {
					t.Errorf("%s: %q: systemd-run puts the credential under its own unit's directory, not /run/credentials/basip_exporter.service/", where, strings.TrimSpace(line))
				}
			}
		}
		readme := texts[filepath.Join("deploy", "README.md")]
		_, section, _ := strings.Cut(readme, "### BasipExporterConfigReloadFailed")
		section, _, _ = strings.Cut(section, "\n### ")
		if !strings.Contains(section, "sudo /usr/local/bin/basip_exporter --config.file=/etc/basip_exporter/config.yaml --config.check") {
			t.Errorf("the runbook of BasipExporterConfigReloadFailed gives no check for the systemd layout (as root, the unit's binary and file):\n%s", section)
		}
	})
}
