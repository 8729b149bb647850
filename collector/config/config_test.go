package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/device"
)

const secretPw = "Otter-Pylon-6620"

func TestParseDefaultsAndResolution(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte(secretPw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := `
credentials:
  default:
    username: admin
    password_file: pw
  monitors:
    username: root
    password: inline-Pass1
    auth: basic
    md5_case: lower
devices:
  - name: lobby-1
    address: 192.0.2.10
    labels: {site: hq}
  - name: flat-2
    address: https://Monitor.Example.com
    credentials: monitors
    api_version: v0
    tls_config: {insecure_skip_verify: true}
    labels: {building: b}
`
	cfg, err := Parse([]byte(y), "c.yaml", dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Global.Timeout != DefaultTimeout || cfg.Global.Concurrency != DefaultConcurrency || cfg.Global.APIVersion != "v1" {
		t.Errorf("defaults not applied: %+v", cfg.Global)
	}
	d0, d1 := cfg.Devices[0], cfg.Devices[1]
	if d0.URL.String() != "http://192.0.2.10:80" || d1.URL.String() != "https://monitor.example.com:443" {
		t.Errorf("addresses: %s %s", d0.URL, d1.URL)
	}
	if d0.APIVersion != "v1" || d1.APIVersion != "v0" {
		t.Errorf("api versions: %s %s", d0.APIVersion, d1.APIVersion)
	}
	if got := d0.Credential.Secret().Reveal(); got != secretPw {
		t.Errorf("password_file not read and trimmed: %q", got)
	}
	if d1.Credential.Username != "root" {
		t.Errorf("credentials not resolved")
	}
	if c0, c1 := d0.Credential, d1.Credential; c0.Auth != AuthToken || c0.MD5Case != MD5Upper || c1.Auth != AuthBasic || c1.MD5Case != MD5Lower {
		t.Errorf("auth, md5_case: %s %s, %s %s", c0.Auth, c0.MD5Case, c1.Auth, c1.MD5Case)
	}
	if got := strings.Join(cfg.Global.SIPInfoLabels, ","); got != strings.Join(SIPInfoLabels, ",") {
		t.Errorf("sip_info_labels default %s", got)
	}
	if strings.Join(cfg.LabelNames, ",") != "building,site" {
		t.Errorf("label names %v", cfg.LabelNames)
	}
	cfg, err = Parse([]byte("global:\n  api_version: auto\n  sip_info_labels: [user, proxy]\n"), "c.yaml", dir)
	if err != nil || cfg.Global.APIVersion != AutoAPIVersion || strings.Join(cfg.Global.SIPInfoLabels, ",") != "proxy,user" {
		t.Errorf("auto and sip_info_labels: %v %+v", err, cfg.Global)
	}
}

func TestVendorsAndTheirAuth(t *testing.T) {
	y := `
global:
  vendor: beward
credentials:
  default:
    username: admin
    password: x
  basic:
    username: admin
    password: y
    auth: basic
devices:
  - {name: bas, address: 192.0.2.1, vendor: basip}
  - {name: two, address: 192.0.2.2, vendor: 2n}
  - {name: bew, address: 192.0.2.3}
  - {name: qt, address: 192.0.2.4, vendor: qtech}
  - {name: aku, address: 192.0.2.5, vendor: akuvox}
  - {name: sok, address: 192.0.2.6, vendor: sokol}
  - {name: rub, address: 192.0.2.7, vendor: rubetek}
  - {name: ufa, address: 192.0.2.8, vendor: ufanet}
  - {name: ufa2, address: 192.0.2.9, vendor: ufanet, status_port: 8085}
  - {name: two-basic, address: 192.0.2.10, vendor: 2n, credentials: basic}
  - {name: aku-basic, address: 192.0.2.11, vendor: akuvox, credentials: basic}
  - {name: bas-basic, address: 192.0.2.12, vendor: basip, credentials: basic}
  - {name: hik, address: 192.0.2.13, vendor: hikvision}
  - {name: hik-basic, address: 192.0.2.14, vendor: hikvision, credentials: basic}
`
	cfg, err := Parse([]byte(y), "c.yaml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		vendor, auth string
		port         int
	}{
		"bas": {"basip", AuthToken, 0}, "two": {"2n", AuthDigest, 0}, "bew": {"beward", AuthBasic, 0},
		"qt": {"qtech", AuthBasic, 0}, "aku": {"akuvox", AuthDigest, 0}, "sok": {"sokol", AuthBasic, 0},
		"rub": {"rubetek", AuthBasic, 0}, "ufa": {"ufanet", AuthBasic, 85}, "ufa2": {"ufanet", AuthBasic, 8085},
		"two-basic": {"2n", AuthBasic, 0}, "aku-basic": {"akuvox", AuthBasic, 0}, "bas-basic": {"basip", AuthBasic, 0},
		"hik": {"hikvision", AuthDigest, 0}, "hik-basic": {"hikvision", AuthBasic, 0},
	}
	for _, d := range cfg.Devices {
		w := want[d.Name]
		if d.Vendor != w.vendor || d.Credential.Auth != w.auth || d.StatusPort != w.port {
			t.Errorf("%s: vendor %s auth %s status_port %d, want %+v", d.Name, d.Vendor, d.Credential.Auth, d.StatusPort, w)
		}
	}
	if cfg.Credentials["default"].Auth != AuthToken {
		t.Errorf("the shared set changed: %s", cfg.Credentials["default"].Auth)
	}
	if cfg.Devices[1].Credential.Secret().Reveal() != "x" {
		t.Error("the per-device copy lost the password")
	}
	cfg, err = Parse([]byte("credentials: {default: {username: a, password: b}}\ndevices: [{name: a, address: h}]\n"), "c.yaml", t.TempDir())
	if err != nil || cfg.Global.Vendor != VendorBASIP || cfg.Devices[0].Vendor != VendorBASIP {
		t.Errorf("default vendor: %v", err)
	}
	for _, v := range Vendors {
		if len(VendorAuths[v]) == 0 {
			t.Errorf("vendor %s has no auth", v)
		}
	}
}

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	head := "credentials:\n  default:\n    username: admin\n    password: " + secretPw + "\ndevices:\n"
	cases := map[string]struct {
		yaml string
		want []string // substrings of the error
	}{
		"unknown key":         {head + "  - name: a\n    address: h\n    adress: x\n", []string{"c.yaml:8:", "adress"}},
		"unknown global key":  {"global:\n  timeot: 1s\n" + head, []string{"c.yaml:2:", "timeot"}},
		"duplicate name":      {head + "  - name: a\n    address: h\n  - name: a\n    address: g\n", []string{"c.yaml:8", `device "a"`, "name", "c.yaml:6"}},
		"missing name":        {head + "  - address: h\n", []string{"c.yaml:6", "device #1", "name"}},
		"missing credentials": {head + "  - name: a\n    address: h\n    credentials: nope\n", []string{"c.yaml:8", `device "a"`, "credentials", `"nope"`}},
		"no default credentials": {"credentials:\n  x:\n    username: a\n    password: b\ndevices:\n  - name: a\n    address: h\n",
			[]string{"c.yaml:6", `device "a"`, `no credentials named "default"`}},
		"bad address":        {head + "  - name: a\n    address: ftp://h\n", []string{"c.yaml:7", `device "a"`, "address", "scheme"}},
		"address with path":  {head + "  - name: a\n    address: http://h/api\n", []string{"address", "path"}},
		"address with query": {head + "  - name: a\n    address: http://h/?password=" + secretPw + "\n", []string{"address", "query"}},
		"address with user":  {head + "  - name: a\n    address: http://admin:" + secretPw + "@h\n", []string{"address"}},
		"bad port":           {head + "  - name: a\n    address: h:99999\n", []string{"address", "port"}},
		"empty address":      {head + "  - name: a\n", []string{"address", "empty"}},
		"bad api version":    {head + "  - name: a\n    address: h\n    api_version: v2\n", []string{"c.yaml:8", "api_version", "v2"}},
		"reserved label":     {head + "  - name: a\n    address: h\n    labels:\n      transport: x\n", []string{"c.yaml:9", "labels", "transport"}},
		"invalid label name": {head + "  - name: a\n    address: h\n    labels:\n      \"a-b\": x\n", []string{"labels", "a-b"}},
		"missing password":   {"credentials:\n  default:\n    username: admin\n", []string{"c.yaml:3", `credentials "default"`, "password"}},
		"both passwords":     {"credentials:\n  default:\n    username: admin\n    password: " + secretPw + "\n    password_file: x\n", []string{"password_file", "not both"}},
		"missing password file": {"credentials:\n  default:\n    username: admin\n    password_file: /nonexistent/pw\n",
			[]string{"c.yaml:4", "password_file", "/nonexistent/pw"}},
		"empty password file":    {"credentials:\n  default:\n    username: admin\n    password_file: " + empty + "\n", []string{"password_file", "empty"}},
		"password file is a dir": {"credentials:\n  default:\n    username: admin\n    password_file: " + dir + "\n", []string{"password_file", "directory"}},
		"bad auth":               {"credentials:\n  default:\n    username: admin\n    password: x\n    auth: ntlm\n", []string{"c.yaml:5", `credentials "default"`, "auth", `"ntlm" is not one of token, basic, digest`}},
		"unknown vendor": {head + "  - name: a\n    address: h\n    vendor: dahua\n",
			[]string{"c.yaml:8", `device "a"`, "field vendor", `"dahua" is not one of basip, 2n, beward, qtech, akuvox, sokol, rubetek, ufanet, hikvision`}},
		"unknown global vendor": {"global:\n  vendor: dahua\n", []string{"c.yaml:2", "global", "field vendor", `"dahua" is not one of basip, 2n`}},
		"token for 2n": {"credentials:\n  default:\n    username: admin\n    password: x\n    auth: token\ndevices:\n  - name: a\n    address: h\n    vendor: 2n\n",
			[]string{"c.yaml:7", `device "a"`, "field credentials", `credentials "default" uses auth token, which vendor 2n does not accept (it takes digest or basic)`}},
		"digest for qtech": {"credentials:\n  d:\n    username: admin\n    password: x\n    auth: digest\ndevices:\n  - name: a\n    address: h\n    vendor: qtech\n    credentials: d\n",
			[]string{"c.yaml:10", `device "a"`, "field credentials", `credentials "d" uses auth digest, which vendor qtech does not accept (it takes basic)`}},
		"digest for basip": {"credentials:\n  default:\n    username: admin\n    password: x\n    auth: digest\ndevices:\n  - name: a\n    address: h\n",
			[]string{`device "a"`, "auth digest, which vendor basip does not accept (it takes token or basic)"}},
		"status_port on sokol": {head + "  - name: a\n    address: h\n    vendor: sokol\n    status_port: 85\n",
			[]string{"c.yaml:9", `device "a"`, "field status_port", "only Ufanet devices have a status port (this one is sokol)"}},
		"status_port on basip":        {head + "  - name: a\n    address: h\n    status_port: 85\n", []string{"c.yaml:8", "field status_port", "this one is basip"}},
		"status_port out of range":    {head + "  - name: a\n    address: h\n    vendor: ufanet\n    status_port: 70000\n", []string{"c.yaml:9", "status_port", "70000 is not a port"}},
		"status_port zero":            {head + "  - name: a\n    address: h\n    vendor: ufanet\n    status_port: 0\n", []string{"c.yaml:9", "status_port", "0 is not a port"}},
		"vendor label":                {head + "  - name: a\n    address: h\n    labels:\n      vendor: x\n", []string{"c.yaml:9", "labels", "vendor"}},
		"bad md5 case":                {"credentials:\n  default:\n    username: admin\n    password: x\n    md5_case: mixed\n", []string{"c.yaml:5", "md5_case", "mixed"}},
		"unknown sip_info label":      {"global:\n  sip_info_labels: [proxy, password]\n", []string{"c.yaml:2", "sip_info_labels", `"password"`}},
		"sip_info label twice":        {"global:\n  sip_info_labels: [proxy, proxy]\n", []string{"c.yaml:2", "sip_info_labels", "twice"}},
		"missing username":            {"credentials:\n  default:\n    password: " + secretPw + "\n", []string{"username"}},
		"negative timeout":            {"global:\n  timeout: -1s\n", []string{"c.yaml:2", "timeout"}},
		"bad duration":                {"global:\n  timeout: soon\n", []string{"c.yaml:2:", "time.Duration"}},
		"bad tls":                     {head + "  - name: a\n    address: h\n    tls_config: {ca_file: /nonexistent/ca.pem}\n", []string{"tls_config", "ca.pem"}},
		"not yaml":                    {"devices: [\n", []string{"c.yaml", "yaml"}},
		"name not UTF-8":              {head + "  - name: !!binary Yf8=\n    address: h\n", []string{"c.yaml:6", "name", "UTF-8"}},
		"empty device entry":          {head + "  -\n", []string{"c.yaml:6", "device #1", "empty"}},
		"empty credentials":           {"credentials:\n  default:\n", []string{"c.yaml", `credentials "default"`}},
		"negative concurrency":        {"global:\n  concurrency: -1\n", []string{"c.yaml:2", "concurrency"}},
		"bad global api version":      {"global:\n  api_version: v9\n", []string{"c.yaml:2", "api_version", "v9"}},
		"reserved label prefix":       {head + "  - name: a\n    address: h\n    labels:\n      __name__: x\n", []string{"c.yaml:9", "labels", "__name__"}},
		"label value not UTF-8":       {head + "  - name: a\n    address: h\n    labels:\n      site: !!binary Yf8=\n", []string{"c.yaml:9", "labels", "UTF-8"}},
		"credentials as a string":     {"credentials:\n  default: " + secretPw + "\n", []string{"c.yaml:2", `credentials "default"`, "cannot unmarshal !!str into"}},
		"short password as the entry": {"credentials:\n  default: pw-12\n", []string{"c.yaml:2", "cannot unmarshal !!str into"}},
		"password as a list":          {"credentials:\n  default:\n    username: admin\n    password: [" + secretPw + "]\n", []string{"c.yaml:4", "cannot unmarshal"}},
		"address as a map":            {head + "  - name: a\n    address: {host: h}\n", []string{"c.yaml:7", `device "a"`, "cannot unmarshal"}},
		// url.Parse refuses these and quotes a piece of them in its own
		// errors ("invalid URL escape \"%Se\"", "invalid port"): none of
		// the address may reach the message.
		"address with a user and an escape": {head + "  - name: a\n    address: http://admin:100%Secure@h\n", []string{"c.yaml:7", `device "a"`, "user information"}},
		"address with a user and a slash":   {head + "  - name: a\n    address: http://admin:pa/ss@h\n", []string{"user information"}},
		"address with a user, no scheme":    {head + "  - name: a\n    address: admin:100%Secure@h:80\n", []string{"user information"}},
		"a value over two lines":            {"global:\n  timeout: \"" + secretPw[:4] + "\\n" + secretPw + "\"\n", []string{"c.yaml:2", "cannot unmarshal !!str into"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), "c.yaml", dir)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, piece := range []string{secretPw, secretPw[:4], "Secure", "%Se", "pa/ss", "admin"} {
				if strings.Contains(err.Error(), piece) {
					t.Errorf("error contains %q, a piece of a password: %q", piece, err)
				}
			}
		})
	}
}

