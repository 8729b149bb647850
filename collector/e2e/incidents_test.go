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
//   - two independent proxy outages: two pages, one per proxy;
//   - a PBX that does not answer, behind 60 devices at 20 sites: one page
//     for the PBX; its devices' registration alerts, its registrar's alert
//     and its proxy's outage are held back;
//   - the same PBX answering again: its resolved message, and nothing from
//     the devices that register again within 5 minutes;
//   - two PBXs that do not answer: two pages, one per PBX;
//   - a PBX that does not answer and a site outage of the other PBX of
//     one of its sites: two pages, the site's not held back;
//   - a foreign contact on a door's account: one page; the door being
//     down as well, two pages, the foreign contact not held back by the
//     device;
//   - a PBX registrar that lost most of its contacts: one page for the
//     PBX, none per site.
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

	// A PBX stops answering at 0. BasipPBXUnreachable fires 2 minutes
	// in (here at 0); its 60 devices at 20 sites lose their registration
	// and their BasipSIPNotRegistered alerts (for: 5m), carrying the PBX's
	// name, fire 3 minutes after it; its registrar's alert (for: 10m) 8
	// minutes after. The rules leave these devices out of their sites' and
	// proxy's shares, so neither outage fires; a proxy alert that arrives
	// anyway, a minute after the PBX's, is held back too.
	pbxDown := func(pbx string, at time.Duration, ends func(time.Duration) time.Duration) []postedAlert {
		if ends == nil {
			ends = func(time.Duration) time.Duration { return 0 }
		}
		alerts := []postedAlert{
			{labels: labels("alertname", "BasipPBXUnreachable", "severity", "critical", "job", "basip", "pbx", pbx), at: at, endsAt: ends(15 * time.Minute)},
			{labels: labels("alertname", "BasipSIPProxyOutage", "severity", "critical", "job", "basip", "proxy", "sip:"+pbx+".example.com", "pbx", pbx), at: at + time.Minute, endsAt: ends(10 * time.Minute)},
			{labels: labels("alertname", "BasipPBXRegistrarDown", "severity", "warning", "job", "basip", "pbx", pbx), at: at + 8*time.Minute, endsAt: ends(10 * time.Minute)},
		}
		for s := range 20 {
			for d, sev := range []string{"critical", "warning", "warning"} {
				alerts = append(alerts, postedAlert{
					labels: labels("alertname", "BasipSIPNotRegistered", "severity", sev, "job", "basip", "pbx", pbx, "proxy", "sip:"+pbx+".example.com",
						"site", fmt.Sprintf("%s-s%02d", pbx, s), "device", fmt.Sprintf("%s-s%02d-%d", pbx, s, d)),
					at: at + 3*time.Minute, endsAt: ends(time.Minute + 10*time.Minute),
				})
			}
		}
		return alerts
	}
	// The PBX answers again at 20m: its alert resolves 15 minutes later
	// (keep_firing_for), the devices', registered again a minute after
	// the PBX answers, 10 minutes after that; the registrar's and the
	// proxy's with the PBX's return plus 10 minutes.
	back := func(keep time.Duration) time.Duration { return 20*time.Minute + keep }

	// A PBX registrar restarted without its contacts: 40 devices at 10
	// sites say they are registered and are missing there. The PBX alert
	// fires 5 minutes in (here at 0), the devices' 5 minutes later.
	lost := []postedAlert{{labels: labels("alertname", "BasipPBXRegistrationsMissing", "severity", "critical", "job", "basip", "pbx", "pbx-central")}}
	for i := range 40 {
		sev := "critical"
		if i%2 == 1 {
			sev = "warning"
		}
		lost = append(lost, postedAlert{
			labels: labels("alertname", "BasipRegistrationMissingAtPBX", "severity", sev, "job", "basip", "pbx", "pbx-central",
				"site", fmt.Sprintf("site-%d", i%10), "device", fmt.Sprintf("dev-%02d", i)),
			at: 5 * time.Minute,
		})
	}

	// Site hq uses pbx-a, which does not answer, and pbx-b, which hq's
	// three devices on it cannot register with: the rules count those
	// three alone for hq's share, and the site alert, which names no PBX,
	// pages beside the PBX's.
	mixed := pbxDown("pbx-a", 0, nil)
	mixed = append(mixed, postedAlert{labels: labels("alertname", "BasipSiteSIPOutage", "severity", "critical", "job", "basip", "site", "hq"), at: time.Minute})
	for d := range 3 {
		mixed = append(mixed, postedAlert{
			labels: labels("alertname", "BasipSIPNotRegistered", "severity", "critical", "job", "basip", "pbx", "pbx-b", "proxy", "sip:pbx-b.example.com",
				"site", "hq", "device", fmt.Sprintf("hq-b%d", d)),
			at: 3 * time.Minute,
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
			name: "two independent proxy outages",
			alerts: []postedAlert{
				{labels: labels("alertname", "BasipSIPProxyOutage", "severity", "critical", "job", "basip", "proxy", "sip:pbx-a")},
				{labels: labels("alertname", "BasipSIPProxyOutage", "severity", "critical", "job", "basip", "proxy", "sip:pbx-b"), at: time.Minute},
			},
			want: []string{
				"pager map[alertname:BasipSIPProxyOutage proxy:sip:pbx-a]: 1 firing, 0 resolved",
				"pager map[alertname:BasipSIPProxyOutage proxy:sip:pbx-b]: 1 firing, 0 resolved",
			},
		},
		{
			name:   "a PBX that does not answer behind 20 sites",
			alerts: pbxDown("pbx-central", 0, nil),
			want:   []string{"pager map[alertname:BasipPBXUnreachable pbx:pbx-central]: 1 firing, 0 resolved"},
		},
		{
			name:   "a PBX that answers again",
			alerts: pbxDown("pbx-central", 0, back),
			want: []string{
				"pager map[alertname:BasipPBXUnreachable pbx:pbx-central]: 1 firing, 0 resolved",
				"pager map[alertname:BasipPBXUnreachable pbx:pbx-central]: 0 firing, 1 resolved",
			},
		},
		{
			name:   "two PBXs that do not answer",
			alerts: append(pbxDown("pbx-a", 0, nil), pbxDown("pbx-b", time.Minute, nil)...),
			want: []string{
				"pager map[alertname:BasipPBXUnreachable pbx:pbx-a]: 1 firing, 0 resolved",
				"pager map[alertname:BasipPBXUnreachable pbx:pbx-b]: 1 firing, 0 resolved",
			},
		},
		{
			name:   "a PBX that does not answer and a site outage at the other PBX of one of its sites",
			alerts: mixed,
			want: []string{
				"pager map[alertname:BasipPBXUnreachable pbx:pbx-a]: 1 firing, 0 resolved",
				"pager map[alertname:BasipSiteSIPOutage site:hq]: 1 firing, 0 resolved",
			},
		},
		{
			name:   "a foreign contact on the account of a door",
			alerts: []postedAlert{{labels: labels("alertname", "BasipSIPAccountForeignContact", "severity", "critical", "job", "basip", "site", "hq", "device", "door-7", "pbx", "pbx-central")}},
			want:   []string{"pager map[alertname:BasipSIPAccountForeignContact pbx:pbx-central site:hq]: 1 firing, 0 resolved"},
		},
		{
			name: "a foreign contact on the account of a door that is down",
			alerts: []postedAlert{
				{labels: labels("alertname", "BasipDeviceDown", "severity", "critical", "job", "basip", "site", "hq", "device", "door-7")},
				{labels: labels("alertname", "BasipSIPAccountForeignContact", "severity", "critical", "job", "basip", "site", "hq", "device", "door-7", "pbx", "pbx-central"), at: time.Minute},
			},
			want: []string{
				"pager map[alertname:BasipDeviceDown site:hq]: 1 firing, 0 resolved",
				"pager map[alertname:BasipSIPAccountForeignContact pbx:pbx-central site:hq]: 1 firing, 0 resolved",
			},
		},
		{
			name:   "a PBX registrar that lost 40 registrations at 10 sites",
			alerts: lost,
			want:   []string{"pager map[alertname:BasipPBXRegistrationsMissing pbx:pbx-central]: 1 firing, 0 resolved"},
		},
	}
	for _, inc := range incidents {
		t.Run(inc.name, func(t *testing.T) {
			t.Parallel()
			runIncident(t, amBin, root, inc)
		})
	}
}
