// Package vendorsim simulates the intercoms of the vendors other than
// BAS-IP (2N, Beward, Qtech, Akuvox, IS Sokol, Rubetek, Ufanet, Hikvision)
// over HTTP on loopback, from the same public facts as their clients in package
// vendors, for tests and --demo. Auth is checked as a device does: Basic
// byte for byte, Digest by its hash (see DigestAuth).
package vendorsim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The vendors simulated: the values of the configuration's vendor.
var Vendors = []string{"2n", "beward", "qtech", "akuvox", "sokol", "rubetek", "ufanet", "hikvision"}

// Device is one simulated intercom. Set its fields before serving it, or
// change them under Lock/Unlock while it is served.
type Device struct {
	Vendor   string
	Username string
	Password string
	// Auth is "basic" or "digest": the vendor's default when empty.
	Auth   string
	Digest DigestAuth

	sync.Mutex
	// Enabled is the SIP account's enabled flag, where the vendor has one.
	Enabled bool
	// Registered is account 1's registration; Registered2 account 2's,
	// which counts (2N, Beward) only while Enabled2.
	Registered, Registered2 bool
	Enabled2                bool
	// RawStatus, when set, is sent as the registration value instead of
	// the one Registered gives (Qtech's and Akuvox's AccountStatus,
	// Sokol's registerStatus, Rubetek's acc1_register_status, Ufanet's
	// sipreg): a value the exporter may not know.
	RawStatus string
	// AnyPath200 makes the web server answer 200 with an HTML page to a
	// path it does not have, as some panels' servers do.
	AnyPath200 bool
	// Failure is Rubetek's status text when not registered ("failed: 403");
	// "unregistered" when empty. Hikvision's registerStatus likewise
	// ("false" when empty).
	Failure string
	// Server, Port, User, SIPPassword, Transport, RegInterval, STUNServer
	// and STUNPort are the SIP settings.
	Server      string
	Port        int
	User        string
	SIPPassword string
	Transport   string
	RegInterval int
	STUNServer  string
	STUNPort    int
	Model       string
	Firmware    string
	// Revision is Sokol's: 2 (settings at /sip/settings, registerStatus a
	// boolean) or 5 (/v1/sip/settings, registerStatus text).
	Revision int

	// Latency delays every answer.
	Latency time.Duration

	// Requests counts every request; Unauthorized the 401s sent;
	// Authorized the requests whose credentials were accepted;
	// Connections the connections accepted.
	Requests, Unauthorized, Authorized, Connections atomic.Int64
	paths                                           []string
	authz                                           []string
}

// maxRecorded bounds the paths and headers a device records.
const maxRecorded = 10000

// AuthorizationHeaders returns the Authorization headers received so far
// (the first maxRecorded), for tests that look for them where they must
// not be.
func (d *Device) AuthorizationHeaders() []string {
	d.Lock()
	defer d.Unlock()
	return append([]string(nil), d.authz...)
}

// New returns a healthy, registered device of vendor with credentials
// user and password and the vendor's default auth.
func New(vendor, user, password string) *Device {
	d := &Device{Vendor: vendor, Username: user, Password: password, Enabled: true, Registered: true, Registered2: true, Enabled2: true,
		Server: "sip.example.net", Port: 5060, User: "1001", SIPPassword: "Sip-Secret-0042", Transport: "udp",
		RegInterval: 300, STUNServer: "stun.example.net", STUNPort: 3478, Revision: 5,
		Model: map[string]string{"2n": "2N IP Verso", "beward": "DKS15122", "qtech": "QDB-27C-H", "akuvox": "E12W",
			"sokol": "ISCOM X1", "rubetek": "RV-3434", "ufanet": "Secret Top", "hikvision": "DS-KV8113-WME1"}[vendor],
		Firmware: "2.40.1", Digest: DigestAuth{Realm: vendor}}
	if vendor == "2n" || vendor == "akuvox" || vendor == "hikvision" {
		d.Auth = "digest"
	}
	return d
}

// Paths returns the paths (with query) requested so far.
func (d *Device) Paths() []string {
	d.Lock()
	defer d.Unlock()
	return append([]string(nil), d.paths...)
}

