package collector

import (
	"fmt"
	"testing"

	"github.com/basip/basip_exporter/collector/simulator/vendorsim"
)

// TestMixedFleetSeries scrapes the --demo fleet's devices of every vendor
// through the exporter, over HTTP to the simulated devices, and checks the
// series each gives: the same names for every vendor, one meaning of the
// registration state set, account series where a vendor reports several.
func TestMixedFleetSeries(t *testing.T) {
	out := scrapeDemo(t)
	for _, line := range []string{
		// 2N: Digest, newer firmware: account 1 switched off, account 2
		// registered through its registrar, a local and a Teams account
		// beside them; model from /api/system/info.
		`basip_up{device="2n-verso-gate",site="annex"} 1`,
		`basip_sip_enabled{device="2n-verso-gate",site="annex"} 1`,
		`basip_sip_registration_status{device="2n-verso-gate",site="annex",status="ok"} 1`,
		`basip_sip_account_registered{account="2",device="2n-verso-gate",site="annex"} 1`,
		`basip_device_info{api_version="",device="2n-verso-gate",firmware="2.40.1",model="2N IP Verso",name="2N IP Verso",serial="54-0000-0001",site="annex",type="panel",vendor="2n"} 1`,
		// Beward: Basic, the SIP password in clear, account 2 unused.
		`basip_up{device="beward-dks-lobby",site="annex"} 1`,
		`basip_sip_password_exposed{device="beward-dks-lobby",site="annex"} 1`,
		`basip_sip_registered{device="beward-dks-lobby",site="annex"} 1`,
		`basip_sip_account_registered{account="1",device="beward-dks-lobby",site="annex"} 1`,
		`basip_sip_stun_configured{device="beward-dks-lobby",site="annex"} 1`,
		`basip_device_info{api_version="",device="beward-dks-lobby",firmware="2.40.1",model="DKS15122",name="",serial="",site="annex",type="panel",vendor="beward"} 1`,
		// Qtech: "1" is a failure: error.
		`basip_sip_registration_status{device="qtech-qdb-yard",site="annex",status="error"} 1`,
		`basip_sip_registered{device="qtech-qdb-yard",site="annex"} 0`,
		// Akuvox: account disabled: offline, enabled 0.
		`basip_sip_registration_status{device="akuvox-e12-service",site="annex",status="offline"} 1`,
		`basip_sip_enabled{device="akuvox-e12-service",site="annex"} 0`,
		`basip_sip_transport{device="akuvox-e12-service",site="annex",transport="udp"} 1`,
		// Sokol rev.2: the password in clear; the revision, model and device ID from
		// /system/info, no /v2/system/versions: no firmware.
		`basip_sip_registration_status{device="sokol-rev2-entrance",site="annex",status="ok"} 1`,
		`basip_sip_password_exposed{device="sokol-rev2-entrance",site="annex"} 1`,
		`basip_device_info{api_version="rev.2",device="sokol-rev2-entrance",firmware="",model="ISCOM X1",name="",serial="sokol-1",site="annex",type="panel",vendor="sokol"} 1`,
		// Rubetek: "failed: 403" is error; its registration interval.
		`basip_sip_registration_status{device="rubetek-rv3434-back",site="annex",status="error"} 1`,
		`basip_sip_registration_interval_seconds{device="rubetek-rv3434-back",site="annex"} 300`,
		// Ufanet: status from its status port.
		`basip_sip_registered{device="ufanet-secret-top",site="annex"} 1`,
		`basip_sip_password_exposed{device="ufanet-secret-top",site="annex"} 1`,
		// Hikvision: Digest, ISAPI XML; enabled flag, user ID, interval, identity.
		`basip_up{device="hikvision-kv8113-porch",site="annex"} 1`,
		`basip_sip_enabled{device="hikvision-kv8113-porch",site="annex"} 1`,
		`basip_sip_registration_status{device="hikvision-kv8113-porch",site="annex",status="ok"} 1`,
		`basip_sip_registration_interval_seconds{device="hikvision-kv8113-porch",site="annex"} 300`,
		`basip_sip_password_exposed{device="hikvision-kv8113-porch",site="annex"} 0`,
		`basip_device_info{api_version="",device="hikvision-kv8113-porch",firmware="V2.40.1",model="DS-KV8113-WME1",name="OUTDOOR STATION",serial="DS-KV8113-WME10020230627CCRRAB0000001",site="annex",type="panel",vendor="hikvision"} 1`,
		// BAS-IP devices keep their series, with the vendor label.
		`basip_sip_registration_status{device="panel-entrance",site="hq",status="ok"} 1`,
	} {
		requireLine(t, out, line)
	}
	for _, absent := range []string{
		`basip_sip_enabled{device="sokol-rev2-entrance"`,                 // no enabled flag
		`basip_sip_registration_interval_seconds{device="2n-verso-gate"`, // not given
		`basip_sip_account_registered{account="1",device="qtech-qdb-yard"`,
		`basip_sip_account_registered{account="1",device="2n-verso-gate"`,    // switched off
		`basip_sip_account_registered{account="3",device="2n-verso-gate"`,    // a local account
		`basip_sip_account_registered{account="2",device="beward-dks-lobby"`, // unused: AccountEnable2 off
		`basip_sip_password_exposed{device="qtech-qdb-yard"`,                 // never asked for
		`basip_sip_password_exposed{device="2n-verso-gate"`,                  // no such field
		`basip_sip_schema_violation{device="beward-dks-lobby"`,               // BAS-IP's constraints only
		`basip_poll_errors_total{device="2n-verso-gate"`,
		`basip_poll_errors_total{device="ufanet-secret-top"`,
		`basip_poll_errors_total{device="hikvision-kv8113-porch"`,
		`basip_sip_account_registered{account="1",device="hikvision-kv8113-porch"`, // one account, no account series
		`basip_sip_transport{device="hikvision-kv8113-porch"`,                      // no transport in the evidence
	} {
		if grep(out, absent) != "" {
			t.Errorf("unexpected series: %s", grep(out, absent))
		}
	}
}

// TestPolicyOnAVendorWithoutSomeFields: a policy's rules on fields a
// vendor does not give are not evaluated; the others are.
func TestPolicyOnAVendorWithoutSomeFields(t *testing.T) {
	d := vendorsim.New("sokol", "root", "Sokol-Pass-1")
	srv, err := vendorsim.Serve(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	y := fmt.Sprintf(`credentials:
  default: {username: root, password: Sokol-Pass-1}
policies:
  default:
    enabled: true
    transports: [tcp]
    registration_interval: {min: 60, max: 600}
    proxy: '^sip:sip\.example\.net$'   # the proxy in its one form: sip:host, the default port left out
    password_exposed: forbidden
devices:
  - {name: s, address: %s, vendor: sokol}
`, srv.URL)
	out := scrapeExporter(t, newExporter(t, []byte(y)), 0)
	for _, line := range []string{
		`basip_sip_policy_violation{device="s",policy="default",rule="proxy"} 0`,
		`basip_sip_policy_violation{device="s",policy="default",rule="transports"} 1`,
		`basip_sip_policy_violation{device="s",policy="default",rule="password_exposed"} 1`,
		`basip_sip_policy_compliant{device="s",policy="default"} 0`,
	} {
		requireLine(t, out, line)
	}
	for _, absent := range []string{`rule="enabled"`, `rule="registration_interval"`} {
		if l := grep(out, absent); l != "" {
			t.Errorf("a rule on a field Sokol does not give was evaluated: %s", l)
		}
	}
}
