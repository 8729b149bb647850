//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDashboardVendorFromConfiguration evaluates the dashboard's totals
// with the vendor filter set to akuvox, with promtool, over a fleet where
// a BAS-IP site is dark (its two devices never answered, so they have no
// basip_device_info) and one of two Akuvox devices is down: the vendor
// comes from basip_device_config_info, so the totals count the Akuvox
// devices only (1 down, 1 up, 2 in all), not the dark BAS-IP ones. From
// 20m the exporter is down (its series stale): the totals show no data,
// not 0.
func TestDashboardVendorFromConfiguration(t *testing.T) {
	promtool := lookBinary(t, "prometheus", "promtool")
	root := moduleRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "dashboards", "basip.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	chosen := strings.NewReplacer("${vendor}", "akuvox", "$vendor", "akuvox").Replace(string(b))
	d := loadDashboard(t, writeFile(t, filepath.Join(dir, "basip.json"), chosen))
	expr := func(panel string) string {
		for _, q := range d.queries {
			if q.panel == panel && q.refID == "A" {
				return q.expr
			}
		}
		t.Fatalf("no panel %q with a query A", panel)
		return ""
	}

	var y strings.Builder
	y.WriteString("tests:\n  - interval: 1m\n    input_series:\n")
	series := func(metric, labels, values string) {
		fmt.Fprintf(&y, "      - series: '%s{job=\"basip\",instance=\"ex:9875\",%s}'\n        values: '%s'\n", metric, labels, values)
	}
	for _, dev := range []struct{ name, site, vendor, up string }{
		{"dark-1", "dark", "basip", "0x19 stale"},
		{"dark-2", "dark", "basip", "0x19 stale"},
		{"akuvox-down", "annex", "akuvox", "0x19 stale"},
		{"akuvox-up", "annex", "akuvox", "1x19 stale"},
	} {
		l := fmt.Sprintf(`device="%s",site="%s"`, dev.name, dev.site)
		series("basip_up", l, dev.up)
		series("basip_device_config_info", l+fmt.Sprintf(`,vendor="%s",credentials="default"`, dev.vendor), "1x19 stale")
		if dev.up[0] == '1' {
			series("basip_device_info", l+fmt.Sprintf(`,vendor="%s",type="panel",model="",firmware="",api_version="",serial="",name=""`, dev.vendor), "1x19 stale")
		}
	}
	y.WriteString("    promql_expr_test:\n")
	for _, c := range []struct {
		panel string
		want  string // the value at 10m; none from 21m
	}{
		{"Devices down", "1"},
		{"Devices up", "1"},
		{"Devices total", "2"},
	} {
		e := strings.ReplaceAll(expr(c.panel), "'", "''")
		fmt.Fprintf(&y, "      - expr: '%s'\n        eval_time: 10m\n        exp_samples:\n          - labels: '{}'\n            value: %s\n", e, c.want)
		fmt.Fprintf(&y, "      - expr: '%s'\n        eval_time: 21m\n        exp_samples: []\n", e)
	}
	file := writeFile(t, filepath.Join(dir, "dashboard_test.yml"), y.String())
	out, err := exec.Command(promtool, "test", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s\n%s", err, out, y.String())
	}
}
