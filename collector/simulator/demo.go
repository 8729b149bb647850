package simulator

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/basip/basip_exporter/collector/simulator/vendorsim"
)

// MonitorSettings is the SIP settings answer of an Android indoor monitor
// (API v0): every documented field, the SIP password in clear.
func MonitorSettings(user, transport string) map[string]any {
	return map[string]any{
		"enable":                true,
		"proxy":                 "sip:pbx.example.com",
		"realm":                 "example.com",
		"user":                  user,
		"password":              "s1p-" + user + "-pass",
		"transport":             transport,
		"user_id":               user,
		"is_enable_ring_code":   false,
		"timeout":               120,
		"registration_interval": 300,
		"stun":                  map[string]any{"ip": "", "port": 3478},
	}
}

// PanelSettings is the SIP settings answer of a door panel (API v1): no
// enable, timeout or ring code, the password masked as WebPass.
func PanelSettings(user, transport string) map[string]any {
	return map[string]any{
		"proxy":                 "sip:pbx.example.com",
		"realm":                 "example.com",
		"user":                  user,
		"password":              "WebPass",
		"transport":             transport,
		"user_id":               user,
		"registration_interval": 120,
		"stun":                  map[string]any{"ip": "stun.example.com", "port": 3478},
	}
}

// LeakyPanelSettings is the SIP settings answer of a panel on firmware
// before 3.9.2 (CVE-2024-39220): PanelSettings with the SIP password in
// clear instead of WebPass, and an outbound proxy.
func LeakyPanelSettings(user, transport, sipPassword string) map[string]any {
	s := PanelSettings(user, transport)
	s["password"] = sipPassword
	s["outbound"] = "sip:sbc.example.com:5060"
	return s
}

// FieldPanelSettings is a panel's SIP settings answer in the shapes seen
// in the field, within what the API allows but unlike PanelSettings: realm
// as host:port, proxy and outbound as sip:host:port, stun.ip 127.0.0.1
// (meaning "no STUN" to one platform), registration_interval 900 (the
// most panels accept), the password masked as WebPass.
func FieldPanelSettings(user, transport string) map[string]any {
	return map[string]any{
		"proxy":                 "sip:pbx.example.com:5060",
		"realm":                 "example.com:5060",
		"outbound":              "sip:sbc.example.com:5060",
		"user":                  user,
		"password":              "WebPass",
		"transport":             transport,
		"user_id":               user,
		"registration_interval": 900,
		"stun":                  map[string]any{"ip": "127.0.0.1", "port": 3478},
	}
}

// Info is an /api/info answer.
func Info(name, model, typ, firmware, apiVersion string) map[string]any {
	return map[string]any{
		"device_name":          name,
		"device_model":         model,
		"device_type":          typ,
		"firmware_version":     firmware,
		"framework_version":    "1.0.0",
		"api_version":          apiVersion,
		"device_serial_number": fmt.Sprintf("SN-%08X", hash(name)),
	}
}

// Status is a sip/status answer.
func Status(status string, lastAttempt int64) map[string]any {
	s := map[string]any{"sip_status": status, "register_last_attempt": nil}
	if lastAttempt > 0 {
		s["register_last_attempt"] = lastAttempt
	}
	return s
}

// StatusMillis is a sip/status answer whose register_last_attempt is in
// milliseconds since the Unix epoch (values above 1e11), as the vendor's
// log items carry; 0 sends null.
func StatusMillis(status string, lastAttemptMillis int64) map[string]any {
	return Status(status, lastAttemptMillis)
}

func hash(s string) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// Demo is the simulated fleet of --demo: a mix that makes every metric show.
type Demo struct {
	Servers []*Server
	// VendorServers are the devices of the other vendors, one of each.
	VendorServers []*vendorsim.Server
	// Devices are every device of the fleet in the order of their ports.
	Devices []DemoDevice
	// PBX is the demo's PBX, which most devices point to.
	PBX *DemoPBX
	// Config is the exporter configuration for the fleet, in YAML.
	Config []byte
}

// DemoDevice is where a demo device answers.
type DemoDevice struct {
	Name, Vendor string
	URL          string // http://127.0.0.1:PORT or https://...
	StatusPort   int    // a Ufanet device's status port; 0 for the others
}

