//go:build linux

// Package e2e runs the exporter over its --demo fleet against a real
// Prometheus and a real Alertmanager on 127.0.0.1, both with the shipped
// configuration: the rules of deploy/prometheus/alerts.yml and
// deploy/alertmanager/alertmanager.yml. The alerts the demo mix must raise
// reach Alertmanager, exactly those and nothing more, grouped by alert name
// and site; the inhibit rules hold back the per-device alerts under a
// site, proxy, device or exporter alert; every query and template variable
// of deploy/grafana/dashboards/basip.json returns data and its links to
// the exporter answer.
//
// It runs against Debian's prometheus (2.x) and prometheus-alertmanager
// packages (.ci/run installs them), and is skipped without them and with
// -short. With BASIP_E2E_PROMETHEUS3 naming a Prometheus 3 binary (.ci/run
// builds one) the same test runs against that one too.
//
//	go test ./collector/e2e/ -v
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// scrapeInterval is also the scrape timeout. The exporter waits for the
	// demo's silent device until the scrape timeout less timeoutOffset,
	// then answers. The default offset (0.5s) is not enough slack on a
	// loaded CI machine: the answer has been seen to arrive up to 0.4s
	// after the exporter's own deadline on an idle 2-CPU machine, and more
	// under load; one missed scrape fires BasipExporterDown (its for: is
	// 0s here) and spoils the exact alert set.
	scrapeInterval = 3 * time.Second
	timeoutOffset  = "1.5s"
	evalInterval   = time.Second

	startupWait = 30 * time.Second
	// alertWait bounds the wait for the alerts (about 13s here, more when
	// an alert that fires for a moment at startup is kept firing for
	// keepFiringFor).
	alertWait = 90 * time.Second
	// keepFiringFor replaces the rules' keep_firing_for: longer than the
	// exporter's restart below (a failed scrape or two), short enough for
	// a passing alert at startup to leave within alertWait.
	keepFiringFor = "30s"
	// stableFor is how long the alert set must stay exactly right: more
	// than two scrapes and several rule evaluations.
	stableFor  = 2*scrapeInterval + time.Second
	queryWait  = 30 * time.Second
	pollPeriod = time.Second

	// The value substituted for Grafana's interval variables.
	grafanaInterval = "1m"

	// prometheus3Env names a Prometheus 3 binary to run the test against
	// as well.
	prometheus3Env = "BASIP_E2E_PROMETHEUS3"
)

// expectedAlerts are the alerts the demo fleet (collector/simulator/demo.go,
// TestDemoFleetViolations) raises under deploy/prometheus/alerts.yml, as
// alertname{labels} without job (checked separately); no device alert
// carries instance:
//
//   - panel-silent never answers: down. Its type is unknown (no
//     /api/info answer), so critical.
//   - panel-wrong-password's login is rejected: authentication failing
//     (and not also "down"), a panel: critical, with the name of its
//     credentials set (stale) from basip_device_config_info.
//   - monitor-102 is enabled and its sip/status is ERROR: not registered,
//     with its proxy for the inhibit rules, a monitor: warning. Its policy
//     violations (proxy, ring code) are one non-compliance alert. Its
//     proxy, old-pbx.example.com, is none of the configured PBXs: proxy
//     unknown. The other devices point to the demo PBX, whose registrar
//     holds a contact for each that registers: qtech's and rubetek's
//     not-registered alerts carry pbx="pbx-demo".
//   - monitor-103-sip-off has SIP disabled (which suppresses "not
//     registered" although it is OFFLINE), a monitor: warning; it violates
//     the policy rule "enabled" and reveals the weak password 123456: one
//     non-compliance alert.
//   - monitor-104-out-of-range violates the policy rules transports,
//     registration_interval and call_timeouts and the documented ranges of
//     transport (wss), registration_interval (3600) and timeout (90): one
//     non-compliance alert listing them.
//   - panel-old-firmware (firmware 3.8.0) reveals its SIP password: its
//     policy's rules firmware and password_exposed, one non-compliance
//     alert.
//   - monitor-102, -103 and -104 are at site tower: their alerts carry
//     it; one of three unregistered (the other two are OK or switched
//     off) is no site outage.
//   - panel-entrance, monitor-101, panel-https and panel-basic (HTTP
//     Basic) are healthy and compliant. No device's settings change, none
//     vanishes, the exporter is up and its configuration loaded; one
//     device of one proxy is no proxy outage, and site hq
//     (panel-entrance, monitor-101) is healthy.
//   - the other vendors' devices are at site annex, each a door station
//     (critical, having no monitor type): akuvox-e12-service has its
//     account disabled, qtech-qdb-yard fails to register ("1") and
//     rubetek-rv3434-back says "failed: 403"; two of eight unregistered
//     is no site outage. The 2N, Beward, Sokol, Ufanet and Hikvision
//     devices are healthy (2N's account 1 is switched off and account 2
//     registers, as the manual's newer firmware shows).
var expectedAlerts = []string{
	`BasipAuthenticationFailing{credentials="stale",device="panel-wrong-password",severity="critical"}`,
	`BasipDeviceDown{device="panel-silent",severity="critical"}`,
	`BasipSIPDisabled{device="monitor-103-sip-off",severity="warning",site="tower"}`,
	`BasipSIPNotRegistered{device="monitor-102",proxy="sip:old-pbx.example.com",severity="warning",site="tower"}`,
	`BasipSIPSettingsNonCompliant{device="monitor-102",severity="warning",site="tower"}`,
	`BasipSIPSettingsNonCompliant{device="monitor-103-sip-off",severity="warning",site="tower"}`,
	`BasipSIPSettingsNonCompliant{device="monitor-104-out-of-range",severity="warning",site="tower"}`,
	`BasipSIPSettingsNonCompliant{device="panel-old-firmware",severity="warning"}`,
	`BasipSIPDisabled{device="akuvox-e12-service",severity="critical",site="annex"}`,
	`BasipSIPNotRegistered{device="qtech-qdb-yard",pbx="pbx-demo",proxy="sip:sip.example.net",severity="critical",site="annex"}`,
	`BasipSIPNotRegistered{device="rubetek-rv3434-back",pbx="pbx-demo",proxy="sip:sip.example.net",severity="critical",site="annex"}`,
	`BasipSIPProxyUnknown{device="monitor-102",severity="warning",site="tower"}`,
}

