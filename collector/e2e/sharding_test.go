//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/simulator"
)

// TestShardedProbe runs the per-device mode as deploy/prometheus/sharded/
// describes it: two exporter processes with the same configuration, two
// real Prometheus servers reading /sd and keeping one hashmod shard each,
// scraping through /probe. Every simulated device must be scraped by
// exactly one shard, and be logged in to by exactly one exporter.
func TestShardedProbe(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	promBin := lookBinary(t, "prometheus", "prometheus")
	root := moduleRoot(t)
	tmp := t.TempDir()

	const n = 24
	const password = "Shard-Test-Passw0rd"
	devices := make([]*simulator.Device, n)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  collect: [settings]\ncredentials:\n  default:\n    username: admin\n    password: %q\ndevices:\n", password)
	for i := range n {
		d := &simulator.Device{Username: "admin", Password: password, APIVersion: "v1"}
		d.SetSettings(simulator.PanelSettings(fmt.Sprint(100+i), "udp"))
		srv, err := simulator.Serve(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		devices[i] = d
		fmt.Fprintf(&cfg, "  - name: dev-%02d\n    address: %s\n", i, srv.URL)
	}
	cfgFile := writeFile(t, filepath.Join(tmp, "config.yaml"), cfg.String())

	exporterBin := filepath.Join(tmp, "basip_exporter")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goTool(t), "build", "-o", exporterBin, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	addrs := freeAddrs(t, 4)
	exporters, proms := addrs[:2], addrs[2:]
	for i, addr := range exporters {
		p := startProcess(t, fmt.Sprintf("exporter-%d", i), exporterBin, "--config.file="+cfgFile, "--web.listen-address="+addr)
		p.waitReady(t, "http://"+addr+"/-/healthy")
		// Not ready until Prometheus has it poll.
		if code, _ := readyCode("http://" + addr + "/-/ready"); code != http.StatusServiceUnavailable {
			t.Errorf("exporter-%d: /-/ready answers %d before any scrape, want 503", i, code)
		}
	}
	for i, addr := range proms {
		// The shipped shard configuration, pointed at this test's
		// processes and with a short scrape interval.
		b, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "sharded", fmt.Sprintf("shard-%d.yml", i)))
		if err != nil {
			t.Fatal(err)
		}
		y := strings.ReplaceAll(string(b), fmt.Sprintf("exporter-%d:9875", i), exporters[i])
		y = strings.ReplaceAll(y, "60s", "1s")
		y = strings.ReplaceAll(y, "scrape_timeout: 15s", "scrape_timeout: 1s")
		y = strings.ReplaceAll(y, "scrape_timeout: 10s", "scrape_timeout: 1s")
		y = strings.Replace(y, "rule_files:\n  - ../alerts.yml\n", "", 1)
		if strings.Contains(y, "exporter-") && strings.Contains(y, ":9875") {
			t.Fatalf("shard-%d.yml still names an exporter this test does not run:\n%s", i, y)
		}
		file := writeFile(t, filepath.Join(tmp, fmt.Sprintf("shard-%d.yml", i)), y)
		p := startProcess(t, fmt.Sprintf("prometheus-%d", i), promBin,
			"--config.file="+file,
			"--storage.tsdb.path="+filepath.Join(tmp, fmt.Sprintf("data-%d", i)),
			"--web.listen-address="+addr,
		)
		p.waitReady(t, "http://"+addr+"/-/ready")
	}

	// Wait until both shards have scraped their targets successfully.
	type target struct {
		Labels    map[string]string `json:"labels"`
		Health    string            `json:"health"`
		LastError string            `json:"lastError"`
	}
	var shards [2][]string
	deadline := time.Now().Add(60 * time.Second)
	for {
		complete := true
		for i, addr := range proms {
			var resp struct {
				Data struct {
					ActiveTargets []target `json:"activeTargets"`
				} `json:"data"`
			}
			if err := getJSON("http://"+addr+"/api/v1/targets?state=active", &resp); err != nil {
				t.Fatal(err)
			}
			shards[i] = shards[i][:0]
			own := 0 // the shard's exporter's own metrics, job basip_exporter
			for _, tg := range resp.Data.ActiveTargets {
				if tg.Health != "up" {
					complete = false
				}
				if tg.Labels["job"] == "basip_exporter" {
					own++
					continue
				}
				shards[i] = append(shards[i], tg.Labels["instance"])
			}
			if own != 1 {
				complete = false
			}
		}
		if complete && len(shards[0])+len(shards[1]) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shards never covered the fleet with healthy targets: shard 0 %v, shard 1 %v", shards[0], shards[1])
		}
		time.Sleep(500 * time.Millisecond)
	}
	for i, addr := range exporters {
		if code, err := readyCode("http://" + addr + "/-/ready"); code != http.StatusOK {
			t.Errorf("exporter-%d: /-/ready answers %d (%v) once scraped, want 200", i, code, err)
		}
	}
	seen := map[string]int{}
	for i, s := range shards {
		sort.Strings(s)
		t.Logf("shard %d scrapes %d devices: %v", i, len(s), s)
		if len(s) == 0 {
			t.Errorf("shard %d scrapes nothing", i)
		}
		for _, inst := range s {
			seen[inst]++
		}
	}
	for i := range n {
		name := fmt.Sprintf("dev-%02d", i)
		if seen[name] != 1 {
			t.Errorf("%s is scraped by %d shards, want exactly 1", name, seen[name])
		}
		if devices[i].SettingsRequests() == 0 {
			t.Errorf("%s was never polled", name)
		}
		if l := devices[i].Logins.Load(); l != 1 {
			t.Errorf("%s was logged in to %d times, want once: by the one exporter of its shard", name, l)
		}
	}
}

// readyCode is the status code url answers.
func readyCode(url string) (int, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