// DemoOptions shape the demo fleet.
type DemoOptions struct {
	// FirstPort is the port of the first device on 127.0.0.1; the others
	// take the ports after it, one each in the order of Demo.Devices, and
	// the Ufanet device's status the port after the last device
	// (DemoPorts in all). 0: each on a free port the system picks.
	FirstPort int
}

// DemoPorts is how many ports the demo fleet listens on: one per device
// and the Ufanet device's status port.
func DemoPorts() int { return len(demoDevices(0)) + len(demoVendors) + 2 }

// Demo credentials. They exist only in this process.
const (
	DemoUsername = "admin"
	DemoPassword = "demo-Passw0rd"
)

// demoPolicies are the demo fleet's intended SIP settings. Against them the
// fleet carries exactly these violations: monitor-102 a wrong proxy and the
// ring code on; monitor-103-sip-off SIP disabled (and the weak password
// 123456); monitor-104-out-of-range an undocumented transport, a
// registration interval and a call timeout out of range;
// panel-old-firmware a firmware before 3.9.2 that reveals the SIP password.
const demoPolicies = `policies:
  default:
    enabled: true
    transports: [udp, tcp, tls]
    registration_interval: {min: 60, max: 600}
    call_timeouts: [120, 300]
    proxy: '^sip:pbx\.example\.com$'
    realm: '^example\.com$'
    ring_code: false
  panels:
    transports: [udp, tls]
    registration_interval: {min: 60, max: 300}
    proxy: '^sip:pbx\.example\.com$'
    realm: '^example\.com$'
    stun: required
  panels-cve:
    transports: [udp, tls]
    proxy: '^sip:pbx\.example\.com(:5060)?$'
    firmware: {min: "3.9.2"}
    password_exposed: forbidden
`

type demoDevice struct {
	name, api, extra string
	tls              bool
	auth             AuthMode
	setup            func(d *Device)
}

// demoDevices are the demo's BAS-IP devices; now is the time of their last
// registration attempt.
func demoDevices(now int64) []demoDevice {
	return []demoDevice{
		{name: "panel-entrance", api: "v1", extra: "    policy: panels\n    labels: {site: hq}\n", setup: func(d *Device) {
			d.SetSettings(PanelSettings("100", "udp"))
			d.SetStatus(Status("OK", now))
			d.SetInfo(Info("Entrance", "AV-08FB", "panel", "3.9.1", "v1"))
		}},
		{name: "monitor-101", api: "v0", extra: "    labels: {site: hq}\n", setup: func(d *Device) {
			s := MonitorSettings("101", "tcp")
			s["stun"] = map[string]any{"ip": "stun.example.com", "port": 3478}
			d.SetSettings(s)
			d.SetInfo(Info("Flat 101", "AQ-07L", "monitor", "5.3.2", "v0"))
		}},
		{name: "monitor-102", api: "v0", extra: "    labels: {site: tower}\n", setup: func(d *Device) {
			s := MonitorSettings("102", "tls")
			s["is_enable_ring_code"] = true
			s["proxy"] = "sip:old-pbx.example.com"
			d.SetSettings(s)
			d.SetStatus(Status("ERROR", now))
			d.SetInfo(Info("Flat 102", "AQ-10", "monitor", "5.1.0", "v0"))
		}},
		{name: "monitor-103-sip-off", api: "v0", extra: "    labels: {site: tower}\n", setup: func(d *Device) {
			s := MonitorSettings("103", "udp")
			s["enable"] = false
			s["password"] = "123456"
			d.SetSettings(s)
			d.SetStatus(Status("OFFLINE", 0))
			d.SetInfo(Info("Flat 103", "AQ-07L", "monitor", "5.3.2", "v0"))
		}},
		{name: "monitor-104-out-of-range", api: "v0", extra: "    labels: {site: tower}\n", setup: func(d *Device) {
			s := MonitorSettings("104", "wss")
			s["registration_interval"] = 3600
			s["timeout"] = 90
			d.SetSettings(s)
			d.SetStatus(Status("OK", now))
			d.SetInfo(Info("Flat 104", "AQ-07L", "monitor", "5.0.4", "v0"))
		}},
		{name: "panel-wrong-password", api: "v1", extra: "    credentials: stale\n", setup: func(d *Device) {
			d.SetSettings(PanelSettings("200", "udp"))
			d.SetInfo(Info("Back door", "AV-03BD", "panel", "3.7.0", "v1"))
		}},
		{name: "panel-silent", api: "v1", setup: func(d *Device) {
			d.SetSettings(PanelSettings("300", "udp"))
			d.SetFault(FaultHang)
		}},
		{name: "panel-https", api: "v1", tls: true, extra: "    policy: panels\n    tls_config: {insecure_skip_verify: true}\n", setup: func(d *Device) {
			d.SetSettings(PanelSettings("400", "tls"))
			d.SetStatus(Status("OK", now))
			d.SetInfo(Info("Garage", "AV-08FB", "panel", "3.9.1", "v1"))
		}},
		// An ISP platform's way: HTTP Basic on every request, no login.
		{name: "panel-basic", api: "v1", auth: AuthBasic, extra: "    credentials: basic\n    policy: panels-cve\n", setup: func(d *Device) {
			d.SetSettings(FieldPanelSettings("500", "udp"))
			d.SetStatus(StatusMillis("OK", now*1000))
			d.SetInfo(Info("Side gate", "AA-07FB", "panel", "3.9.2", "2.1.0"))
		}},
		// Firmware before 3.9.2 sends the SIP password in clear
		// (CVE-2024-39220).
		{name: "panel-old-firmware", api: "v1", extra: "    policy: panels-cve\n", setup: func(d *Device) {
			d.SetSettings(LeakyPanelSettings("600", "udp", "Old-Sip-Secret-600"))
			d.SetStatus(Status("OK", now))
			d.SetInfo(Info("Service door", "AA-07BD", "panel", "3.8.0", "2.0.0"))
		}},
	}
}