func (d *Device) authorized(w http.ResponseWriter, r *http.Request) bool {
	if d.Auth == "digest" {
		ok, stale := d.Digest.Verify(r, d.Username, d.Password)
		if !ok {
			d.Digest.Challenge(w, stale)
		}
		return ok
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(d.Username+":"+d.Password))
	if r.Header.Get("Authorization") != want {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+d.Vendor+`"`)
		return false
	}
	return true
}

// ServeHTTP answers as the vendor's device does.
func (d *Device) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.Requests.Add(1)
	if d.Latency > 0 {
		time.Sleep(d.Latency)
	}
	d.Lock()
	if len(d.paths) < maxRecorded {
		d.paths = append(d.paths, r.URL.RequestURI())
		if h := r.Header.Get("Authorization"); h != "" {
			d.authz = append(d.authz, h)
		}
	}
	d.Unlock()
	if !d.authorized(w, r) {
		d.Unauthorized.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "401 Unauthorized")
		return
	}
	d.Authorized.Add(1)
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	d.Lock()
	defer d.Unlock()
	out, ok := d.answer(r, body)
	if !ok && d.AnyPath200 {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<!DOCTYPE html><html><head><title>Web</title></head><body>Login</body></html>")
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	if x, isXML := out.(xmlAnswer); isXML {
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, string(x))
		return
	}
	if s, isText := out.(string); isText {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, s)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// answer is the vendor's answer to r: a string is sent as text, an
