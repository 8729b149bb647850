//go:build linux

package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestAlertmanagerIncidents runs the incidents of a trial on a fleet
// through the real Alertmanager with the shipped configuration, the way
// TestAlertmanagerRouting does, each alert with the labels the rules of
// alerts.yml give it (alerts_test.yml pins those), and counts the
// notifications:
//
//   - the exporter killed for good during a site outage and a SIP proxy
//     outage: their alerts run out of data and resolve in Prometheus 10
//     minutes later, while BasipExporterDown fires; no resolved message
//     is sent (three pages, none resolved);
//   - a reload that dropped devices: one ticket, within a minute, and not
//     a second one for the drop of configured devices;
//   - a password rotated on the 50 Akuvox devices of 5 sites: one page for
//     the credentials set, none per site;
//   - two independent PBX outages: two pages, one per proxy.
func TestAlertmanagerIncidents(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	amBin := lookBinary(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	root := moduleRoot(t)
	labels := func(kv ...string) map[string]string {
		l := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		return l
	}

	// The exporter is killed at 10m. Its scrape fails from 11m,
	// BasipExporterDown fires at 16m (for: 5m); the site, proxy and device
	// alerts keep firing without data until 21m (keep_firing_for: 10m) and
	// then resolve.
	killed := []postedAlert{
		{labels: labels("alertname", "BasipSiteDevicesDown", "severity", "critical", "job", "basip", "site", "hq"), endsAt: 21 * time.Minute},
		{labels: labels("alertname", "BasipSIPProxyOutage", "severity", "critical", "job", "basip", "proxy", "sip:pbx-branch"), endsAt: 21 * time.Minute},
		{labels: labels("alertname", "BasipExporterDown", "severity", "critical", "job", "basip", "instance", "ex:9875"), at: 16 * time.Minute},
	}
	for i := range 3 {
		killed = append(killed, postedAlert{
			labels: labels("alertname", "BasipDeviceDown", "severity", "critical", "job", "basip", "site", "hq", "device", fmt.Sprintf("door-%d", i)),
			at:     2 * time.Minute, endsAt: 21 * time.Minute,
		})
	}

	// The password of the set "akuvox" rotated on its 50 devices at 5
	// sites: the credentials alert at 3 minutes, the devices' at 5.
	rotation := []postedAlert{{labels: labels("alertname", "BasipCredentialsRejected", "severity", "critical", "job", "basip", "credentials", "akuvox")}}
	for i := range 50 {
		rotation = append(rotation, postedAlert{
			labels: labels("alertname", "BasipAuthenticationFailing", "severity", "critical", "job", "basip", "credentials", "akuvox",
				"site", fmt.Sprintf("site-%d", i%5), "device", fmt.Sprintf("akuvox-%02d", i)),
			at: 2 * time.Minute,
		})
	}

	incidents := []incident{
		{
			name:   "the exporter down for good during a site and a proxy outage",
			alerts: killed,
			want: []string{
				"pager map[alertname:BasipSiteDevicesDown site:hq]: 1 firing, 0 resolved",
				"pager map[alertname:BasipSIPProxyOutage proxy:sip:pbx-branch]: 1 firing, 0 resolved",
				"pager map[alertname:BasipExporterDown]: 1 firing, 0 resolved",
			},
		},
		{
			name: "a reload that dropped 500 of 3,000 devices",
			alerts: []postedAlert{
				{labels: labels("alertname", "BasipExporterConfigReloadDroppedDevices", "severity", "warning", "job", "basip", "instance", "ex:9875")},
				{labels: labels("alertname", "BasipDevicesDropped", "severity", "warning", "job", "basip", "instance", "ex:9875")},
			},
			want:        []string{"ticket map[alertname:BasipExporterConfigReloadDroppedDevices]: 1 firing, 0 resolved"},
			firstWithin: time.Minute,
		},
		{
			name:   "a password rotated on 50 devices at 5 sites",
			alerts: rotation,
			want:   []string{"pager map[alertname:BasipCredentialsRejected credentials:akuvox]: 1 firing, 0 resolved"},
		},
		{
			name: "two independent PBX outages",
			alerts: []postedAlert{
				{labels: labels("alertname", "BasipSIPProxyOutage", "severity", "critical", "job", "basip", "proxy", "sip:pbx-a")},
				{labels: labels("alertname", "BasipSIPProxyOutage", "severity", "critical", "job", "basip", "proxy", "sip:pbx-b"), at: time.Minute},
			},
			want: []string{
				"pager map[alertname:BasipSIPProxyOutage proxy:sip:pbx-a]: 1 firing, 0 resolved",
				"pager map[alertname:BasipSIPProxyOutage proxy:sip:pbx-b]: 1 firing, 0 resolved",
			},
		},
	}
	for _, inc := range incidents {
		t.Run(inc.name, func(t *testing.T) {
			t.Parallel()
			runIncident(t, amBin, root, inc)
		})
	}
}