// StartDemo starts the demo fleet on 127.0.0.1 at free ports. Close it
// when done.
func StartDemo() (*Demo, error) { return StartDemoWith(DemoOptions{}) }

// StartDemoWith starts the demo fleet on 127.0.0.1 as o says. Close it
// when done.
func StartDemoWith(o DemoOptions) (*Demo, error) {
	if o.FirstPort < 0 || o.FirstPort > 0 && o.FirstPort+DemoPorts()-1 > 65535 {
		return nil, fmt.Errorf("demo ports %d to %d: not ports (the demo needs %d from the first)", o.FirstPort, o.FirstPort+DemoPorts()-1, DemoPorts())
	}
	addr := func(i int) string {
		if o.FirstPort == 0 {
			return "127.0.0.1:0"
		}
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(o.FirstPort+i))
	}
	devices := demoDevices(time.Now().Add(-time.Minute).Unix())
	demo := &Demo{}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  timeout: 3s\n  api_version: auto\ncredentials:\n  default:\n    username: %s\n    password: %q\n  stale:\n    username: %s\n    password: %q\n  basic:\n    username: %s\n    password: %q\n    auth: basic\n%sdevices:\n",
		DemoUsername, DemoPassword, DemoUsername, "an-old-Passw0rd", DemoUsername, DemoPassword, demoPolicies)
	for i, dd := range devices {
		d := &Device{Username: DemoUsername, Password: DemoPassword, APIVersion: dd.api, Auth: dd.auth}
		dd.setup(d)
		var s *Server
		var err error
		if dd.tls {
			s, err = ServeTLSAt(d, addr(i))
		} else {
			s, err = ServeAt(d, addr(i))
		}
		if err != nil {
			demo.Close()
			return nil, fmt.Errorf("demo device %s: %w", dd.name, err)
		}
		demo.Servers = append(demo.Servers, s)
		demo.Devices = append(demo.Devices, DemoDevice{Name: dd.name, Vendor: "basip", URL: s.URL})
		fmt.Fprintf(&cfg, "  - name: %s\n    address: %s\n%s", dd.name, s.URL, dd.extra)
	}
	if err := demo.addVendors(&cfg, func(i int) string { return addr(len(devices) + i) }, addr(DemoPorts()-2)); err != nil {
		demo.Close()
		return nil, err
	}
	if err := demo.addPBX(&cfg, addr(DemoPorts()-1)); err != nil {
		demo.Close()
		return nil, err
	}
	demo.Config = []byte(cfg.String())
	return demo, nil
}

