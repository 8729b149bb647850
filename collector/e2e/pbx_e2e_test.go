//go:build linux

package e2e

import (
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/basip/basip_exporter/collector/internal/kamailiotest"
	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/basip/basip_exporter/collector/simulator/sipua"
)

// The fleet of TestPBXIncidents: three door panels at each of three sites,
// all registering with one Kamailio, the PBX pbxName of the exporter's
// configuration. Three per site, so that a site whose doors all lose
// their registration is a site outage under the shipped rules (at least
// 3 devices and half of the site), and nine on one proxy, a proxy outage.
const (
	pbxName      = "pbx-k"
	doorsPerSite = 3
)

var pbxSites = []string{"site-a", "site-b", "site-c"}

// The doors' SIP registration: a short expiry, refreshed at half of it,
// so that a door notices within seconds that its PBX is gone.
const (
	doorSIPExpires = 4 * time.Second
	doorSIPTimeout = time.Second
	doorSIPRetry   = 300 * time.Millisecond
)

// pbxKeepScale divides the rules' keep_firing_for in TestPBXIncidents (10m
// is 20s, 15m is 30s): their relation is kept, as the inhibition of a PBX's
// devices depends on it. The PBX alert keeps firing 15 minutes after the
// PBX answers again, its devices' alerts 10 minutes after they register
// again: theirs end first and are never sent. A single value for both, as
// TestEndToEnd's, would end them together, and a device that registers
// again one scrape after its PBX answers would page once the PBX alert is
// gone.
const pbxKeepScale = 30

// The shipped Alertmanager timers on the test's clock (scaledAMConfig with
// timeScale).
var (
	pagerGroupInterval  = scaled(5 * time.Minute)
	pagerRepeatInterval = scaled(4 * time.Hour)
	ticketGroupWait     = scaled(10 * time.Minute)
)

// pbxSettle is how long a phase watches once its alerts have fired: past
// the ticket route's group wait, two group intervals of the pager route
// and two scrapes. An alert that fired with the others and is not held
// back has been notified by then.
var pbxSettle = ticketGroupWait + 2*pagerGroupInterval + 2*scrapeInterval

// pbxQuiet is how long the healthy fleet is watched for notifications:
// three times the ticket route's group wait and two scrapes more.
var pbxQuiet = 3*ticketGroupWait + 2*scrapeInterval

// pbxWait bounds each wait for an observable condition (a series in
// Prometheus, an alert in Alertmanager, a notification).
const pbxWait = 60 * time.Second

