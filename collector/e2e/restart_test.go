//go:build linux

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// checkRestart restarts the exporter while its alerts fire and then
// reloads its configuration: Prometheus records the failed scrape (the
// device series go stale), the new process is scraped, and throughout
// Alertmanager holds exactly the alerts it held before, each with the
// start it had; no notification sent meanwhile lists a resolved alert or an
// alert that started anew. The new process is started under parent, so that
// it outlives this subtest.
func checkRestart(t, parent *testing.T, s stack, old *process, args []string, hook *webhook, amURL, promURL, exporterAddr string) {
	before, problems, err := fetchAlerts(amURL, exporterAddr)
	if err != nil || len(problems) > 0 {
		t.Fatalf("alerts before the restart: %v %v", err, problems)
	}
	sent := len(hook.notifications())

	old.stop(t)
	waitQuery(t, promURL, `up{job="basip"} == 0`, "a failed scrape of the stopped exporter")
	restarted := time.Now()
	exporter := startProcess(parent, "exporter", s.exporterBin, args...)
	// Ready once Prometheus has scraped the new process.
	exporter.waitReady(t, "http://"+exporterAddr+"/-/ready")
	t.Logf("exporter restarted and scraped again after %v", time.Since(restarted).Round(100*time.Millisecond))
	code, body := post(t, "http://"+exporterAddr+"/-/reload")
	if code != http.StatusOK {
		t.Fatalf("POST /-/reload: %d %s", code, body)
	}
	waitQuery(t, promURL, `up{job="basip"} == 1 and on () changes(process_start_time_seconds{job="basip"}[1m]) > 0`, "a successful scrape of the new exporter")

	// Watch for longer than the restart took and several scrapes and rule
	// evaluations: a resolved alert would leave Alertmanager's active set,
	// one fired again would start anew.
	watchUntil := time.Now().Add(4 * scrapeInterval)
	for polls := 0; time.Now().Before(watchUntil); polls++ {
		now, problems, err := fetchAlerts(amURL, exporterAddr)
		if err != nil {
			t.Fatal(err)
		}
		if len(problems) > 0 {
			t.Fatalf("after the restart: %v", problems)
		}
		if diff := compareStarts(before, now); diff != "" {
			t.Fatalf("%v after the restart (poll %d): %s", time.Since(restarted).Round(100*time.Millisecond), polls, diff)
		}
		time.Sleep(pollPeriod / 2)
	}
	for _, n := range hook.notifications()[sent:] {
		for _, a := range n.Alerts {
			key := alertKey(a.Labels)
			if a.Status == "resolved" {
				t.Errorf("notification to %s during the restart resolves %s", n.Receiver, key)
			} else if b, ok := before[key]; !ok || !b.StartsAt.Equal(a.StartsAt) {
				t.Errorf("notification to %s during the restart lists %s starting %v", n.Receiver, key, a.StartsAt)
			}
		}
	}
	t.Logf("%d alerts kept firing with their start through the restart and the reload; %d notification(s) meanwhile, none new",
		len(before), len(hook.notifications())-sent)
}

// compareStarts names what differs between two sets of active alerts:
// alerts missing or added, or started at another time.
func compareStarts(before, now map[string]amAlert) string {
	var diff []string
	for k, b := range before {
		n, ok := now[k]
		switch {
		case !ok:
			diff = append(diff, "resolved: "+k)
		case !n.StartsAt.Equal(b.StartsAt):
			diff = append(diff, fmt.Sprintf("started again: %s (%v, was %v)", k, n.StartsAt, b.StartsAt))
		}
	}
	for k := range now {
		if _, ok := before[k]; !ok {
			diff = append(diff, "new: "+k)
		}
	}
	slices.Sort(diff)
	return strings.Join(diff, "; ")
}

// waitQuery waits until the PromQL expr returns a result in Prometheus.
func waitQuery(t *testing.T, promURL, expr, what string) {
	t.Helper()
	deadline := time.Now().Add(queryWait)
	for {
		var r struct {
			Data struct {
				Result []any `json:"result"`
			} `json:"data"`
		}
		err := getJSON(promURL+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), &r)
		if err == nil && len(r.Data.Result) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v (%s: %v)", what, queryWait, expr, err)
		}
		time.Sleep(pollPeriod / 2)
	}
}

// post sends an empty POST to u.
func post(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := httpClient.Post(u, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
