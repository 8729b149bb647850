//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// timeScale shrinks the shipped Alertmanager timers (group_wait,
// group_interval, repeat_interval) for the routing test: 1 minute of the
// shipped configuration is 0.5 s here, and the incidents below post their
// alerts on the same scale, so every relation between the timers and the
// `for:` of the rules is kept.
const timeScale = 120

// scaled is d of the shipped configuration on the test's clock.
func scaled(d time.Duration) time.Duration { return d / timeScale }

// notification is one webhook delivery as Alertmanager sends it.
type notification struct {
	Receiver    string            `json:"receiver"`
	Status      string            `json:"status"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Status   string            `json:"status"`
		Labels   map[string]string `json:"labels"`
		StartsAt time.Time         `json:"startsAt"`
	} `json:"alerts"`
}

// webhook records the notifications Alertmanager delivers to it.
type webhook struct {
	mu   sync.Mutex
	got  []notification
	at   []time.Time // when each of got arrived
	srv  *httptest.Server
	errs []string
}

func startWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var n notification
		err := json.NewDecoder(r.Body).Decode(&n)
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			w.errs = append(w.errs, err.Error())
		}
		if want := "/" + n.Receiver; r.URL.Path != want {
			w.errs = append(w.errs, fmt.Sprintf("receiver %s posted to %s", n.Receiver, r.URL.Path))
		}
		w.got = append(w.got, n)
		w.at = append(w.at, time.Now())
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) notifications() []notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]notification(nil), w.got...)
}

// summary is one line per notification: receiver, group, and how many
// alerts firing and resolved it lists.
func summary(ns []notification) []string {
	var out []string
	for _, n := range ns {
		firing, resolved := 0, 0
		for _, a := range n.Alerts {
			if a.Status == "resolved" {
				resolved++
			} else {
				firing++
			}
		}
		out = append(out, fmt.Sprintf("%s %v: %d firing, %d resolved", n.Receiver, n.GroupLabels, firing, resolved))
	}
	return out
}

var amDuration = regexp.MustCompile(`(?m)^(\s*(?:group_wait|group_interval|repeat_interval):\s*)(\S+)`)

// scaledAMConfig is the shipped Alertmanager configuration with its timers
// divided by scale and its example receivers' webhook pointed at hook.
func scaledAMConfig(t *testing.T, root, dir, hook string, scale time.Duration) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "deploy", "alertmanager", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	y := strings.ReplaceAll(string(b), "http://127.0.0.1:5001", hook)
	if y == string(b) {
		t.Fatal("alertmanager.yml: no example receiver at http://127.0.0.1:5001 to point at the test's webhook")
	}
	n := 0
	y = amDuration.ReplaceAllStringFunc(y, func(m string) string {
		parts := amDuration.FindStringSubmatch(m)
		d, err := time.ParseDuration(parts[2])
		if err != nil {
			t.Fatalf("alertmanager.yml: %s: %v", m, err)
		}
		n++
		return fmt.Sprintf("%s%dms", parts[1], (d / scale).Milliseconds())
	})
	if n == 0 {
		t.Fatal("alertmanager.yml: no timers found to scale")
	}
	return writeFile(t, filepath.Join(dir, "alertmanager.yml"), y)
}

// incident is alerts posted to Alertmanager as Prometheus would send them
// during one incident: each fires at its time (the `for:` of its rule after
// the cause, in minutes of the shipped scale) and resolves at its end.
type incident struct {
	name   string
	alerts []postedAlert
	// want is the notifications, as summary lines, in any order.
	want []string
	// firstWithin, when set, is how soon after the start (on the shipped
	// scale) the first notification must arrive.
	firstWithin time.Duration
}

type postedAlert struct {
	labels     map[string]string
	at, endsAt time.Duration // on the shipped scale; endsAt 0: firing throughout
}

// TestAlertmanagerRouting runs incidents of a fleet through the real
// Alertmanager with the shipped configuration (timers scaled down, one
// Alertmanager per incident) and counts the notifications its receivers
// get: a firmware push over 500 devices at 30 sites is one ticket; SIP
// switched off on one monitor is one ticket, without the change and
// non-compliance alerts that follow from it and without a resolved message;
// a PBX shared by 20 sites is one page and its 60 devices' alerts are held
// back; a site whose network fails is one page. Each waits past the group
// interval, so that a second notification would be seen.
func TestAlertmanagerRouting(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	amBin := lookBinary(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	root := moduleRoot(t)
	dev := func(alertname, severity string, extra ...string) map[string]string {
		// Device alerts name the job, not the exporter process.
		l := map[string]string{"alertname": alertname, "severity": severity, "job": "basip"}
		for i := 0; i+1 < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return l
	}
	var push, pbx []postedAlert
	for i := range 500 {
		// The push reaches the devices over 5 minutes; each change alert
		// fires at once and resolves 15 minutes later.
		at := time.Duration(i) * 5 * time.Minute / 500
		push = append(push, postedAlert{
			labels: dev("BasipSIPSettingsChanged", "info", "device", fmt.Sprintf("d-%03d", i), "site", fmt.Sprintf("site-%02d", i%30)),
			at:     at, endsAt: at + 15*time.Minute,
		})
	}
	// The proxy alert fires 3 minutes into the outage, the devices' alerts
	// (for: 5m) 2 minutes later: panels critical, monitors warning.
	pbx = append(pbx, postedAlert{labels: map[string]string{"alertname": "BasipSIPProxyOutage", "severity": "critical", "job": "basip", "proxy": "sip:shared"}})
	for s := range 20 {
		for d, sev := range []string{"critical", "warning", "warning"} {
			pbx = append(pbx, postedAlert{
				labels: dev("BasipSIPNotRegistered", sev, "device", fmt.Sprintf("s%02d-%d", s, d), "site", fmt.Sprintf("s%02d", s), "proxy", "sip:shared"),
				at:     2 * time.Minute,
			})
		}
	}
	monitor := []string{"device", "flat-7", "site", "tower"}
	incidents := []incident{
		{
			name:   "firmware push over 500 devices",
			alerts: push,
			want:   []string{"ticket map[alertname:BasipSIPSettingsChanged]: 500 firing, 0 resolved"},
		},
		{
			name: "SIP switched off on one monitor",
			alerts: []postedAlert{
				{labels: dev("BasipSIPSettingsChanged", "info", monitor...), endsAt: 15 * time.Minute},
				{labels: dev("BasipSIPDisabled", "warning", monitor...), at: 5 * time.Minute},
				{labels: dev("BasipSIPSettingsNonCompliant", "warning", monitor...), at: 10 * time.Minute},
			},
			want: []string{"ticket map[alertname:BasipSIPDisabled]: 1 firing, 0 resolved"},
		},
		{
			name:   "a PBX behind 20 sites",
			alerts: pbx,
			want:   []string{"pager map[alertname:BasipSIPProxyOutage proxy:sip:shared]: 1 firing, 0 resolved"},
		},
		{
			name: "the network of a site",
			alerts: []postedAlert{
				{labels: map[string]string{"alertname": "BasipSiteDevicesDown", "severity": "critical", "job": "basip", "site": "hq"}},
				{labels: dev("BasipDeviceDown", "critical", "device", "door-1", "site", "hq"), at: 2 * time.Minute},
				{labels: dev("BasipDeviceDown", "critical", "device", "door-2", "site", "hq"), at: 2 * time.Minute},
				{labels: dev("BasipDeviceDown", "warning", "device", "flat-1", "site", "hq"), at: 2 * time.Minute},
			},
			want: []string{"pager map[alertname:BasipSiteDevicesDown site:hq]: 1 firing, 0 resolved"},
		},
	}
	for _, inc := range incidents {
		t.Run(inc.name, func(t *testing.T) {
			t.Parallel()
			runIncident(t, amBin, root, inc)
		})
	}
}

// runIncident posts inc's alerts to a fresh Alertmanager on the scaled
// clock, waits past the ticket route's group interval (1h) and compares
// the notifications with inc.want.
func runIncident(t *testing.T, amBin, root string, inc incident) {
	tmp := t.TempDir()
	hook := startWebhook(t)
	amAddr := freeAddrs(t, 1)[0]
	am := startProcess(t, "alertmanager", amBin,
		"--config.file="+scaledAMConfig(t, root, tmp, hook.srv.URL, timeScale),
		"--storage.path="+filepath.Join(tmp, "data"),
		"--web.listen-address="+amAddr,
		"--cluster.listen-address=",
	)
	am.waitReady(t, "http://"+amAddr+"/-/ready")
	amURL := "http://" + amAddr

	start := time.Now()
	type event struct {
		at     time.Duration
		labels map[string]string
		endsAt time.Time
	}
	var events []event
	last := time.Duration(0)
	for _, a := range inc.alerts {
		ends := start.Add(time.Hour)
		if a.endsAt > 0 {
			ends = start.Add(scaled(a.endsAt))
		}
		events = append(events, event{scaled(a.at), a.labels, ends})
		last = max(last, scaled(a.at), scaled(a.endsAt))
	}
	// Post in time order, each batch when its time has come.
	for len(events) > 0 {
		now := time.Since(start)
		var due []map[string]any
		rest := events[:0]
		for _, e := range events {
			if e.at <= now {
				due = append(due, map[string]any{"labels": e.labels, "startsAt": start.Add(e.at).Format(time.RFC3339Nano), "endsAt": e.endsAt.Format(time.RFC3339Nano)})
			} else {
				rest = append(rest, e)
			}
		}
		events = rest
		if len(due) > 0 {
			postAlerts(t, amURL, due)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Past the last alert's end, the ticket route's group interval and a
	// margin: a second notification of any group would have been sent.
	wait := last + scaled(time.Hour) + 2*time.Second
	time.Sleep(time.Until(start.Add(wait)))

	got := summary(hook.notifications())
	t.Logf("%s: %d alerts, the last ending %v in, %d notification(s): %v", inc.name, len(inc.alerts), last, len(got), got)
	if inc.firstWithin > 0 {
		hook.mu.Lock()
		if len(hook.at) == 0 || hook.at[0].Sub(start) > scaled(inc.firstWithin) {
			t.Errorf("no notification within %v (shipped scale) of the start: %v", inc.firstWithin, hook.at)
		}
		hook.mu.Unlock()
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(inc.want))) {
		t.Errorf("notifications\n got: %q\nwant: %q", got, inc.want)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	for _, e := range hook.errs {
		t.Error(e)
	}
}

// postAlerts sends alerts to Alertmanager's API in one request.
func postAlerts(t *testing.T, amURL string, alerts []map[string]any) {
	t.Helper()
	body, err := json.Marshal(alerts)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Post(amURL+"/api/v2/alerts", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts: %s", resp.Status)
	}
}
