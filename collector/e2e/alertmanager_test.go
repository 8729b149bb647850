//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Alertmanager

// amAlert is an alert as Alertmanager's API v2 shows it.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Fingerprint string            `json:"fingerprint"`
	Status      struct {
		State       string   `json:"state"`
		InhibitedBy []string `json:"inhibitedBy"`
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
// not for the exporter's job, and device alerts that name the exporter
// process (instance, pod), are reported as problems: a restarted exporter
// or a recreated pod must continue the same alerts.
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
		if a.Labels["job"] != "basip" {
			problems = append(problems, fmt.Sprintf("%s: job=%q, want basip", key, a.Labels["job"]))
		}
		if _, ok := a.Labels["pod"]; ok || a.Labels["instance"] != "" && (a.Labels["instance"] != exporterAddr || a.Labels["device"] != "") {
			problems = append(problems, fmt.Sprintf("%s: instance=%q pod=%q: a device alert names the exporter process", key, a.Labels["instance"], a.Labels["pod"]))
		}
		for _, ann := range []string{"summary", "description", "runbook_url"} {
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

// checkGroups checks Alertmanager's notification groups under the shipped
// route against expectedGroups: critical alerts to the pager grouped by
// alert name and site, proxy or credentials set, the rest to the ticket queue grouped by alert name.
func checkGroups(t *testing.T, amURL string) {
	t.Helper()
	var groups []struct {
		Labels   map[string]string `json:"labels"`
		Receiver struct {
			Name string `json:"name"`
		} `json:"receiver"`
		Alerts []amAlert `json:"alerts"`
	}
	if err := getJSON(amURL+"/api/v2/alerts/groups", &groups); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, g := range groups {
		want, by := "ticket", []string{"alertname"}
		if len(g.Alerts) > 0 && g.Alerts[0].Labels["severity"] == "critical" {
			want, by = "pager", []string{"alertname", "site", "proxy", "credentials", "pbx"}
		}
		for _, a := range g.Alerts {
			if (a.Labels["severity"] == "critical") != (want == "pager") {
				t.Errorf("group %v mixes critical and other alerts", g.Labels)
			}
		}
		for k := range g.Labels {
			if !slices.Contains(by, k) {
				t.Errorf("group %v (receiver %s) is grouped by %s, not only by %v", g.Labels, want, k, by)
			}
		}
		if g.Receiver.Name != want {
			t.Errorf("group %v goes to receiver %q, want %s", g.Labels, g.Receiver.Name, want)
		}
		key := fmt.Sprintf("{alertname=%q", g.Labels["alertname"])
		if site, ok := g.Labels["site"]; ok {
			key += fmt.Sprintf(",site=%q", site)
		}
		got[key+"}"] += len(g.Alerts)
	}
	if !maps.Equal(got, expectedGroups) {
		t.Errorf("notification groups (alerts per group):\n got  %v\n want %v", got, expectedGroups)
	}
	t.Logf("%d alerts in %d notification groups", len(expectedAlerts), len(groups))
}

// inhibitionCase is an alert posted to Alertmanager as if Prometheus had
// sent it, and the demo alerts it must hold back under the shipped inhibit
// rules.
type inhibitionCase struct {
	name   string
	source map[string]string
	// targets are posted first, as Prometheus would send them for devices
	// the demo fleet does not have (at a site).
	targets   []map[string]string
	inhibited []string // keys of expectedAlerts and targets; nil: none
}

// suppressedByDemo are the demo's alerts that the shipped inhibit rules
// hold back without any alert posted by the test: monitor-103-sip-off's
// non-compliance (policy rule "enabled") is BasipSIPDisabled's cause.
var suppressedByDemo = []string{
	`BasipSIPSettingsNonCompliant{device="monitor-103-sip-off",severity="warning",site="tower"}`,
}

// checkInhibition posts each case's source alert and waits until exactly
// its targets show as suppressed, inhibited by it, in /api/v2/alerts (next
// to suppressedByDemo); then resolves it and waits until only
// suppressedByDemo is.
func checkInhibition(t *testing.T, amURL, exporterAddr string) {
	waitSuppressed(t, amURL, nil, "", "the demo's own inhibitions")
	cases := []inhibitionCase{
		{
			name:      "proxy outage holds back the registration alert of a device on that proxy",
			source:    map[string]string{"alertname": "BasipSIPProxyOutage", "job": "basip", "proxy": "sip:old-pbx.example.com", "severity": "critical"},
			inhibited: []string{`BasipSIPNotRegistered{device="monitor-102",proxy="sip:old-pbx.example.com",severity="warning",site="tower"}`},
		},
		{
			// A PBX outage at site hq: its devices' registration alerts
			// stay quiet, monitor-102 (site tower) and a device of another
			// site do not.
			name:   "site outage holds back the registration alerts of its site only",
			source: map[string]string{"alertname": "BasipSiteSIPOutage", "job": "basip", "site": "hq", "severity": "critical"},
			targets: []map[string]string{
				{"alertname": "BasipSIPNotRegistered", "job": "basip", "site": "hq", "device": "hq-door", "proxy": "sip:pbx-hq", "severity": "critical"},
				{"alertname": "BasipSIPNotRegistered", "job": "basip", "site": "hq", "device": "hq-flat", "proxy": "sip:pbx-hq", "severity": "warning"},
				{"alertname": "BasipSIPNotRegistered", "job": "basip", "site": "annex", "device": "annex-door", "proxy": "sip:pbx-annex", "severity": "critical"},
			},
			inhibited: []string{
				`BasipSIPNotRegistered{device="hq-door",proxy="sip:pbx-hq",severity="critical",site="hq"}`,
				`BasipSIPNotRegistered{device="hq-flat",proxy="sip:pbx-hq",severity="warning",site="hq"}`,
			},
		},
		{
			name:   "devices down at a site holds back their down alerts",
			source: map[string]string{"alertname": "BasipSiteDevicesDown", "job": "basip", "site": "hq", "severity": "critical"},
			targets: []map[string]string{
				{"alertname": "BasipDeviceDown", "job": "basip", "site": "hq", "device": "hq-door", "severity": "critical"},
			},
			inhibited: []string{`BasipDeviceDown{device="hq-door",severity="critical",site="hq"}`},
		},
		{
			name:   "device down holds back the device's other alerts",
			source: map[string]string{"alertname": "BasipDeviceDown", "job": "basip", "device": "monitor-102", "severity": "warning"},
			inhibited: []string{
				`BasipSIPNotRegistered{device="monitor-102",proxy="sip:old-pbx.example.com",severity="warning",site="tower"}`,
				`BasipSIPProxyUnknown{device="monitor-102",severity="warning",site="tower"}`,
				`BasipSIPSettingsNonCompliant{device="monitor-102",severity="warning",site="tower"}`,
			},
		},
		{
			name:      "a credentials set rejected by several devices holds back their authentication alerts",
			source:    map[string]string{"alertname": "BasipCredentialsRejected", "job": "basip", "credentials": "stale", "severity": "critical"},
			inhibited: []string{`BasipAuthenticationFailing{credentials="stale",device="panel-wrong-password",severity="critical"}`},
		},
		{
			name:      "exporter down holds back everything of its job",
			source:    map[string]string{"alertname": "BasipExporterDown", "job": "basip", "instance": exporterAddr, "severity": "critical"},
			inhibited: expectedAlerts,
		},
	}
	for _, c := range cases {
		t.Run(c.source["alertname"], func(t *testing.T) {
			for _, target := range c.targets {
				postAlert(t, amURL, target, time.Now().Add(10*time.Minute))
				waitFingerprint(t, amURL, target)
			}
			postAlert(t, amURL, c.source, time.Now().Add(10*time.Minute))
			defer func() {
				for _, target := range c.targets {
					postAlert(t, amURL, target, time.Now().Add(-time.Second))
				}
				postAlert(t, amURL, c.source, time.Now().Add(-time.Second))
				waitSuppressed(t, amURL, nil, "", "after resolving "+c.source["alertname"])
			}()
			fp := waitFingerprint(t, amURL, c.source)
			waitSuppressed(t, amURL, c.inhibited, fp, c.name)
		})
	}
}

// postAlert sends one alert to Alertmanager, firing until endsAt (resolved
// when endsAt is past).
func postAlert(t *testing.T, amURL string, labels map[string]string, endsAt time.Time) {
	t.Helper()
	body, err := json.Marshal([]map[string]any{{
		"labels":      labels,
		"annotations": map[string]string{"summary": "posted by the end-to-end test"},
		"startsAt":    time.Now().Add(-time.Minute).Format(time.RFC3339Nano),
		"endsAt":      endsAt.Format(time.RFC3339Nano),
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Post(amURL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts: %s", resp.Status)
	}
}

// waitFingerprint returns the fingerprint of the active alert with exactly
// these labels.
func waitFingerprint(t *testing.T, amURL string, labels map[string]string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var alerts []amAlert
		if err := getJSON(amURL+"/api/v2/alerts", &alerts); err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if maps.Equal(a.Labels, labels) {
				return a.Fingerprint
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the posted alert %v does not show in Alertmanager", labels)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitSuppressed waits until exactly the alerts with keys want and
// suppressedByDemo are suppressed, each of want inhibited by the alert with
// fingerprint by.
func waitSuppressed(t *testing.T, amURL string, want []string, by, what string) {
	t.Helper()
	own := want
	want = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(want), suppressedByDemo...))))
	deadline := time.Now().Add(15 * time.Second)
	for {
		var alerts []amAlert
		if err := getJSON(amURL+"/api/v2/alerts?inhibited=true", &alerts); err != nil {
			t.Fatal(err)
		}
		var got, wrong []string
		for _, a := range alerts {
			if a.Status.State != "suppressed" {
				continue
			}
			key := alertKey(a.Labels)
			got = append(got, key)
			if by != "" && slices.Contains(own, key) && !slices.Contains(suppressedByDemo, key) && !slices.Contains(a.Status.InhibitedBy, by) {
				wrong = append(wrong, fmt.Sprintf("%s inhibited by %v, not %s", key, a.Status.InhibitedBy, by))
			}
		}
		sort.Strings(got)
		if slices.Equal(got, want) && len(wrong) == 0 {
			if len(own) > 0 {
				t.Logf("%s: %d alert(s) suppressed, inhibited by %s", what, len(own), by)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s:\nsuppressed:\n  %s\nwant:\n  %s\n%s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "), strings.Join(wrong, "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}
}
