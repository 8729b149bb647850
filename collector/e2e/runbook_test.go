//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// runbookBase is where every alert's runbook_url points, followed by the
// alert's name in lower case: the anchor of its section in deploy/README.md.
const runbookBase = "https://github.com/basip/basip_exporter/blob/main/deploy/README.md#"

// TestEveryAlertHasARunbookSection checks that every alert in
// deploy/prometheus/alerts.yml has a summary, a description and a
// runbook_url whose anchor is a "### AlertName" section of deploy/README.md,
// and a row in that file's alert table; and that no section is left over
// from an alert that is gone.
func TestEveryAlertHasARunbookSection(t *testing.T) {
	root := moduleRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "deploy", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^### (Basip\w+)$`).FindAllStringSubmatch(string(readme), -1) {
		sections[m[1]] = true
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s", r.Alert, a)
				}
			}
			if got, want := r.Annotations["runbook_url"], runbookBase+strings.ToLower(r.Alert); got != want {
				t.Errorf("%s: runbook_url %q, want %q", r.Alert, got, want)
			}
			if !sections[r.Alert] {
				t.Errorf("%s: deploy/README.md has no section \"### %s\"", r.Alert, r.Alert)
			}
			if !strings.Contains(string(readme), "[`"+r.Alert+"`](#"+strings.ToLower(r.Alert)+")") {
				t.Errorf("%s: not in the alert table of deploy/README.md", r.Alert)
			}
			delete(sections, r.Alert)
		}
	}
	for s := range sections {
		t.Errorf("deploy/README.md has a runbook section for %s, which alerts.yml does not define", s)
	}
	if n == 0 {
		t.Fatal("no alerts found in alerts.yml")
	}
}