// TestPBXIncidents runs a PBX's incidents through the whole chain, with
// nothing posted by the test: simulated BAS-IP door panels that register
// for real with a real Kamailio, the exporter binary over them and the PBX,
// Prometheus with the shipped rules (every `for:` but the exporter's own
// alerts' 0s), and Alertmanager with the shipped configuration (its
// timers scaled down) delivering to a webhook that counts the
// notifications per receiver. For Prometheus 2, then Prometheus 3:
//
//   - 0, healthy: every door registered at the PBX, the PBX answering;
//     no notification at all;
//   - 1, a foreign contact: another box registers the account of a door
//     of site-a; one page, BasipSIPAccountForeignContact, and nothing
//     else; the box unregisters and the alert resolves: one resolved
//     message;
//   - 2, Kamailio stopped: the doors of the three sites lose their
//     registration; one page, BasipPBXUnreachable, and nothing else: the
//     doors' BasipSIPNotRegistered and the registrar's alert are in
//     Alertmanager, inhibited by the PBX's alert, and neither a site nor a
//     proxy outage fires in Prometheus;
//   - 3, Kamailio started again: the doors register again, the alerts
//     resolve; one resolved message for the PBX's page.
func TestPBXIncidents(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	prom2 := lookBinary(t, "prometheus", "prometheus")
	amBin := lookBinary(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	promtool := lookBinary(t, "prometheus", "promtool")
	root := moduleRoot(t)
	start := time.Now()
	exporterBin := buildExporter(t)
	rulesFile := writeFastRules(t, root, t.TempDir(), promtool, func(shipped string) string {
		d, err := time.ParseDuration(shipped)
		if err != nil {
			t.Fatalf("alerts.yml: keep_firing_for: %s: %v", shipped, err)
		}
		return (d / pbxKeepScale).String()
	})
	base := pbxLeg{root: root, exporterBin: exporterBin, amBin: amBin, rulesFile: rulesFile}

	var tables []string
	t.Run("prometheus2", func(t *testing.T) {
		l := base
		l.promBin = prom2
		defer func() { tables = append(tables, l.table("prometheus2")) }()
		l.run(t)
	})
	t.Run("prometheus3", func(t *testing.T) {
		bin := os.Getenv(prometheus3Env)
		if bin == "" {
			t.Skipf("%s is not set: no Prometheus 3 binary to run against (.ci/run builds one with go install)", prometheus3Env)
		}
		if !isExecutable(bin) {
			t.Fatalf("%s=%s is not an executable file", prometheus3Env, bin)
		}
		l := base
		l.promBin = bin
		defer func() { tables = append(tables, l.table("prometheus3")) }()
		l.run(t)
	})
	t.Logf("notifications per phase:\n%s", strings.Join(tables, "\n"))
	t.Logf("PBX incidents took %v", time.Since(start).Round(time.Millisecond))
}

// pbxDoor is a simulated door panel of TestPBXIncidents.
type pbxDoor struct {
	name, site, user string
	dev              *simulator.Device
}

// pbxPhase is what one phase of a leg saw.
type pbxPhase struct {
	name                                  string
	pagerFiring, pagerResolved, tickets   int
	repeats                               int
	took                                  time.Duration
	lines                                 []string
	firstPageAfter, lastNotificationAfter time.Duration
}

// pbxLeg is one run of the fleet, Kamailio, the exporter, Alertmanager and
// a Prometheus.
type pbxLeg struct {
	root, exporterBin, amBin, rulesFile, promBin string

	t              *testing.T
	k              *kamailiotest.Server
	doors          []pbxDoor
	hook           *webhook
	promURL, amURL string

	phase      string
	phaseStart time.Time
	from       int // the phase's first notification
	phases     []pbxPhase
}

func (l *pbxLeg) run(t *testing.T) {
	l.t = t
	start := time.Now()
	if out, err := os.ReadFile("/proc/loadavg"); err == nil {
		t.Logf("load average: %s", strings.TrimSpace(string(out)))
	}
	tmp := t.TempDir()
	l.k = kamailiotest.Start(t, kamailiotest.Options{TimerInterval: time.Second})

	// The doors, each with its own SIP user at the Kamailio, registering
	// for real: their sip/status is what their registration gives.
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  timeout: 2s\n  min_poll_interval: 0s\n  collect: [settings, status, info]\n"+
		"credentials:\n  default: {username: %s, password: %q}\ndevices:\n", testutil.User, testutil.Password)
	for s, site := range pbxSites {
		for i := range doorsPerSite {
			door := pbxDoor{name: fmt.Sprintf("%s-door-%d", site, i+1), site: site, user: fmt.Sprintf("2%d%02d", s+1, i+1)}
			d := testutil.Panel(door.user, "udp")
			settings := simulator.PanelSettings(door.user, "udp")
			settings["proxy"] = "sip:" + l.k.SIPAddr
			d.SetSettings(settings)
			d.SetStatus(simulator.Status("OK", time.Now().Unix()))
			d.SetInfo(simulator.Info(door.name, "AV-08FB", "panel", "3.9.1", "v1"))
			if err := d.RegisterSIP(simulator.SIPRegistration{Expires: doorSIPExpires, Timeout: doorSIPTimeout, RetryAfter: doorSIPRetry}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(d.StopSIP)
			srv, err := simulator.Serve(d)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			door.dev = d
			l.doors = append(l.doors, door)
			fmt.Fprintf(&cfg, "  - name: %s\n    address: %s\n    api_version: v1\n    labels: {site: %s}\n", door.name, srv.URL, site)
		}
	}
	fmt.Fprintf(&cfg, "pbxs:\n  - name: %s\n    sip: udp://%s\n    registrar: {type: kamailio, url: %q}\n", pbxName, l.k.SIPAddr, l.k.RPCURL)
	configFile := writeFile(t, filepath.Join(tmp, "basip.yml"), cfg.String())
	// Registered before the exporter's first poll: a door that said ERROR
	// for a moment would fire its alert (for: 0s here).
	l.until("every door registered with Kamailio", 15*time.Second, nil, func() (bool, string) {
		var not []string
		for _, d := range l.doors {
			if ua := d.dev.SIPAgent(); ua == nil || !ua.Registered() {
				not = append(not, d.name)
			}
		}
		return len(not) == 0, "not registered: " + strings.Join(not, ", ")
	})

	addrs := freeAddrs(t, 3)
	exporterAddr, promAddr, amAddr := addrs[0], addrs[1], addrs[2]
	l.hook = startWebhook(t)
	am := startProcess(t, "alertmanager", l.amBin,
		"--config.file="+scaledAMConfig(t, l.root, tmp, l.hook.srv.URL, timeScale),
		"--storage.path="+filepath.Join(tmp, "alertmanager"),
		"--web.listen-address="+amAddr,
		"--cluster.listen-address=",
	)
	exporter := startProcess(t, "exporter", l.exporterBin,
		"--config.file="+configFile, "--web.listen-address="+exporterAddr, "--scrape.timeout-offset="+timeoutOffset)
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
`, scrapeInterval, evalInterval, l.rulesFile, amAddr, exporterAddr))
	prom := startProcess(t, "prometheus", l.promBin,
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
	l.amURL, l.promURL = "http://"+amAddr, "http://"+promAddr
	if out, err := exec.Command(l.promBin, "--version").CombinedOutput(); err == nil {
		t.Logf("%s: %s", l.promBin, strings.SplitN(string(out), "\n", 2)[0])
	}
	t.Logf("Kamailio at %s, %d doors, processes ready after %v", l.k.SIPAddr, len(l.doors), time.Since(start).Round(time.Millisecond))

	l.healthy()
	l.foreignContact()
	l.pbxDown()
	l.pbxBack()
	t.Logf("leg took %v", time.Since(start).Round(time.Millisecond))
}

// ---------------------------------------------------------------------------
// Phases

// healthy: every door registered at the PBX, the PBX answering; then no
// notification at all while the fleet is watched.
func (l *pbxLeg) healthy() {
	l.begin("0 healthy")
	l.untilQuery("every door registered at the PBX, the PBX answering", pbxWait, nil,
		fmt.Sprintf(`count(basip_pbx_registration{pbx=%q,state="registered"} == 1) == %d and on () count(basip_pbx_sip_up{pbx=%[1]q} == 1) == 1`, pbxName, len(l.doors)))
	l.watch(pbxQuiet, nil)
	l.untilQuery("no alert in Prometheus", 5*time.Second, nil, `absent(ALERTS)`)
	l.untilAM("no alert in Alertmanager", 5*time.Second, nil, func(alerts []amAlert) (bool, string) {
		return len(alerts) == 0, ""
	})
	l.end(nil)
}

// foreignContact: a box at 127.0.0.2 registers the account of a door of
// site-a. One page names the door and the PBX; once the box unregisters
// the alert resolves (keep_firing_for later) and the pager, which sends
// resolved messages, gets one.
func (l *pbxLeg) foreignContact() {
	l.begin("1 foreign contact")
	door := l.doors[0]
	key := fmt.Sprintf(`BasipSIPAccountForeignContact{device=%q,pbx=%q,severity="critical",site=%q}`, door.name, pbxName, door.site)
	firing := "pager firing [firing " + key + "]"
	resolved := "pager resolved [resolved " + key + "]"
	want := []string{firing, resolved}

	thief, err := sipua.New(sipua.Options{User: door.user, Password: "stolen", Proxy: l.k.SIPAddr, LocalIP: "127.0.0.2", Expires: 30 * time.Second})
	if err != nil {
		l.t.Fatal(err)
	}
	if err := thief.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(thief.Stop)
	l.untilQuery("the door's state foreign at the PBX", pbxWait, want,
		fmt.Sprintf(`basip_pbx_registration{device=%q,pbx=%q,state="foreign"} == 1`, door.name, pbxName))
	l.untilNotified(firing, pbxWait, want)
	l.watch(pbxSettle, want[:1])
	l.untilAM("the foreign contact active (not held back) in Alertmanager", 5*time.Second, want, func(alerts []amAlert) (bool, string) {
		var seen []string
		for _, a := range alerts {
			seen = append(seen, a.Status.State+" "+alertKey(a.Labels))
		}
		return slices.Equal(seen, []string{"active " + key}), strings.Join(seen, "; ")
	})

	thief.Stop()
	l.untilQuery("the door registered at the PBX again", pbxWait, want,
		fmt.Sprintf(`basip_pbx_registration{device=%q,pbx=%q,state="registered"} == 1`, door.name, pbxName))
	l.untilNotified(resolved, pbxWait, want)
	l.untilQuery("no alert in Prometheus", pbxWait, want, `absent(ALERTS)`)
	l.watch(2*pagerGroupInterval+scrapeInterval, want)
	l.end(want)
}

// pbxDown: Kamailio stops. The doors' refreshes fail within seconds and
// their status says not registered; the PBX does not answer OPTIONS and
// its registrar cannot be read. One page, the PBX's; the doors'
// registration alerts and the registrar's alert are in Alertmanager,
// inhibited by it; no site or proxy outage fires.
func (l *pbxLeg) pbxDown() {
	l.begin("2 Kamailio stopped")
	pbxKey := fmt.Sprintf(`BasipPBXUnreachable{pbx=%q,severity="critical"}`, pbxName)
	page := "pager firing [firing " + pbxKey + "]"
	want := []string{page}
	outages := `ALERTS{alertname=~"BasipSiteSIPOutage|BasipSIPProxyOutage"}`

	l.k.Stop()
	stopped := time.Now()
	l.untilQuery("the PBX unreachable and every door's registration alert firing in Prometheus", pbxWait, want,
		fmt.Sprintf(`count(ALERTS{alertname="BasipSIPNotRegistered",alertstate="firing",pbx=%q}) == %d
		  and on () count(ALERTS{alertname="BasipPBXUnreachable",alertstate="firing",pbx=%[1]q}) == 1
		  and on () count(ALERTS{alertname="BasipPBXRegistrarDown",alertstate="firing",pbx=%[1]q}) == 1`, pbxName, len(l.doors)))
	l.t.Logf("%v after Kamailio stopped: the PBX's alert and the %d doors' registration alerts fire in Prometheus", time.Since(stopped).Round(100*time.Millisecond), len(l.doors))
	l.untilNotified(page, pbxWait, want)

	// Alertmanager holds the doors' and the registrar's alerts, each
	// suppressed, inhibited by the PBX's alert.
	var wantHeld []string
	for _, d := range l.doors {
		wantHeld = append(wantHeld, fmt.Sprintf(`BasipSIPNotRegistered{device=%q,pbx=%q,proxy="sip:%s",severity="critical",site=%q}`, d.name, pbxName, l.k.SIPAddr, d.site))
	}
	wantHeld = append(wantHeld, fmt.Sprintf(`BasipPBXRegistrarDown{pbx=%q,severity="warning"}`, pbxName))
	sort.Strings(wantHeld)
	var held []string
	l.untilAM("the doors' and the registrar's alerts suppressed in Alertmanager, inhibited by the PBX's", pbxWait, want, func(alerts []amAlert) (bool, string) {
		pbxFP := ""
		for _, a := range alerts {
			if alertKey(a.Labels) == pbxKey && a.Status.State == "active" {
				pbxFP = a.Fingerprint
			}
		}
		var got, wrong []string
		for _, a := range alerts {
			k := alertKey(a.Labels)
			if k == pbxKey {
				continue
			}
			got = append(got, k)
			if a.Status.State != "suppressed" || pbxFP == "" || !slices.Contains(a.Status.InhibitedBy, pbxFP) {
				wrong = append(wrong, fmt.Sprintf("%s: %s, inhibited by %v", k, a.Status.State, a.Status.InhibitedBy))
			}
		}
		sort.Strings(got)
		held = got
		return pbxFP != "" && len(wrong) == 0 && slices.Equal(got, wantHeld),
			fmt.Sprintf("PBX alert fingerprint %q; not held back by it: %v; held: %d of %d", pbxFP, wrong, len(got), len(wantHeld))
	})
	l.t.Logf("held back in Alertmanager (suppressed, inhibitedBy %s):\n  %s", pbxKey, strings.Join(held, "\n  "))

	// Long enough for a site or proxy outage, a door's alert or the
	// registrar's ticket that were not held back to be notified.
	l.watchWhile(pbxSettle, want, "no site or proxy outage in Prometheus", outages)
	window := int(time.Since(stopped).Seconds()) + 1
	if r := l.query(fmt.Sprintf(`max_over_time(%s[%ds])`, outages, window)); len(r) > 0 {
		l.fail("a site or proxy outage fired in Prometheus since Kamailio stopped: %s", samplesText(r))
	}
	// Without the PBX's alert these doors would be outages: each site has
	// all its doors unregistered, the proxy all nine.
	sites := l.query(fmt.Sprintf(`site:basip_sip_unregistered:count == %d`, doorsPerSite))
	proxy := l.query(fmt.Sprintf(`sum(device_proxy:basip_sip_unregistered:bool{pbx=%q}) == %d`, pbxName, len(l.doors)))
	if len(sites) != len(pbxSites) || len(proxy) != 1 {
		l.fail("the doors' registrations are not all lost in Prometheus: sites %s; proxy %s", samplesText(sites), samplesText(proxy))
	}
	l.t.Logf("site:basip_sip_unregistered:count is %d at each of the %d sites and %d doors of the PBX's proxy are unregistered; site:basip_sip_unregistered_unexplained:count: %s",
		doorsPerSite, len(pbxSites), len(l.doors), samplesText(l.query(`site:basip_sip_unregistered_unexplained:count`)))
	l.end(want)
}

// pbxBack: Kamailio starts again, the doors register again. The alerts
// resolve; the pager gets the PBX's resolved message and nothing else.
func (l *pbxLeg) pbxBack() {
	l.begin("3 Kamailio started")
	pbxKey := fmt.Sprintf(`BasipPBXUnreachable{pbx=%q,severity="critical"}`, pbxName)
	resolved := "pager resolved [resolved " + pbxKey + "]"
	want := []string{resolved}
	// With `for: 0s`, a scrape that finds the PBX answering before all
	// three doors of a site have registered again (within a REGISTER
	// retry) is a site outage at once; the shipped `for: 3m` absorbs it.
	// Such a page is told apart below, by what Prometheus recorded.
	siteOutage := func(line string) bool {
		return strings.HasPrefix(line, "pager firing [firing BasipSiteSIPOutage{") || strings.HasPrefix(line, "pager resolved [resolved BasipSiteSIPOutage{")
	}

	l.k.Start()
	started := time.Now()
	l.untilQuery("every door registered at the PBX again, the PBX answering", pbxWait, want,
		fmt.Sprintf(`count(basip_pbx_registration{pbx=%q,state="registered"} == 1) == %d and on () count(basip_pbx_sip_up{pbx=%[1]q} == 1) == 1`, pbxName, len(l.doors)), siteOutage)
	l.t.Logf("%v after Kamailio started: every door registered at the PBX again", time.Since(started).Round(100*time.Millisecond))
	l.untilNotified(resolved, pbxWait+30*time.Second, want, siteOutage)
	l.untilQuery("no alert in Prometheus", pbxWait, want, `absent(ALERTS)`, siteOutage)
	l.watch(2*pagerGroupInterval+2*scrapeInterval, want, siteOutage)

	window := int(time.Since(started).Seconds()) + 1
	fired := l.query(fmt.Sprintf(`max_over_time(ALERTS{alertname="BasipSiteSIPOutage",alertstate="firing"}[%ds])`, window))
	for _, s := range fired {
		k := alertKey(s.Metric)
		want = append(want, "pager firing [firing "+k+"]", "pager resolved [resolved "+k+"]")
	}
	if len(fired) > 0 {
		l.t.Logf("the first scrape after Kamailio answered again found every door of a site not yet registered again: %s fired (for: 0s here, 3m shipped) and its page and resolved message are expected", samplesText(fired))
	}
	if r := l.query(fmt.Sprintf(`max_over_time(ALERTS{alertname="BasipSIPProxyOutage",alertstate="firing"}[%ds])`, window)); len(r) > 0 {
		l.t.Logf("held back by the PBX's alert, as its proxy carries the PBX: %s", samplesText(r))
	}
	l.end(want)
}

// ---------------------------------------------------------------------------
// Phase bookkeeping

func (l *pbxLeg) begin(name string) {
	l.phase, l.phaseStart, l.from = name, time.Now(), len(l.hook.notifications())
	l.t.Logf("phase %s", name)
}

// end checks that the phase's notifications are exactly want (repeats of
// a page after the pager's repeat interval aside), and records them.
func (l *pbxLeg) end(want []string) {
	l.t.Helper()
	lines, repeats, problem := l.phaseLines(want, nil, true)
	ph := pbxPhase{name: l.phase, took: time.Since(l.phaseStart), lines: lines, repeats: repeats}
	ns, at := l.notified()
	for i, n := range ns[l.from:] {
		switch {
		case n.Receiver == "ticket":
			ph.tickets++
		case n.Status == "resolved":
			ph.pagerResolved++
		default:
			ph.pagerFiring++
			if ph.firstPageAfter == 0 {
				ph.firstPageAfter = at[l.from+i].Sub(l.phaseStart)
			}
		}
		ph.lastNotificationAfter = at[l.from+i].Sub(l.phaseStart)
	}
	l.phases = append(l.phases, ph)
	if problem != "" {
		l.fail("%s", problem)
	}
	l.t.Logf("phase %s: %d notification(s) in %v, as expected: %q", l.phase, len(lines), ph.took.Round(100*time.Millisecond), lines)
}

// notified returns every notification so far and when each arrived.
func (l *pbxLeg) notified() ([]notification, []time.Time) {
	l.hook.mu.Lock()
	defer l.hook.mu.Unlock()
	return slices.Clone(l.hook.got), slices.Clone(l.hook.at)
}

// noteLine is a notification as receiver, status and its alerts (status
// and key).
func noteLine(n notification) string {
	var alerts []string
	for _, a := range n.Alerts {
		alerts = append(alerts, a.Status+" "+alertKey(a.Labels))
	}
	sort.Strings(alerts)
	return fmt.Sprintf("%s %s [%s]", n.Receiver, n.Status, strings.Join(alerts, ", "))
}

// phaseLines returns the phase's notifications as lines, without repeats
// (a firing page sent again, unchanged, after the pager's repeat
// interval), and what is wrong with them: a line that is not in want
// (each line of want once) nor allowed by maybe; when complete, also a
// line of want that has not arrived.
func (l *pbxLeg) phaseLines(want []string, maybe func(string) bool, complete bool) (lines []string, repeats int, problem string) {
	ns, at := l.notified()
	left := map[string]int{}
	for _, w := range want {
		left[w]++
	}
	last := map[string]time.Time{}
	var unexpected []string
	for i := l.from; i < len(ns); i++ {
		line := noteLine(ns[i])
		if prev, ok := last[line]; ok && ns[i].Status == "firing" && at[i].Sub(prev) >= pagerRepeatInterval-time.Second {
			repeats++
			last[line] = at[i]
			continue
		}
		last[line] = at[i]
		lines = append(lines, line)
		switch {
		case left[line] > 0:
			left[line]--
		case maybe != nil && maybe(line):
		default:
			unexpected = append(unexpected, line)
		}
	}
	var missing []string
	if complete {
		for _, w := range want {
			if left[w] > 0 {
				missing = append(missing, w)
				left[w]--
			}
		}
	}
	if len(unexpected) > 0 || len(missing) > 0 {
		problem = fmt.Sprintf("phase %s: notifications not as expected\nunexpected:\n  %s\nmissing:\n  %s",
			l.phase, strings.Join(unexpected, "\n  "), strings.Join(missing, "\n  "))
	}
	return lines, repeats, problem
}

// until polls cond until it holds, failing the test after timeout with
// what, cond's last account and the state of the chain; and at once when a
// notification outside want (or maybe) arrives.
func (l *pbxLeg) until(what string, timeout time.Duration, want []string, cond func() (bool, string), maybe ...func(string) bool) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if l.hook != nil {
			if _, _, problem := l.phaseLines(want, anyOf(maybe), false); problem != "" {
				l.fail("while waiting for %s: %s", what, problem)
			}
		}
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			l.fail("phase %s: no %s after %v: %s", l.phase, what, timeout, seen)
		}
		time.Sleep(pollPeriod / 2)
	}
}

func anyOf(fs []func(string) bool) func(string) bool {
	if len(fs) == 0 {
		return nil
	}
	return func(s string) bool {
		for _, f := range fs {
			if f(s) {
				return true
			}
		}
		return false
	}
}

// untilQuery waits until the PromQL expression expr returns a result.
func (l *pbxLeg) untilQuery(what string, timeout time.Duration, want []string, expr string, maybe ...func(string) bool) {
	l.t.Helper()
	l.until(what, timeout, want, func() (bool, string) {
		r, err := promQuery(l.promURL, expr)
		if err != nil {
			return false, err.Error()
		}
		return len(r) > 0, "no result for " + expr
	}, maybe...)
}

// untilAM waits until cond holds for Alertmanager's active alerts.
func (l *pbxLeg) untilAM(what string, timeout time.Duration, want []string, cond func([]amAlert) (bool, string)) {
	l.t.Helper()
	l.until(what, timeout, want, func() (bool, string) {
		alerts, err := activeAlerts(l.amURL)
		if err != nil {
			return false, err.Error()
		}
		return cond(alerts)
	})
}

// untilNotified waits until the notification line has arrived in the
// phase.
func (l *pbxLeg) untilNotified(line string, timeout time.Duration, want []string, maybe ...func(string) bool) {
	l.t.Helper()
	l.until("notification "+line, timeout, want, func() (bool, string) {
		lines, _, _ := l.phaseLines(want, anyOf(maybe), false)
		return slices.Contains(lines, line), fmt.Sprintf("%d notification(s) in the phase", len(lines))
	}, maybe...)
}

// watch lets d pass, failing at once when a notification outside want (or
// maybe) arrives.
func (l *pbxLeg) watch(d time.Duration, want []string, maybe ...func(string) bool) {
	l.t.Helper()
	end := time.Now().Add(d)
	l.until(fmt.Sprintf("end of a %v watch", d), d+time.Minute, want, func() (bool, string) {
		return !time.Now().Before(end), ""
	}, maybe...)
}

// watchWhile is watch that also fails at once when the PromQL expression
// expr returns a result.
func (l *pbxLeg) watchWhile(d time.Duration, want []string, what, expr string) {
	l.t.Helper()
	end := time.Now().Add(d)
	l.until(fmt.Sprintf("end of a %v watch", d), d+time.Minute, want, func() (bool, string) {
		if r := l.query(expr); len(r) > 0 {
			l.fail("phase %s: %s: %s", l.phase, what, samplesText(r))
		}
		return !time.Now().Before(end), ""
	})
}

// fail ends the leg with msg and the state of the chain.
func (l *pbxLeg) fail(format string, args ...any) {
	l.t.Helper()
	l.t.Fatalf("%s\n%s", fmt.Sprintf(format, args...), l.state())
}

// state is what the chain shows now: Alertmanager's alerts with their
// inhibition, the phase's notifications, Prometheus' alerts and the PBX's
// and doors' series, Kamailio's contacts.
func (l *pbxLeg) state() string {
	var b strings.Builder
	if l.amURL != "" {
		alerts, err := activeAlerts(l.amURL)
		if err != nil {
			fmt.Fprintf(&b, "Alertmanager: %v\n", err)
		}
		names := map[string]string{}
		for _, a := range alerts {
			names[a.Fingerprint] = alertKey(a.Labels)
		}
		fmt.Fprintf(&b, "Alertmanager holds %d alert(s):\n", len(alerts))
		for _, a := range alerts {
			var by []string
			for _, fp := range a.Status.InhibitedBy {
				by = append(by, cmpOr(names[fp], fp))
			}
			fmt.Fprintf(&b, "  %-10s %s since %s", a.Status.State, alertKey(a.Labels), a.StartsAt.Format("15:04:05.0"))
			if len(by) > 0 {
				fmt.Fprintf(&b, ", inhibited by %s", strings.Join(by, ", "))
			}
			b.WriteString("\n")
		}
	}
	if l.hook != nil {
		ns, at := l.notified()
		fmt.Fprintf(&b, "notifications in phase %s (%d before it):\n", l.phase, l.from)
		for i := l.from; i < len(ns); i++ {
			fmt.Fprintf(&b, "  +%v %s\n", at[i].Sub(l.phaseStart).Round(100*time.Millisecond), noteLine(ns[i]))
		}
	}
	if l.promURL != "" {
		for _, expr := range []string{`ALERTS`, `basip_pbx_sip_up`, `basip_pbx_up`, `count by (state) (basip_pbx_registration == 1)`,
			`basip_pbx_registration{state!="registered"} == 1`, `basip_sip_registered == 0`, `up`} {
			r, err := promQuery(l.promURL, expr)
			if err != nil {
				fmt.Fprintf(&b, "Prometheus %s: %v\n", expr, err)
				continue
			}
			fmt.Fprintf(&b, "Prometheus %s: %s\n", expr, samplesText(r))
		}
	}
	if l.k != nil && l.k.Running() {
		fmt.Fprintf(&b, "Kamailio ul.dump: %s\n", kamailioDump(l.k.RPCURL))
	}
	return b.String()
}

// kamailioDump is the start of Kamailio's answer to ul.dump (its
// contacts), or why there is none.
func kamailioDump(rpcURL string) string {
	resp, err := httpClient.Post(rpcURL, "application/json", strings.NewReader(`{"jsonrpc": "2.0", "method": "ul.dump", "id": 1}`))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err.Error()
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// table is the leg's notifications per phase.
func (l *pbxLeg) table(leg string) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "%s\tphase\tpager firing\tpager resolved\tticket\trepeats\tfirst page\tlast\ttook\n", leg)
	for _, p := range l.phases {
		fmt.Fprintf(w, "\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%v\n", p.name, p.pagerFiring, p.pagerResolved, p.tickets, p.repeats,
			durOrDash(p.firstPageAfter), durOrDash(p.lastNotificationAfter), p.took.Round(100*time.Millisecond))
	}
	w.Flush()
	return b.String()
}

func durOrDash(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return "+" + d.Round(100*time.Millisecond).String()
}

// ---------------------------------------------------------------------------
// Prometheus and Alertmanager

// promSample is an instant vector's element.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// promQuery evaluates expr now.
func promQuery(promURL, expr string) ([]promSample, error) {
	var r struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(promURL+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), &r); err != nil {
		return nil, err
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: result type %q, want vector", expr, r.Data.ResultType)
	}
	return r.Data.Result, nil
}

// query is promQuery failing the test on an error.
func (l *pbxLeg) query(expr string) []promSample {
	l.t.Helper()
	r, err := promQuery(l.promURL, expr)
	if err != nil {
		l.t.Fatalf("phase %s: %v", l.phase, err)
	}
	return r
}

// samplesText is samples as name{labels} value, sorted.
func samplesText(r []promSample) string {
	if len(r) == 0 {
		return "(none)"
	}
	var out []string
	for _, s := range r {
		m := maps.Clone(s.Metric)
		name := m["__name__"]
		delete(m, "__name__")
		if name == "ALERTS" {
			name = "ALERTS:" + m["alertname"] + "/" + m["alertstate"]
			delete(m, "alertname")
			delete(m, "alertstate")
		}
		delete(m, "job")
		delete(m, "instance")
		m["alertname"] = name
		out = append(out, fmt.Sprintf("%s %v", alertKey(m), s.Value[1]))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// activeAlerts are Alertmanager's alerts that have not ended, sorted by
// key.
func activeAlerts(amURL string) ([]amAlert, error) {
	var alerts []amAlert
	if err := getJSON(amURL+"/api/v2/alerts", &alerts); err != nil {
		return nil, err
	}
	now := time.Now()
	var out []amAlert
	for _, a := range alerts {
		if a.EndsAt.IsZero() || a.EndsAt.After(now) {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return alertKey(out[i].Labels) < alertKey(out[j].Labels) })
	return out, nil
}
