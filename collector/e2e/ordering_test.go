//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/simulator"
)

// orderScale shrinks the rules' `for:` and keep_firing_for and
// Alertmanager's timers alike for TestCauseAlertArrivesFirst: a minute of
// the shipped files is a second here, as is the scrape and evaluation
// interval.
const orderScale = 60

var ruleDuration = regexp.MustCompile(`(?m)^(\s*(?:for|keep_firing_for):\s*)(\S+)`)

// TestCauseAlertArrivesFirst: the network of a site fails under the real
// exporter, Prometheus and Alertmanager, with the shipped rules and
// Alertmanager configuration on a clock 60 times faster. Three of the four
// door panels of site hq stop answering; the fifth device, at another site,
// stays up. BasipSiteDevicesDown reaches Alertmanager before the three
// BasipDeviceDown alerts it holds back, and the pager gets one
// notification, the site's; the device alerts do fire, and stay
// suppressed. The dashboard's "down since" is the failure, not the start
// of the time range. Against Prometheus 2 and, with BASIP_E2E_PROMETHEUS3,
// 3.
func TestCauseAlertArrivesFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	prom2 := lookBinary(t, "prometheus", "prometheus")
	amBin := lookBinary(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	root := moduleRoot(t)
	exporterBin := buildExporter(t)

	rules, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	scaledRules := ruleDuration.ReplaceAllStringFunc(string(rules), func(m string) string {
		parts := ruleDuration.FindStringSubmatch(m)
		d, err := time.ParseDuration(parts[2])
		if err != nil {
			t.Fatalf("alerts.yml: %s: %v", m, err)
		}
		n++
		return fmt.Sprintf("%s%dms", parts[1], (d / orderScale).Milliseconds())
	})
	if n == 0 {
		t.Fatal("alerts.yml: no `for:` to scale")
	}
	proms := map[string]string{"prometheus2": prom2}
	if bin := os.Getenv(prometheus3Env); bin != "" {
		proms["prometheus3"] = bin
	}
	for name, promBin := range proms {
		t.Run(name, func(t *testing.T) {
			if out, err := exec.Command(promBin, "--version").CombinedOutput(); err == nil {
				t.Logf("%s: %s", promBin, strings.SplitN(string(out), "\n", 2)[0])
			}
			runSiteOutage(t, exporterBin, amBin, promBin, root, scaledRules)
		})
	}
}