// demoVendors are the demo's devices of other vendors, one each, in states
// that show the registration state set's meanings.
var demoVendors = []struct {
	name, vendor string
	setup        func(d *vendorsim.Device)
}{
	{"2n-verso-gate", "2n", func(d *vendorsim.Device) { d.Enabled = false }},          // Digest; newer firmware: account 1 off, 2 registers
	{"beward-dks-lobby", "beward", func(d *vendorsim.Device) { d.Enabled2 = false }},  // Basic; SIP password in clear; account 2 unused
	{"qtech-qdb-yard", "qtech", func(d *vendorsim.Device) { d.Registered = false }},   // "1": failure
	{"akuvox-e12-service", "akuvox", func(d *vendorsim.Device) { d.Enabled = false }}, // Digest; account disabled
	{"sokol-rev2-entrance", "sokol", func(d *vendorsim.Device) { d.Revision = 2 }},
	{"rubetek-rv3434-back", "rubetek", func(d *vendorsim.Device) { d.Registered, d.Failure = false, "failed: 403" }},
	{"ufanet-secret-top", "ufanet", func(d *vendorsim.Device) {}},         // status on its own port
	{"hikvision-kv8113-porch", "hikvision", func(d *vendorsim.Device) {}}, // Digest; ISAPI XML
}

// addVendors starts the demo's devices of other vendors, the i-th at
// addr(i) and the Ufanet status at statusAddr, and adds them to the
// configuration in cfg.
func (d *Demo) addVendors(cfg *strings.Builder, addr func(i int) string, statusAddr string) error {
	for i, v := range demoVendors {
		dev := vendorsim.New(v.vendor, DemoUsername, DemoPassword)
		dev.User = strconv.Itoa(1001 + i) // one SIP account each
		v.setup(dev)
		s, err := vendorsim.ServeAt(dev, addr(i), statusAddr)
		if err != nil {
			return fmt.Errorf("demo device %s: %w", v.name, err)
		}
		d.VendorServers = append(d.VendorServers, s)
		d.Devices = append(d.Devices, DemoDevice{Name: v.name, Vendor: v.vendor, URL: s.URL, StatusPort: s.StatusPort})
		fmt.Fprintf(cfg, "  - name: %s\n    address: %s\n    vendor: %s\n    labels: {site: annex}\n    policy: none\n", v.name, s.URL, v.vendor)
		if s.StatusPort != 0 {
			fmt.Fprintf(cfg, "    status_port: %d\n", s.StatusPort)
		}
	}
	return nil
}

// demoRegistered are the SIP users of the demo devices that register with
// the demo PBX, as their status says: the BAS-IP devices whose status is
// OK (and monitor-101, which reports none), and the other vendors' that
// register (their users 1001 and up in the order of demoVendors; the 2N
// device registers its account 2, user 5208).
var demoRegistered = []string{"100", "101", "104", "400", "500", "600", "5208", "1002", "1005", "1007", "1008"}

// addPBX starts the demo's PBX at addr, its registrar holding a contact
// from 127.0.0.1 for each of demoRegistered, and adds it to cfg: every
// device whose proxy is pbx.example.com or sip.example.net points to it;
// monitor-102's old-pbx.example.com is none of the configured PBXs.
func (d *Demo) addPBX(cfg *strings.Builder, addr string) error {
	contacts := make([]DemoContact, len(demoRegistered))
	for i, u := range demoRegistered {
		contacts[i] = DemoContact{User: u, Source: "127.0.0.1:5060"}
	}
	p, err := StartDemoPBX(addr, contacts)
	if err != nil {
		return fmt.Errorf("demo PBX: %w", err)
	}
	d.PBX = p
	fmt.Fprintf(cfg, "pbxs:\n  - name: pbx-demo\n    sip: udp://%s\n    aliases: [pbx.example.com, sip.example.net]\n    registrar:\n      type: kamailio\n      url: %s\n", p.SIPAddr, p.RPCURL)
	return nil
}

// Close stops every demo device.
func (d *Demo) Close() {
	if d.PBX != nil {
		_ = d.PBX.Close()
	}
	for _, s := range d.Servers {
		_ = s.Close()
	}
	for _, s := range d.VendorServers {
		_ = s.Close()
	}
}
