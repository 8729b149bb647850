//go:build linux

// Package e2e runs the exporter over its --demo fleet against a real
// Prometheus and a real Alertmanager on 127.0.0.1: the alerts of
// deploy/prometheus/alerts.yml that the demo mix must raise reach
// Alertmanager, exactly those and nothing more, and every query of every
// panel of deploy/grafana/dashboards/basip.json returns data.
//
// It needs Debian's prometheus and prometheus-alertmanager packages (.ci/run
// installs them) and is skipped without them, and with -short.
//
//	go test ./collector/e2e/ -v
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
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
	// alertWait bounds the wait for the alerts (about 13s here). It is
	// kept under the exporter's one-minute login back-off, after which a
	// second rejected login makes basip_auth_failures_total increase:
	// BasipAuthenticationFailing must fire before that, from the poll
	// errors counted during the back-off.
	alertWait = 50 * time.Second
	// stableFor is how long the alert set must stay exactly right: more
	// than two scrapes and several rule evaluations.
	stableFor  = 2*scrapeInterval + time.Second
	queryWait  = 30 * time.Second
	pollPeriod = time.Second

	// The value substituted for Grafana's interval variables.
	grafanaInterval = "1m"
)

// expectedAlerts are the alerts the demo fleet (collector/simulator/demo.go,
// TestDemoFleetViolations) raises under deploy/prometheus/alerts.yml, as
// alertname{labels} without job and instance (checked separately):
//
//   - panel-silent never answers, panel-wrong-password's login is
//     rejected: both are down (basip_up 0); the latter's poll errors are
//     "auth", so it also fails authentication.
//   - monitor-102 is enabled and its sip/status is ERROR: not registered;
//     its policy violations are the proxy and the ring code.
//   - monitor-103-sip-off has SIP disabled (which suppresses "not
//     registered" although it is OFFLINE), violates the policy rule
//     "enabled" and reveals the weak password 123456.
//   - monitor-104-out-of-range violates the policy rules transports,
//     registration_interval and call_timeouts and the documented ranges of
//     transport (wss), registration_interval (3600) and timeout (90): one
//     schema alert per field.
//   - panel-entrance, monitor-101 and panel-https are healthy and
//     compliant. No device's settings change (BasipSIPSettingsChanged), the
//     exporter is up and its configuration loaded.
var expectedAlerts = []string{
	`BasipAuthenticationFailing{device="panel-wrong-password",severity="warning"}`,
	`BasipDeviceDown{device="panel-silent",severity="critical"}`,
	`BasipDeviceDown{device="panel-wrong-password",severity="critical"}`,
	`BasipSIPDisabled{device="monitor-103-sip-off",severity="critical"}`,
	`BasipSIPNotRegistered{device="monitor-102",severity="critical"}`,
	`BasipSIPPasswordWeak{device="monitor-103-sip-off",severity="warning"}`,
	`BasipSIPPolicyCallTimeout{device="monitor-104-out-of-range",policy="default",rule="call_timeouts",severity="warning"}`,
	`BasipSIPPolicyEnabled{device="monitor-103-sip-off",policy="default",rule="enabled",severity="warning"}`,
	`BasipSIPPolicyProxy{device="monitor-102",policy="default",rule="proxy",severity="warning"}`,
	`BasipSIPPolicyRegistrationInterval{device="monitor-104-out-of-range",policy="default",rule="registration_interval",severity="warning"}`,
	`BasipSIPPolicyRingCode{device="monitor-102",policy="default",rule="ring_code",severity="warning"}`,
	`BasipSIPPolicyTransport{device="monitor-104-out-of-range",policy="default",rule="transports",severity="warning"}`,
	`BasipSIPSchemaViolation{device="monitor-104-out-of-range",field="registration_interval",severity="warning"}`,
	`BasipSIPSchemaViolation{device="monitor-104-out-of-range",field="timeout",severity="warning"}`,
	`BasipSIPSchemaViolation{device="monitor-104-out-of-range",field="transport",severity="warning"}`,
}