func runSiteOutage(t *testing.T, exporterBin, amBin, promBin, root, rules string) {
	tmp := t.TempDir()
	var servers []*simulator.Server
	y := "global:\n  timeout: 500ms\n  collect: [settings]\n  min_poll_interval: 0s\ncredentials:\n  default:\n    username: admin\n    password: " + firstPassword + "\ndevices:\n"
	for i, site := range []string{"hq", "hq", "hq", "hq", "annex"} {
		_, srv := serveDoor(t)
		servers = append(servers, srv)
		y += fmt.Sprintf("  - name: %s-door-%d\n    address: %s\n    labels: {site: %s}\n", site, i+1, srv.URL, site)
	}
	addrs := freeAddrs(t, 3)
	exporterAddr, promAddr, amAddr := addrs[0], addrs[1], addrs[2]
	hook := startWebhook(t)
	am := startProcess(t, "alertmanager", amBin,
		"--config.file="+scaledAMConfig(t, root, tmp, hook.srv.URL, orderScale),
		"--storage.path="+filepath.Join(tmp, "alertmanager"),
		"--web.listen-address="+amAddr,
		"--cluster.listen-address=",
	)
	exporter := startProcess(t, "exporter", exporterBin,
		"--config.file="+writeFile(t, filepath.Join(tmp, "config.yaml"), y),
		"--web.listen-address="+exporterAddr)
	promConfig := writeFile(t, filepath.Join(tmp, "prometheus.yml"), fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: basip
    static_configs:
      - targets: [%q]
`, writeFile(t, filepath.Join(tmp, "alerts.yml"), rules), amAddr, exporterAddr))
	prom := startProcess(t, "prometheus", promBin,
		"--config.file="+promConfig,
		"--storage.tsdb.path="+filepath.Join(tmp, "prometheus"),
		"--web.listen-address="+promAddr,
		"--rules.alert.resend-delay=1s",
	)
	am.waitReady(t, "http://"+amAddr+"/-/ready")
	prom.waitReady(t, "http://"+promAddr+"/-/ready")
	exporter.waitReady(t, "http://"+exporterAddr+"/-/ready")
	promURL, amURL := "http://"+promAddr, "http://"+amAddr
	waitQuery(t, promURL, `count(basip_up{job="basip"} == 1) == 5`, "all five devices up")
	// Up for a while, so that the start of the devices' series is well
	// before the failure (the dashboard's fallback for "down since").
	time.Sleep(8 * time.Second)

	// The site's network fails: three of its four panels stop answering.
	failed := time.Now()
	for _, srv := range servers[:3] {
		_ = srv.Close()
	}
	// Until the device alerts have fired and a device group would have
	// been notified: 5 s for their `for:`, scrapes, evaluations and the
	// pager's group_wait, with room to spare.
	deadline := failed.Add(20 * time.Second)
	var site amAlert
	devices := map[string]amAlert{}
	for time.Now().Before(deadline) {
		var alerts []amAlert
		if err := getJSON(amURL+"/api/v2/alerts", &alerts); err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			switch a.Labels["alertname"] {
			case "BasipSiteDevicesDown":
				site = a
			case "BasipDeviceDown":
				devices[a.Labels["device"]] = a
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if site.Labels["site"] != "hq" {
		t.Fatalf("BasipSiteDevicesDown for site hq never reached Alertmanager within %v", deadline.Sub(failed))
	}
	if len(devices) != 3 {
		t.Errorf("BasipDeviceDown reached Alertmanager for %d devices, want the 3 that failed: %v", len(devices), devices)
	}
	for name, a := range devices {
		lead := a.StartsAt.Sub(site.StartsAt)
		t.Logf("%s: BasipDeviceDown started %v after the site alert (%v after the failure)", name, lead.Round(10*time.Millisecond), a.StartsAt.Sub(failed).Round(10*time.Millisecond))
		if lead <= 0 {
			t.Errorf("%s: BasipDeviceDown started at %v, not after BasipSiteDevicesDown at %v", name, a.StartsAt, site.StartsAt)
		}
		if a.Status.State != "suppressed" || len(a.Status.InhibitedBy) != 1 || a.Status.InhibitedBy[0] != site.Fingerprint {
			t.Errorf("%s: BasipDeviceDown is %s, inhibited by %v; want suppressed by the site alert %s", name, a.Status.State, a.Status.InhibitedBy, site.Fingerprint)
		}
	}
	// The dashboard's "down since" is the last time each device was read,
	// from the recording rule, not the start of the time range.
	d := loadDashboard(t, filepath.Join(root, "deploy", "grafana", "dashboards", "basip.json"))
	i := slices.IndexFunc(d.queries, func(q panelQuery) bool { return q.panel == "Devices down" && q.refID == "C" })
	if i < 0 {
		t.Fatal(`the dashboard has no "Devices down" query C (down since)`)
	}
	since, err := queryVector(promURL, d.queries[i].expr)
	if err != nil || len(since) != 3 {
		t.Errorf("down since: %v %v, want the 3 failed devices", since, err)
	}
	for k, ms := range since {
		at := time.UnixMilli(int64(ms))
		// The last scrape that read it: one in flight at the failure may
		// still have.
		if d := at.Sub(failed); d < -3*time.Second || d > 3*time.Second {
			t.Errorf("%s: down since %v, want within 3s of the failure at %v", k, at, failed)
		} else {
			t.Logf("%s: down since %v from the failure", k, d.Round(10*time.Millisecond))
		}
	}

	got := summary(hook.notifications())
	want := []string{"pager map[alertname:BasipSiteDevicesDown site:hq]: 1 firing, 0 resolved"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notifications after the site failed:\n got %q\nwant %q", got, want)
	}
	t.Logf("site alert %v after the failure; %d notification(s): %v", site.StartsAt.Sub(failed).Round(10*time.Millisecond), len(got), got)
}
