//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// scrapeJob is how a job scrapes the exporter.
type scrapeJob struct{ path, interval, timeout string }

// shippedJobs are the job names the alert rules select, with the one path,
// interval and timeout every example uses.
var shippedJobs = map[string]scrapeJob{
	"basip":          {"/metrics", "60s", "30s"},
	"basip_probe":    {"/probe", "60s", "15s"},
	"basip_exporter": {"/metrics/exporter", "60s", "10s"},
}

// TestOneSetOfJobsAndIntervals: every Prometheus configuration under
// deploy/ and in the README, and every prometheus-operator monitor, scrapes
// the exporter under one of shippedJobs with its path, interval and
// timeout; every Prometheus configuration evaluates rules every 30s and
// sends them to an Alertmanager.
func TestOneSetOfJobsAndIntervals(t *testing.T) {
	root := repoRoot(t)
	docs := readDeploy(t, root)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(readme, -1) {
		for _, v := range yamlDocs(t, "README.md", m[1]) {
			docs = append(docs, deployDoc{where: fmt.Sprintf("README.md, YAML block %d", i+1), v: v})
		}
	}
	seen := map[string]int{}
	check := func(where, job string, got scrapeJob) {
		t.Helper()
		want, ok := shippedJobs[job]
		if !ok {
			t.Errorf("%s: job %q scrapes the exporter; the rules know %v", where, job, shippedJobs)
			return
		}
		if got != want {
			t.Errorf("%s: job %s scrapes %+v, want %+v", where, job, got, want)
		}
		seen[job]++
	}
	orElse := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	for _, d := range docs {
		if scs := list(d.v, "scrape_configs"); scs != nil {
			interval := orElse(str(d.v, "global", "scrape_interval"), "1m")
			jobs := 0
			for _, sc := range scs {
				job := str(sc, "job_name")
				if _, ok := shippedJobs[job]; !ok && !regexp.MustCompile(`basip`).MatchString(job) {
					continue // Prometheus, Alertmanager
				}
				jobs++
				check(d.where, job, scrapeJob{
					orElse(str(sc, "metrics_path"), "/metrics"),
					orElse(str(sc, "scrape_interval"), interval),
					orElse(str(sc, "scrape_timeout"), orElse(str(d.v, "global", "scrape_timeout"), "10s")),
				})
			}
			if jobs == 0 {
				continue
			}
			if list(d.v, "alerting", "alertmanagers") == nil {
				t.Errorf("%s: a Prometheus configuration without an alerting: block", d.where)
			}
			if e := str(d.v, "global", "evaluation_interval"); e != "" && e != "30s" {
				t.Errorf("%s: evaluation_interval %s, want 30s", d.where, e)
			}
		}
		switch d.kind() {
		case "ServiceMonitor", "PodMonitor":
			for _, ep := range append(list(d.v, "spec", "endpoints"), list(d.v, "spec", "podMetricsEndpoints")...) {
				job := ""
				for _, r := range list(ep, "relabelings") {
					if str(r, "targetLabel") == "job" {
						job = str(r, "replacement")
					}
				}
				check(d.where, job, scrapeJob{orElse(str(ep, "path"), "/metrics"), str(ep, "interval"), str(ep, "scrapeTimeout")})
			}
		case "ScrapeConfig":
			check(d.where, str(d.v, "spec", "jobName"), scrapeJob{orElse(str(d.v, "spec", "metricsPath"), "/metrics"), str(d.v, "spec", "scrapeInterval"), str(d.v, "spec", "scrapeTimeout")})
		}
	}
	for job := range shippedJobs {
		if seen[job] == 0 {
			t.Errorf("no example scrapes job %s", job)
		}
	}
	t.Logf("jobs in the examples: %v", seen)
}