// exporterAlerts are the alerts on the exporter as a whole, which the demo
// never raises: the test keeps their `for:`.
var exporterAlerts = []string{"BasipExporterDown", "BasipProbesFailing", "BasipNoDevices"}

// expectedDescriptions are fragments the annotations must contain: the
// templates look the offending values up with `query`, which only the real
// Prometheus exercises against the exporter's real label sets.
var expectedDescriptions = map[string][]string{
	`BasipDeviceDown{device="panel-silent",severity="critical"}`:                                                                      {"Poll errors in the last 10 minutes: timeout.", "/debug?device=panel-silent"},
	`BasipAuthenticationFailing{credentials="stale",device="panel-wrong-password",severity="critical"}`:                               {"panel-wrong-password rejected"},
	`BasipSIPNotRegistered{device="monitor-102",proxy="sip:old-pbx.example.com",severity="warning",site="tower"}`:                     {"SIP server sip:old-pbx.example.com", `registration status error, user "102"`},
	`BasipSIPSettingsNonCompliant{device="monitor-102",severity="warning",site="tower"}`:                                              {"violates policy default (proxy, ring_code);"},
	`BasipSIPSettingsNonCompliant{device="monitor-103-sip-off",severity="warning",site="tower"}`:                                      {"violates policy default (enabled);", "weak SIP password;"},
	`BasipSIPSettingsNonCompliant{device="monitor-104-out-of-range",severity="warning",site="tower"}`:                                 {"violates policy default (call_timeouts, registration_interval, transports);", "outside the documented range: registration_interval, timeout, transport;"},
	`BasipSIPSettingsNonCompliant{device="panel-old-firmware",severity="warning"}`:                                                    {"violates policy panels-cve (firmware, password_exposed);"},
	`BasipSIPNotRegistered{device="rubetek-rv3434-back",pbx="pbx-demo",proxy="sip:sip.example.net",severity="critical",site="annex"}`: {"SIP server sip:sip.example.net", `registration status error, user "1006"`},
	`BasipSIPProxyUnknown{device="monitor-102",severity="warning",site="tower"}`:                                                      {"sip:old-pbx.example.com"},
}