func TestParseAddress(t *testing.T) {
	cases := map[string]string{
		"192.0.2.10":                "http://192.0.2.10:80",
		"192.0.2.10:8080":           "http://192.0.2.10:8080",
		"HTTP://Panel.Example.COM/": "http://panel.example.com:80",
		"https://10.0.0.1":          "https://10.0.0.1:443",
		"https://10.0.0.1:443":      "https://10.0.0.1:443",
		"::1":                       "http://[::1]:80",
		"[::1]:8443":                "http://[::1]:8443",
		"https://[fe80::1]":         "https://[fe80::1]:443",
		"HTTPS://H:0443":            "https://h:443",
	}
	for in, want := range cases {
		u, err := ParseAddress(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if u.String() != want {
			t.Errorf("%q -> %q, want %q", in, u, want)
		}
	}
	for _, bad := range []string{"", "ftp://x", "http://", "http://x/y", "x:0", "x:abc", "http://u:p@x", "http://x#f", "a b"} {
		if u, err := ParseAddress(bad); err == nil {
			t.Errorf("%q accepted as %s", bad, u)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c := Credential{Username: "admin", Password: device.Secret(secretPw)}
	for _, s := range []string{c.Password.String(), c.Password.GoString()} {
		if strings.Contains(s, secretPw) {
			t.Errorf("printed: %s", s)
		}
	}
	y, _ := c.Password.MarshalYAML()
	j, _ := c.Password.MarshalJSON()
	if y != "<secret>" || string(j) != `"<secret>"` {
		t.Errorf("marshalled: %v %s", y, j)
	}
}

func TestEmptyConfigIsValid(t *testing.T) {
	cfg, err := Parse(nil, "c.yaml", ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Devices) != 0 || cfg.Global.Timeout != DefaultTimeout || *cfg.Global.MinPollInterval != DefaultMinPollInterval {
		t.Errorf("%+v", cfg)
	}
}

func TestPolicies(t *testing.T) {
	head := "credentials:\n  default:\n    username: admin\n    password: " + secretPw + "\n"
	y := head + `policies:
  default:
    enabled: true
    transports: [tls]
    registration_interval: {min: 60, max: 300}
    call_timeouts: [120, 300]
    proxy: '^sip:pbx\.example\.com$'
    realm: '^example\.com$'
    stun: required
    ring_code: false
  lobby:
    transports: [tls, tcp]
    firmware: {min: "3.9.2"}
    password_exposed: forbidden
devices:
  - name: a
    address: h1
  - name: b
    address: h2
    policy: lobby
  - name: c
    address: h3
    policy: none
`
	cfg, err := Parse([]byte(y), "c.yaml", ".")
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Devices[0].PolicyRef; p == nil || p.Name != "default" || !p.ProxyRE.MatchString("sip:pbx.example.com") || *p.RegistrationInterval.Max != 300 {
		t.Errorf("device a: policy %+v", p)
	}
	if p := cfg.Devices[1].PolicyRef; p == nil || p.Name != "lobby" || len(p.Transports) != 2 ||
		fmt.Sprint(p.Firmware.MinVersion) != "[3 9 2]" || p.PasswordExposed != PasswordForbidden {
		t.Errorf("device b: policy %+v", p)
	}
	if cfg.Devices[2].PolicyRef != nil {
		t.Errorf("device c: policy none gave %+v", cfg.Devices[2].PolicyRef)
	}
	// Without a policy named default, a device that names none has none.
	cfg, err = Parse([]byte(head+"devices:\n  - name: a\n    address: h\n"), "c.yaml", ".")
	if err != nil || cfg.Devices[0].PolicyRef != nil {
		t.Errorf("no default policy: %v %+v", err, cfg.Devices[0].PolicyRef)
	}

	bad := map[string]struct {
		yaml string
		want []string
	}{
		"bad regexp":      {"policies:\n  lobby:\n    proxy: '^sip:(pbx'\n", []string{"c.yaml:7", `policy "lobby"`, "proxy", "regular expression"}},
		"unknown rule":    {"policies:\n  lobby:\n    transport: [tls]\n", []string{"c.yaml:7", `policy "lobby"`, "transport"}},
		"bad transport":   {"policies:\n  lobby:\n    transports: [sctp]\n", []string{`policy "lobby"`, "transports", "sctp"}},
		"bad stun":        {"policies:\n  lobby:\n    stun: maybe\n", []string{`policy "lobby"`, "stun", "maybe"}},
		"inverted range":  {"policies:\n  lobby:\n    registration_interval: {min: 300, max: 60}\n", []string{`policy "lobby"`, "registration_interval"}},
		"empty range":     {"policies:\n  lobby:\n    registration_interval: {}\n", []string{`policy "lobby"`, "registration_interval"}},
		"policy none":     {"policies:\n  none:\n    stun: required\n", []string{`policy "none"`, "reserved"}},
		"unknown policy":  {"devices:\n  - name: a\n    address: h\n    policy: lobby\n", []string{`device "a"`, "policy", `no policy named "lobby"`}},
		"bad firmware":    {"policies:\n  lobby:\n    firmware: {min: latest}\n", []string{"c.yaml:7", `policy "lobby"`, "firmware", "latest"}},
		"firmware suffix": {"policies:\n  lobby:\n    firmware: {min: 3.9.2-rc1}\n", []string{`policy "lobby"`, "firmware"}},
		"bad exposed":     {"policies:\n  lobby:\n    password_exposed: allowed\n", []string{`policy "lobby"`, "password_exposed", "forbidden"}},
		"unknown dev key": {"devices:\n  - name: a\n    address: h\n    polcy: x\n", []string{"c.yaml:8", `device "a"`, "polcy"}},
	}
	for name, c := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(head+c.yaml), "c.yaml", ".")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestDeviceFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	head := "credentials:\n  default:\n    username: admin\n    password: " + secretPw + "\n"
	write("fleet/a.yaml", "- name: a-1\n  address: 192.0.2.1\n  labels: {site: a}\n- name: a-2\n  address: 192.0.2.2\n")
	write("fleet/b.yaml", "- name: b-1\n  address: 192.0.2.3\n  api_version: v0\n")
	write("fleet/empty.yaml", "")
	cfg, err := Parse([]byte(head+"device_files: ['fleet/*.yaml']\ndevices:\n  - name: main-1\n    address: 192.0.2.9\n"), filepath.Join(dir, "c.yaml"), dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range cfg.Devices {
		names = append(names, d.Name)
	}
	if got := strings.Join(names, ","); got != "main-1,a-1,a-2,b-1" {
		t.Errorf("devices %s", got)
	}
	if cfg.Devices[3].APIVersion != "v0" || cfg.Devices[1].URL.String() != "http://192.0.2.1:80" || strings.Join(cfg.LabelNames, ",") != "site" {
		t.Errorf("device files not validated like devices: %+v", cfg.Devices[3])
	}

	cases := map[string]struct {
		files map[string]string
		want  []string
	}{
		"duplicate across files": {map[string]string{"dup/a.yaml": "- name: x\n  address: h1\n", "dup/b.yaml": "- name: y\n  address: h2\n- name: x\n  address: h3\n"},
			[]string{"dup/b.yaml:3", `device "x"`, "duplicate", "dup/a.yaml:1"}},
		"unknown key": {map[string]string{"dup/a.yaml": "- name: x\n  adress: h1\n"}, []string{"dup/a.yaml:2", `device "x"`, "adress"}},
		"bad address": {map[string]string{"dup/a.yaml": "- name: x\n  address: ftp://h\n"}, []string{"dup/a.yaml:2", `device "x"`, "address"}},
		"not a list":  {map[string]string{"dup/a.yaml": "name: x\n"}, []string{"dup/a.yaml:1", "list of devices"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			os.RemoveAll(filepath.Join(dir, "dup"))
			for f, content := range c.files {
				write(f, content)
			}
			_, err := Parse([]byte(head+"device_files: ['dup/*.yaml']\n"), filepath.Join(dir, "c.yaml"), dir)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