// xmlAnswer as XML, anything else as JSON; false for a path the device does not have.
func (d *Device) answer(r *http.Request, body []byte) (any, bool) {
	switch d.Vendor {
	case "2n":
		return d.twoN(r)
	case "beward":
		return d.beward(r)
	case "qtech":
		return d.qtech(r, body)
	case "akuvox":
		return d.akuvox(r, body)
	case "sokol":
		return d.sokol(r)
	case "rubetek":
		return d.rubetek(r)
	case "ufanet":
		return d.ufanet(r)
	case "hikvision":
		return d.hikvision(r)
	}
	return nil, false
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (d *Device) twoN(r *http.Request) (any, bool) {
	ok := func(result any) map[string]any { return map[string]any{"success": true, "result": result} }
	switch r.URL.Path {
	case "/api/phone/config":
		return ok(map[string]any{"accounts": []map[string]any{
			// Ports as strings, "" for none, as the manual's example has them.
			{"account": 1, "enabled": d.Enabled, "displayName": "", "sipNumber": d.User, "domain": d.Server, "domainPort": "", "authId": "",
				"proxyAddress": d.Server, "proxyPort": fmt.Sprint(d.Port), "registrarAddress": d.Server, "registrarPort": fmt.Sprint(d.Port),
				"registrationEnabled": true, "answerMode": "1"},
			{"account": 2, "enabled": d.Enabled2, "displayName": "", "sipNumber": "5208", "domain": d.Server, "domainPort": "", "authId": "",
				"proxyAddress": "", "proxyPort": "", "registrationEnabled": d.Enabled2, "registrarAddress": d.Server, "registrarPort": fmt.Sprint(d.Port), "answerMode": "1"},
		}}), true
	case "/api/phone/status":
		// Newer firmware, as the manual's example: local and Microsoft
		// Teams accounts listed beside the SIP ones, without registered.
		return ok(map[string]any{"accounts": []map[string]any{
			{"account": 1, "enabled": d.Enabled, "sipNumber": d.User, "registrationEnabled": true, "registered": d.Enabled && d.Registered, "registerTime": 1663585547},
			{"account": 2, "enabled": d.Enabled2, "sipNumber": "5208", "registrationEnabled": true, "registered": d.Enabled2 && d.Registered2},
			{"account": 3, "accountType": "local", "enabled": true},
			{"account": 4, "accountType": "msteams", "enabled": false},
		}}), true
	case "/api/system/info":
		return ok(map[string]any{"variant": d.Model, "serialNumber": "54-0000-0001", "hwVersion": "535v1", "swVersion": d.Firmware, "deviceName": "2N IP Verso"}), true
	}
	return nil, false
}

func (d *Device) beward(r *http.Request) (any, bool) {
	switch r.URL.Path + "?" + r.URL.Query().Get("action") {
	case "/cgi-bin/sip_cgi?get":
		return fmt.Sprintf("AccountEnable1=%s\r\nAccUser1=%s\r\nAccPassword1=%s\r\nRegServerUrl1=%s\r\nRegServerPort1=%d\r\nSipServerUrl1=%s\r\nNatEnable1=%s\r\nStunUrl1=%s\r\nStunPort1=%d\r\nAccountEnable2=%s\r\n",
			onOff(d.Enabled), d.User, d.SIPPassword, d.Server, d.Port, d.Server, onOff(d.STUNServer != ""), d.STUNServer, d.STUNPort, onOff(d.Enabled2)), true
	case "/cgi-bin/sip_cgi?regstatus":
		// An unused account 2 is sent as AccountReg2=0.
		return fmt.Sprintf("AccountReg1=%s\nAccountReg2=%s\n", b01(d.Enabled && d.Registered), b01(d.Enabled2 && d.Registered2)), true
	case "/cgi-bin/systeminfo_cgi?get":
		return fmt.Sprintf("DeviceID=001122334455\nDeviceModel=%s\nHardwareVersion=1.0\nSoftwareVersion=%s\nUpTime=20:22:31\n", d.Model, d.Firmware), true
	}
	return nil, false
}

func (d *Device) qtech(r *http.Request, body []byte) (any, bool) {
	var req struct {
		Target, Action string
		Data           map[string]any
	}
	if r.URL.Path != "/api" || r.Method != http.MethodPost || json.Unmarshal(body, &req) != nil {
		return nil, false
	}
	env := func(data any) map[string]any { return map[string]any{"retcode": 0, "message": "OK", "data": data} }
	switch req.Target + "/" + req.Action {
	case "config/get":
		key, _ := req.Data["config_key"].(string)
		cfg := map[string]string{
			"Config.Account1.SIP.Server": d.Server, "Config.Account1.SIP.Port": fmt.Sprint(d.Port),
			"Config.Account1.GENERAL.UserName": d.User, "Config.Account1.GENERAL.Pwd": d.SIPPassword,
			"Config.Account1.STUN.Enable": b01(d.STUNServer != ""), "Config.Account1.STUN.Server": d.STUNServer,
			"Config.Account1.STUN.Port": fmt.Sprint(d.STUNPort),
		}
		if v, ok := cfg[key]; ok {
			return env(map[string]string{key: v}), true
		}
		return env(map[string]string{}), true
	case "sip/get":
		return env(map[string]any{"SipAccount": map[string]string{"AccountStatus": d.accountStatus(), "AccountId": "0"}}), true
	case "firmware/status":
		return env(map[string]string{"model": d.Model, "firmware": d.Firmware, "hardware": "1.0", "mac": "00:11:22:33:44:55"}), true
	}
	return nil, false
}

// accountStatus is Qtech's and Akuvox's AccountStatus.
func (d *Device) accountStatus() string {
	switch {
	case d.RawStatus != "":
		return d.RawStatus
	case !d.Enabled:
		return "0"
	case d.Registered:
		return "2"
	}
	return "1"
}

var akuvoxTransType = map[string]string{"udp": "0", "tcp": "1", "tls": "2"}

func (d *Device) akuvox(r *http.Request, body []byte) (any, bool) {
	switch {
	case r.URL.Path == "/api/system/info" && r.Method == http.MethodGet:
		return map[string]any{"retcode": 0, "action": "info", "message": "OK", "data": map[string]any{
			"Status":   map[string]string{"Model": d.Model, "FirmwareVersion": d.Firmware, "MAC": "0C:11:05:00:00:01", "HardwareVersion": "1.0"},
			"Account1": map[string]string{"Status": d.accountStatus(), "UserName": d.User},
		}}, true
	case r.URL.Path == "/api" && r.Method == http.MethodPost:
		var req struct {
			Target, Action string
			Data           struct{ Item []string }
		}
		if json.Unmarshal(body, &req) != nil || req.Target != "config" || req.Action != "get" {
			return nil, false
		}
		cfg := map[string]string{
			"Config.Account1.GENERAL.Enable": b01(d.Enabled), "Config.Account1.GENERAL.AuthName": d.User,
			"Config.Account1.GENERAL.Pwd": d.SIPPassword,
			"Config.Account1.SIP.Server":  d.Server, "Config.Account1.SIP.Port": fmt.Sprint(d.Port),
			"Config.Account1.SIP.TransType": akuvoxTransType[d.Transport], "Config.Account1.STUN.Enable": b01(d.STUNServer != ""),
			"Config.Account1.STUN.Server": d.STUNServer, "Config.Account1.STUN.Port": fmt.Sprint(d.STUNPort),
		}
		data := map[string]string{}
		for _, k := range req.Data.Item {
			if v, ok := cfg[k]; ok {
				data[k] = v
			}
		}
		return map[string]any{"retcode": 0, "action": "get", "message": "OK", "data": data}, true
	}
	return nil, false
}

func (d *Device) sokol(r *http.Request) (any, bool) {
	settings := "/v1/sip/settings"
	if d.Revision == 2 {
		settings = "/sip/settings"
	}
	switch r.URL.Path {
	case settings:
		remote := map[string]any{"enabled": d.Enabled, "domain": d.Server, "port": d.Port, "username": d.User, "password": d.SIPPassword}
		if d.Revision == 2 {
			remote["transport"] = strings.ToUpper(d.Transport)
		} else { // rev.5: an object of flags, and the registrar beside the proxy
			remote["transport"] = map[string]bool{"udp": d.Transport == "udp", "tcp": d.Transport == "tcp"}
			remote["domainRegister"], remote["portRegister"] = d.Server, d.Port
		}
		return map[string]any{"videoEnable": true, "remote": remote}, true
	case "/system/info":
		var reg any = d.Registered
		if d.Revision != 2 {
			reg = fmt.Sprint(d.Registered)
		}
		if d.RawStatus != "" {
			reg = d.RawStatus
		}
		return map[string]any{"deviceID": "sokol-1", "model": d.Model, "registerStatus": reg, "uptime": 12345}, true
	case "/v2/system/versions":
		if d.Revision == 2 {
			return nil, false
		}
		return map[string]any{"opt": map[string]any{"name": d.Firmware, "version": "5"}}, true
	}
	return nil, false
}

func (d *Device) rubetek(r *http.Request) (any, bool) {
	switch r.URL.Path {
	case "/api/v1/sip":
		nat := ""
		if d.STUNServer != "" {
			nat = "stun"
		}
		return fmt.Sprintf("Acc1Login=%s\nAcc1Password=%s\nAcc1SipServer=%s\nAcc1SipServerPort=%d\nAcc1SipTransport=%s\nAcc1RegInterval=%d\nAcc1NATType=%s\nAcc1StunServer=%s\nAcc1StunPort=%d\n",
			d.User, d.SIPPassword, d.Server, d.Port, d.Transport, d.RegInterval, nat, d.STUNServer, d.STUNPort), true
	case "/api/v1/reg_status":
		s := "registered"
		if !d.Registered {
			s = d.Failure
			if s == "" {
				s = "unregistered"
			}
		}
		if d.RawStatus != "" {
			s = d.RawStatus
		}
		return map[string]string{"acc1_register_status": s}, true
	case "/api/v1/version":
		return map[string]string{"model": d.Model, "firmware_version": d.Firmware, "serial_number": "RV0000000001"}, true
	}
	return nil, false
}

func (d *Device) ufanet(r *http.Request) (any, bool) {
	onStatusPort := r.Context().Value(statusPortKey{}) != nil
	switch {
	case r.URL.Path == "/api/v1/configuration" && !onStatusPort:
		return map[string]any{"sip": map[string]any{"domain": fmt.Sprintf("%s:%d", d.Server, d.Port), "user": d.User, "password": d.SIPPassword, "enabled": d.Enabled}}, true
	case r.URL.Path == "/api/v1/status" && onStatusPort:
		var reg any = d.Registered
		if d.RawStatus != "" {
			reg = d.RawStatus
		}
		return map[string]any{"sipreg": reg, "uptime": "1 day, 2:03:04"}, true
	case r.URL.Path == "/cgi-bin/magicBox.cgi" && onStatusPort: // INI text
		switch r.URL.Query().Get("action") {
		case "getSerialNo":
			return "sn=UF0000000001\r\n", true
		case "getMachineName":
			return "name=Entrance\r\n", true
		case "getSoftwareVersion":
			return "version=" + d.Firmware + "\r\nkernel=4.9.84\r\n", true
		case "getDeviceVariant":
			return "device_variant=" + d.Model + "\r\n", true
		}
	}
	return nil, false
}