// expectedGroups are Alertmanager's notification groups for expectedAlerts
// under the shipped routes: the critical panels' alerts page, grouped by
// alert name and site (they have none); the monitors' and the
// configuration findings go to the ticket queue grouped by alert name, the
// four non-compliant devices in one group.
var expectedGroups = map[string]int{
	`{alertname="BasipAuthenticationFailing"}`:         1,
	`{alertname="BasipDeviceDown"}`:                    1,
	`{alertname="BasipSIPDisabled"}`:                   1,
	`{alertname="BasipSIPNotRegistered"}`:              1,
	`{alertname="BasipSIPProxyUnknown"}`:               1,
	`{alertname="BasipSIPSettingsNonCompliant"}`:       4,
	`{alertname="BasipSIPDisabled",site="annex"}`:      1,
	`{alertname="BasipSIPNotRegistered",site="annex"}`: 2,
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	prom2 := lookBinary(t, "prometheus", "prometheus")
	amBin := lookBinary(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	promtool := lookBinary(t, "prometheus", "promtool")
	amtool := lookBinary(t, "prometheus-alertmanager", "amtool")
	root := moduleRoot(t)
	tmp := t.TempDir()
	start := time.Now()
	amConfig := filepath.Join(root, "deploy", "alertmanager", "alertmanager.yml")

	t.Run("promtool", func(t *testing.T) {
		rules := filepath.Join(root, "deploy", "prometheus", "alerts.yml")
		tests := filepath.Join(root, "deploy", "prometheus", "alerts_test.yml")
		for _, args := range [][]string{{"check", "rules", rules}, {"test", "rules", tests}} {
			out, err := exec.Command(promtool, args...).CombinedOutput()
			if err != nil {
				t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	})
	t.Run("amtool", func(t *testing.T) {
		if out, err := exec.Command(amtool, "check-config", amConfig).CombinedOutput(); err != nil {
			t.Errorf("amtool check-config: %v\n%s", err, out)
		}
	})

	exporterBin := filepath.Join(tmp, "basip_exporter")
	buildCtx, cancelBuild := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancelBuild()
	build := exec.CommandContext(buildCtx, goTool(t), "build", "-o", exporterBin, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("exporter built in %v", time.Since(start).Round(time.Millisecond))

	// The rules with every `for:` but exporterAlerts' set to 0s, so that
	// the alerts fire within seconds, and keep_firing_for to keepFiringFor;
	// the durations themselves are covered by the promtool tests
	// (deploy/prometheus/alerts_test.yml).
	rulesFile := writeFastRules(t, root, tmp, promtool, func(string) string { return keepFiringFor })

	s := stack{
		root:        root,
		exporterBin: exporterBin,
		amBin:       amBin,
		rulesFile:   rulesFile,
	}
	t.Run("prometheus2", func(t *testing.T) {
		s.promBin = prom2
		s.run(t)
	})
	t.Run("prometheus3", func(t *testing.T) {
		bin := os.Getenv(prometheus3Env)
		if bin == "" {
			t.Skipf("%s is not set: no Prometheus 3 binary to run against (.ci/run builds one with go install)", prometheus3Env)
		}
		if !isExecutable(bin) {
			t.Fatalf("%s=%s is not an executable file", prometheus3Env, bin)
		}
		s.promBin = bin
		s.run(t)
	})
	t.Logf("end-to-end test took %v", time.Since(start).Round(time.Millisecond))
}

// writeFastRules writes deploy/prometheus/alerts.yml into dir with every
// `for:` but exporterAlerts' set to 0s, and every keep_firing_for set to
// keep(the shipped value), checks the copy with promtool and returns its
// path. The alerts on the exporter as a whole keep their `for:`: it is
// what carries them over an exporter restart, as in production.
func writeFastRules(t *testing.T, root, dir, promtool string, keep func(shipped string) string) string {
	t.Helper()
	rules, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	forRe := regexp.MustCompile(`(?m)^(\s*for:\s*)\S+`)
	if len(forRe.FindAll(rules, -1)) == 0 {
		t.Fatal("alerts.yml: no `for:` durations found to rewrite")
	}
	keepRe := regexp.MustCompile(`(?m)^(\s*keep_firing_for:\s*)(\S+)`)
	if len(keepRe.FindAll(rules, -1)) == 0 {
		t.Fatal("alerts.yml: no `keep_firing_for:` found to rewrite")
	}
	var out []string
	alertName := regexp.MustCompile(`^\s*- alert:\s*(\S+)`)
	current := ""
	for _, line := range strings.Split(string(rules), "\n") {
		if m := alertName.FindStringSubmatch(line); m != nil {
			current = m[1]
		}
		if !slices.Contains(exporterAlerts, current) {
			line = forRe.ReplaceAllString(line, "${1}0s")
		}
		line = keepRe.ReplaceAllStringFunc(line, func(m string) string {
			parts := keepRe.FindStringSubmatch(m)
			return parts[1] + keep(parts[2])
		})
		out = append(out, line)
	}
	rulesFile := writeFile(t, filepath.Join(dir, "alerts.yml"), strings.Join(out, "\n"))
	if out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules (for: 0s copy): %v\n%s", err, out)
	}
	return rulesFile
}

// stack is one run of the exporter, Alertmanager and a Prometheus.
type stack struct {
	root, exporterBin, amBin, rulesFile, promBin string
}

// run starts a fresh exporter, Alertmanager and Prometheus and checks the
// alerts, their grouping and inhibition, and the dashboard against them.
func (s stack) run(t *testing.T) {
	tmp := t.TempDir()
	start := time.Now()
	if out, err := exec.Command(s.promBin, "--version").CombinedOutput(); err == nil {
		t.Logf("%s: %s", s.promBin, strings.SplitN(string(out), "\n", 2)[0])
	}
	addrs := freeAddrs(t, 3)
	exporterAddr, promAddr, amAddr := addrs[0], addrs[1], addrs[2]

	// The shipped configuration: its routes and inhibit rules, its timers
	// scaled down (scaledAMConfig), its example receivers delivering to
	// hook. No clustering.
	hook := startWebhook(t)
	am := startProcess(t, "alertmanager", s.amBin,
		"--config.file="+scaledAMConfig(t, s.root, tmp, hook.srv.URL, timeScale),
		"--storage.path="+filepath.Join(tmp, "alertmanager"),
		"--web.listen-address="+amAddr,
		"--cluster.listen-address=",
	)
	exporterArgs := []string{"--demo", "--web.listen-address=" + exporterAddr, "--scrape.timeout-offset=" + timeoutOffset}
	exporter := startProcess(t, "exporter", s.exporterBin, exporterArgs...)
	// Fleet mode under job basip, and the per-device mode's targets under
	// job basip_probe with every scraped series dropped but two: they give
	// the dashboard's probe panels their `up`, and the dashboard's counts
	// two copies of the series it must count once (dedupChecks), without
	// doubling the alerts.
	promConfig := writeFile(t, filepath.Join(tmp, "prometheus.yml"), fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[2]s
rule_files:
  - %[3]q
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%[4]q]
scrape_configs:
  - job_name: basip
    static_configs:
      - targets: [%[5]q]
  - job_name: basip_probe
    metrics_path: /probe
    http_sd_configs:
      - url: http://%[5]s/sd
        refresh_interval: 1m
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: %[5]q
    metric_relabel_configs:
      - action: keep
        regex: basip_device_info|basip_sip_policy_compliant
        source_labels: [__name__]
`, scrapeInterval, evalInterval, s.rulesFile, amAddr, exporterAddr))
	// A resend delay of 1s (default 1m): firing alerts are sent on every
	// evaluation and expire in Alertmanager within seconds once they stop
	// firing, so that what the API shows is the current state.
	prom := startProcess(t, "prometheus", s.promBin,
		"--config.file="+promConfig,
		"--storage.tsdb.path="+filepath.Join(tmp, "prometheus"),
		"--web.listen-address="+promAddr,
		"--rules.alert.resend-delay=1s",
	)
	for _, p := range []struct {
		proc *process
		addr string
	}{{am, amAddr}, {exporter, exporterAddr}, {prom, promAddr}} {
		p.proc.waitReady(t, "http://"+p.addr+"/-/ready")
	}
	ready := time.Now()
	t.Logf("processes ready after %v", ready.Sub(start).Round(time.Millisecond))
	amURL, promURL := "http://"+amAddr, "http://"+promAddr

	if !t.Run("alerts", func(t *testing.T) {
		got := waitForAlerts(t, amURL, exporterAddr)
		t.Logf("alert set exactly right and stable after %v", time.Since(ready).Round(time.Millisecond))
		for key, fragments := range expectedDescriptions {
			a, ok := got[key]
			if !ok {
				continue // already reported
			}
			for _, f := range fragments {
				if !strings.Contains(a.Annotations["description"], f) {
					t.Errorf("%s: description %q does not contain %q", key, a.Annotations["description"], f)
				}
			}
		}
	}) {
		return // the checks below depend on the alert set
	}
	t.Run("grouping", func(t *testing.T) { checkGroups(t, amURL) })
	t.Run("dashboard", func(t *testing.T) {
		d := loadDashboard(t, filepath.Join(s.root, "deploy", "grafana", "dashboards", "basip.json"))
		waitForQueries(t, promURL, d.queries)
		t.Logf("%d panel queries return data, %v after start", len(d.queries), time.Since(ready).Round(time.Millisecond))
		checkVariables(t, promURL, d.variables)
		checkLinks(t, exporterAddr, d.links)
		checkCounts(t, promURL, d.queries)
	})
	restartT := t
	t.Run("restart and reload", func(t *testing.T) {
		checkRestart(t, restartT, s, exporter, exporterArgs, hook, amURL, promURL, exporterAddr)
	})
	// Last: it adds alerts of its own to Alertmanager.
	t.Run("inhibition", func(t *testing.T) { checkInhibition(t, amURL, exporterAddr) })

	var dur struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(promURL+"/api/v1/query?"+url.Values{"query": {`max_over_time(scrape_duration_seconds{job="basip"}[5m])`}}.Encode(), &dur); err == nil && len(dur.Data.Result) == 1 {
		t.Logf("slowest scrape of the exporter: %vs (scrape timeout %v)", dur.Data.Result[0].Value[1], scrapeInterval)
	}
}

// ---------------------------------------------------------------------------
// Processes

// process is a child process in its own process group, with the tail of
// its output kept for the test log.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
}

func startProcess(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, out: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	// Its own process group, killed as a whole in the cleanup; and killed
	// by the kernel should the test binary die without cleaning up (a
	// -timeout panic, an interrupt).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s (%s): last output ---\n%s", name, strings.Join(p.cmd.Args, " "), p.out.tail(60))
		}
		p.stop(t)
	})
	return p
}

// stop ends the whole process group: SIGTERM, then SIGKILL after 10s.
func (p *process) stop(t *testing.T) {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Logf("%s did not stop on SIGTERM; killing it", p.name)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Anything else left in the group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady polls url until it answers 200.
func (p *process) waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(startupWait)
	var last string
	for {
		if p.exited() {
			t.Fatalf("%s exited during startup: %v", p.name, p.cmd.ProcessState)
		}
		resp, err := httpClient.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s after %v: %s", p.name, url, startupWait, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// tail returns the last n lines.
func (b *tailBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := bytes.Split(bytes.TrimRight(b.buf, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// ---------------------------------------------------------------------------
// Helpers

var httpClient = &http.Client{Timeout: 5 * time.Second}

func getJSON(url string, v any) error {
	resp, err := httpClient.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %s: %v", url, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.300s", url, resp.Status, body)
	}
	return nil
}

// lookBinary finds one of names in PATH or /usr/bin, or skips the test.
func lookBinary(t *testing.T, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		if p := filepath.Join("/usr/bin", n); isExecutable(p) {
			return p
		}
	}
	t.Skipf("end-to-end test skipped: %s not found (Debian package %s: apt-get install prometheus prometheus-alertmanager; .ci/run installs them)",
		strings.Join(names, " or "), pkg)
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	t.Fatal("go not in PATH")
	return ""
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool(t), "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		abs, aerr := filepath.Abs(filepath.Join("..", ".."))
		if aerr != nil {
			t.Fatal(aerr)
		}
		return abs
	}
	return filepath.Dir(gomod)
}

// freeAddrs returns n distinct free 127.0.0.1 addresses, on ports outside
// the kernel's ephemeral range. A port found with a listen on port 0 is no
// use: once closed, Linux hands it out again to the next listen on port 0
// (the demo's simulated devices in the exporter) or to an outgoing
// connection. Ports outside the ephemeral range are only ever taken by
// explicit request.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	lo, hi := 32768, 60999 // Linux's default ip_local_port_range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
			lo, hi = 32768, 60999
		}
	}
	// Candidates: 10000..lo-1 and hi+1..65535.
	var ranges [][2]int
	if lo > 10000 {
		ranges = append(ranges, [2]int{10000, lo - 1})
	}
	if hi < 65535 {
		ranges = append(ranges, [2]int{hi + 1, 65535})
	}
	if len(ranges) == 0 {
		t.Skip("no port range outside the ephemeral ports to run on")
	}
	var addrs []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for tries := 0; len(addrs) < n && tries < 1000; tries++ {
		r := ranges[rand.IntN(len(ranges))]
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(r[0]+rand.IntN(r[1]-r[0]+1)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken
		}
		ls = append(ls, l)
		addrs = append(addrs, addr)
	}
	if len(addrs) < n {
		t.Fatalf("found only %d free ports outside the ephemeral range", len(addrs))
	}
	return addrs
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