// expectedDescriptions are fragments the annotations must contain: the
// templates look the offending values up with `query`, which only the real
// Prometheus exercises against the exporter's real label sets.
var expectedDescriptions = map[string][]string{
	`BasipDeviceDown{device="panel-silent",severity="critical"}`:                                                                             {"Poll errors in the last 10 minutes: timeout."},
	`BasipDeviceDown{device="panel-wrong-password",severity="critical"}`:                                                                     {"Poll errors in the last 10 minutes: auth."},
	`BasipSIPNotRegistered{device="monitor-102",severity="critical"}`:                                                                        {`registration status error`, `proxy "sip:old-pbx.example.com", user "102"`},
	`BasipSIPPolicyProxy{device="monitor-102",policy="default",rule="proxy",severity="warning"}`:                                             {`uses SIP proxy "sip:old-pbx.example.com"`},
	`BasipSIPPolicyRingCode{device="monitor-102",policy="default",rule="ring_code",severity="warning"}`:                                      {"ring code flag of monitor-102 is 1,"},
	`BasipSIPPolicyEnabled{device="monitor-103-sip-off",policy="default",rule="enabled",severity="warning"}`:                                 {"enabled flag of monitor-103-sip-off is 0,"},
	`BasipSIPPolicyTransport{device="monitor-104-out-of-range",policy="default",rule="transports",severity="warning"}`:                       {`uses SIP transport "wss"`},
	`BasipSIPPolicyRegistrationInterval{device="monitor-104-out-of-range",policy="default",rule="registration_interval",severity="warning"}`: {"is 3600s,"},
	`BasipSIPPolicyCallTimeout{device="monitor-104-out-of-range",policy="default",rule="call_timeouts",severity="warning"}`:                  {"is 90s,"},
	`BasipSIPSchemaViolation{device="monitor-104-out-of-range",field="registration_interval",severity="warning"}`:                            {"(registration interval 3600s)."},
	`BasipSIPSchemaViolation{device="monitor-104-out-of-range",field="timeout",severity="warning"}`:                                          {"(call timeout 90s)."},
	`BasipSIPSchemaViolation{device="monitor-104-out-of-range",field="transport",severity="warning"}`:                                        {`(transport "wss").`},
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	promBin := lookBinary(t, "prometheus", "prometheus")
	amBin := lookBinary(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	promtool := lookBinary(t, "prometheus", "promtool")
	root := moduleRoot(t)
	tmp := t.TempDir()
	start := time.Now()

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

	exporterBin := filepath.Join(tmp, "basip_exporter")
	buildCtx, cancelBuild := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancelBuild()
	build := exec.CommandContext(buildCtx, goTool(t), "build", "-o", exporterBin, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("exporter built in %v", time.Since(start).Round(time.Millisecond))

	addrs := freeAddrs(t, 3)
	exporterAddr, promAddr, amAddr := addrs[0], addrs[1], addrs[2]

	// Alertmanager: one null receiver, no clustering.
	amDir := filepath.Join(tmp, "alertmanager")
	amConfig := writeFile(t, filepath.Join(tmp, "alertmanager.yml"), `route:
  receiver: "null"
  group_by: [alertname, device]
receivers:
  - name: "null"
`)
	am := startProcess(t, "alertmanager", amBin,
		"--config.file="+amConfig,
		"--storage.path="+amDir,
		"--web.listen-address="+amAddr,
		"--cluster.listen-address=",
	)

	exporter := startProcess(t, "exporter", exporterBin,
		"--demo",
		"--web.listen-address="+exporterAddr,
		"--scrape.timeout-offset="+timeoutOffset,
	)

	// The rules with every `for:` set to 0s, so that the alerts fire within
	// seconds; the durations themselves are covered by the promtool tests
	// (deploy/prometheus/alerts_test.yml).
	rules, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	forRe := regexp.MustCompile(`(?m)^(\s*for:\s*)\S+`)
	if len(forRe.FindAll(rules, -1)) == 0 {
		t.Fatal("alerts.yml: no `for:` durations found to rewrite")
	}
	rulesFile := writeFile(t, filepath.Join(tmp, "alerts.yml"), string(forRe.ReplaceAll(rules, []byte("${1}0s"))))
	if out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules (for: 0s copy): %v\n%s", err, out)
	}
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
`, scrapeInterval, evalInterval, rulesFile, amAddr, exporterAddr))
	// A resend delay of 1s (default 1m): firing alerts are sent on every
	// evaluation and expire in Alertmanager within seconds once they stop
	// firing, so that what the API shows is the current state.
	prom := startProcess(t, "prometheus", promBin,
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
	t.Logf("processes ready %v after the start (build included)", ready.Sub(start).Round(time.Millisecond))

	t.Run("alerts", func(t *testing.T) {
		got := waitForAlerts(t, "http://"+amAddr, exporterAddr)
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
	})

	t.Run("dashboard", func(t *testing.T) {
		queries := dashboardQueries(t, filepath.Join(root, "deploy", "grafana", "dashboards", "basip.json"))
		if len(queries) == 0 {
			t.Fatal("no panel queries in the dashboard")
		}
		waitForQueries(t, "http://"+promAddr, queries)
		t.Logf("%d panel queries return data, %v after start", len(queries), time.Since(ready).Round(time.Millisecond))
	})
	var dur struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON("http://"+promAddr+"/api/v1/query?"+url.Values{"query": {`max_over_time(scrape_duration_seconds{job="basip"}[5m])`}}.Encode(), &dur); err == nil && len(dur.Data.Result) == 1 {
		t.Logf("slowest scrape of the exporter: %vs (scrape timeout %v)", dur.Data.Result[0].Value[1], scrapeInterval)
	}
	t.Logf("end-to-end test took %v", time.Since(start).Round(time.Millisecond))
}

// ---------------------------------------------------------------------------
// Alertmanager

type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// alertKey is alertname{labels} without job and instance.
func alertKey(labels map[string]string) string {
	var names []string
	for k := range labels {
		if k != "alertname" && k != "job" && k != "instance" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(labels["alertname"])
	b.WriteString("{")
	for i, k := range names {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteString("}")
	return b.String()
}

// fetchAlerts returns Alertmanager's active alerts by key. Alerts that are
// not for the exporter's job and instance are reported as problems.
func fetchAlerts(amURL, exporterAddr string) (map[string]amAlert, []string, error) {
	var alerts []amAlert
	if err := getJSON(amURL+"/api/v2/alerts", &alerts); err != nil {
		return nil, nil, err
	}
	now := time.Now()
	got := map[string]amAlert{}
	var problems []string
	for _, a := range alerts {
		if !a.EndsAt.IsZero() && a.EndsAt.Before(now) {
			continue // resolved
		}
		key := alertKey(a.Labels)
		if a.Labels["job"] != "basip" || a.Labels["instance"] != exporterAddr {
			problems = append(problems, fmt.Sprintf("%s: job=%q instance=%q, want basip and %s", key, a.Labels["job"], a.Labels["instance"], exporterAddr))
		}
		for _, ann := range []string{"summary", "description"} {
			v := a.Annotations[ann]
			if v == "" || strings.Contains(v, "<no value>") || strings.Contains(v, "error expanding") || strings.Contains(v, "error executing") {
				problems = append(problems, fmt.Sprintf("%s: bad %s %q", key, ann, v))
			}
		}
		if _, dup := got[key]; dup {
			problems = append(problems, key+": twice")
		}
		got[key] = a
	}
	return got, problems, nil
}

// waitForAlerts waits until Alertmanager holds exactly expectedAlerts, and
// that for stableFor, and returns them. On timeout it fails with the
// difference.
func waitForAlerts(t *testing.T, amURL, exporterAddr string) map[string]amAlert {
	t.Helper()
	want := slices.Clone(expectedAlerts)
	sort.Strings(want)
	deadline := time.Now().Add(alertWait)
	var (
		got         map[string]amAlert
		problems    []string
		err         error
		stableSince time.Time
	)
	start := time.Now()
	var seen []string
	for {
		got, problems, err = fetchAlerts(amURL, exporterAddr)
		if keys := slices.Sorted(maps.Keys(got)); err == nil && !slices.Equal(keys, seen) {
			t.Logf("%v: %d alerts in Alertmanager (%d expected)", time.Since(start).Round(100*time.Millisecond), len(keys), len(want))
			seen = keys
		}
		if err == nil && len(problems) == 0 && slices.Equal(slices.Sorted(maps.Keys(got)), want) {
			if stableSince.IsZero() {
				stableSince = time.Now()
			}
			if time.Since(stableSince) >= stableFor {
				return got
			}
		} else {
			stableSince = time.Time{}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(pollPeriod)
	}
	if err != nil {
		t.Fatalf("Alertmanager API: %v", err)
	}
	keys := slices.Sorted(maps.Keys(got))
	var missing, extra []string
	for _, k := range want {
		if !slices.Contains(keys, k) {
			missing = append(missing, k)
		}
	}
	for _, k := range keys {
		if !slices.Contains(want, k) {
			extra = append(extra, k)
		}
	}
	t.Fatalf("Alertmanager does not hold exactly the expected alerts after %v\nmissing:\n  %s\nunexpected:\n  %s\nproblems:\n  %s\nall:\n  %s",
		alertWait, strings.Join(missing, "\n  "), strings.Join(extra, "\n  "), strings.Join(problems, "\n  "), strings.Join(keys, "\n  "))
	return nil
}

// ---------------------------------------------------------------------------
// Dashboard

type panelQuery struct {
	panel, refID, expr string
}

// dashboardQueries returns every target expression of every panel (rows'
// nested panels included) with Grafana's variables substituted: the device
// variable by its "All" value, the interval variables by grafanaInterval.
func dashboardQueries(t *testing.T, path string) []panelQuery {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	subst := strings.NewReplacer(
		"${device:regex}", ".*", "${device}", ".*", "$device", ".*",
		"${__rate_interval}", grafanaInterval, "$__rate_interval", grafanaInterval,
		"${__interval}", grafanaInterval, "$__interval", grafanaInterval,
		"${__range}", grafanaInterval, "$__range", grafanaInterval,
	)
	var out []panelQuery
	var walk func([]json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					continue
				}
				expr := subst.Replace(tg.Expr)
				if strings.Contains(expr, "$") {
					t.Errorf("panel %q %s: unsubstituted variable in %q", p.Title, tg.RefID, expr)
				}
				out = append(out, panelQuery{panel: p.Title, refID: tg.RefID, expr: expr})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	return out
}

// queryResult runs an instant query and returns how many series or values
// it gave.
func queryResult(promURL, expr string) (int, error) {
	var resp struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	err := getJSON(promURL+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), &resp)
	if resp.Status != "" && resp.Status != "success" {
		return 0, fmt.Errorf("status %s: %s: %s", resp.Status, resp.ErrorType, resp.Error)
	}
	if err != nil {
		return 0, err
	}
	switch resp.Data.ResultType {
	case "vector", "matrix":
		var r []json.RawMessage
		if err := json.Unmarshal(resp.Data.Result, &r); err != nil {
			return 0, err
		}
		return len(r), nil
	case "scalar", "string":
		return 1, nil
	}
	return 0, fmt.Errorf("result type %q", resp.Data.ResultType)
}

// waitForQueries waits until every query returns data; rates need two
// samples in their range. On timeout it fails naming each empty or failing
// query.
func waitForQueries(t *testing.T, promURL string, queries []panelQuery) {
	t.Helper()
	deadline := time.Now().Add(queryWait)
	for {
		var failures []string
		for _, q := range queries {
			n, err := queryResult(promURL, q.expr)
			switch {
			case err != nil:
				failures = append(failures, fmt.Sprintf("panel %q %s: %v\n    %s", q.panel, q.refID, err, q.expr))
			case n == 0:
				failures = append(failures, fmt.Sprintf("panel %q %s: no data\n    %s", q.panel, q.refID, q.expr))
			}
		}
		if len(failures) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d dashboard queries fail:\n  %s", queryWait, len(failures), len(queries), strings.Join(failures, "\n  "))
		}
		time.Sleep(pollPeriod)
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
