package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/basip"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
)

func settings(t *testing.T, js string) *device.SIPSettings {
	t.Helper()
	s, err := basip.DecodeSIPSettings([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func loadPolicy(t *testing.T, rules string) *config.Policy {
	t.Helper()
	y := "credentials:\n  default: {username: a, password: b}\npolicies:\n  p:\n" + rules
	cfg, err := config.Parse([]byte(y), "p.yaml", ".")
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Policies["p"]
}

func format(rs Results, names []string) string {
	var parts []string
	rs.Each(names, func(name string, violated bool) {
		parts = append(parts, fmt.Sprintf("%s=%v", name, violated))
	})
	return strings.Join(parts, " ")
}

const fullPolicy = `    enabled: true
    transports: [tls]
    registration_interval: {min: 60, max: 300}
    call_timeouts: [120, 300]
    proxy: '^sip:pbx\.example\.com$'
    realm: '^example\.com$'
    stun: required
    ring_code: false
`

func TestEvaluate(t *testing.T) {
	p := loadPolicy(t, fullPolicy)
	cases := map[string]struct {
		settings string
		want     string
	}{
		"compliant monitor": {`{"enable":true,"transport":"tls","registration_interval":60,"timeout":300,"proxy":"sip:pbx.example.com","realm":"example.com","stun":{"ip":"stun.example.com","port":3478},"is_enable_ring_code":false}`,
			"enabled=false transports=false registration_interval=false call_timeouts=false proxy=false realm=false stun=false ring_code=false"},
		"everything wrong": {`{"enable":false,"transport":"udp","registration_interval":900,"timeout":600,"proxy":"sip:evil.example.com","realm":"example.org","stun":{"ip":"","port":3478},"is_enable_ring_code":true}`,
			"enabled=true transports=true registration_interval=true call_timeouts=true proxy=true realm=true stun=true ring_code=true"},
		"panel sends a subset": {`{"transport":"TLS","registration_interval":301,"proxy":"sip:pbx.example.com"}`,
			"transports=false registration_interval=true proxy=false"},
		"interval below min":  {`{"registration_interval":59}`, "registration_interval=true"},
		"nothing sent":        {`{}`, ""},
		"proxy is anchored":   {`{"proxy":"sip:pbx.example.com.evil"}`, "proxy=true"},
		"no stun object sent": {`{"enable":true}`, "enabled=false"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got := Evaluate(p, settings(t, c.settings), nil)
			if format(got, Rules[:]) != c.want {
				t.Errorf("got  %s\nwant %s", format(got, Rules[:]), c.want)
			}
			if got.Compliant() != !strings.Contains(c.want, "=true") {
				t.Errorf("Compliant = %v", got.Compliant())
			}
		})
	}
	// Only the rules a policy sets are checked.
	only := loadPolicy(t, "    transports: [tls, tcp]\n    stun: forbidden\n")
	if got := format(Evaluate(only, settings(t, `{"enable":false,"transport":"tcp","stun":{"ip":"s","port":1}}`), nil), Rules[:]); got != "transports=false stun=true" {
		t.Errorf("partial policy: %s", got)
	}
}

func TestSchema(t *testing.T) {
	cases := map[string]struct {
		settings string
		want     string
	}{
		"seed example": {`{"enable":true,"proxy":"sip:sip.bas-ip.com","realm":"sip.bas-ip.com","user":"101","password":"123abc","transport":"udp","user_id":"user123","is_enable_ring_code":true,"timeout":120,"registration_interval":30}`,
			"registration_interval=false timeout=false transport=false user=false user_id=false password=false"},
		"out of range": {`{"registration_interval":29,"timeout":90,"transport":"wss","user":"","user_id":"` + strings.Repeat("x", 32) + `","password":"12345"}`,
			"registration_interval=true timeout=true transport=true user=true user_id=true password=true"},
		"upper limit":       {`{"registration_interval":900,"timeout":1800}`, "registration_interval=false timeout=false"},
		"above upper limit": {`{"registration_interval":901}`, "registration_interval=true"},
		"masked password":   {`{"password":"WebPass"}`, ""},
		"charset":           {`{"user":"flat:101","user_id":"a b~!"}`, "user=true user_id=false"},
		"unicode user":      {`{"user":"квартира"}`, "user=true"},
		"transport case":    {`{"transport":"UDP"}`, "transport=true"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := format(Schema(settings(t, c.settings)), Fields[:]); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestWeakPassword(t *testing.T) {
	cases := map[string]struct {
		settings string
		weak, ok bool
	}{
		"vendor example":    {`{"password":"123abc"}`, true, true},
		"factory default":   {`{"password":"123456"}`, true, true},
		"short":             {`{"password":"Xy7#pq1"}`, true, true},
		"equals the user":   {`{"user":"flat-101-a","password":"flat-101-a"}`, true, true},
		"known, other case": {`{"password":"PASSWORD"}`, true, true},
		"strong":            {`{"user":"101","password":"k8#Vq2!mZr"}`, false, true},
		"masked":            {`{"password":"WebPass"}`, false, false},
		"empty":             {`{"password":""}`, false, false},
		"asterisks":         {`{"password":"********"}`, false, false},
		"not sent":          {`{"user":"101"}`, false, false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			weak, ok := WeakPassword(settings(t, c.settings))
			if weak != c.weak || ok != c.ok {
				t.Errorf("WeakPassword = %v, %v; want %v, %v", weak, ok, c.weak, c.ok)
			}
		})
	}
}

func TestFirmwareAndPasswordExposedRules(t *testing.T) {
	p := loadPolicy(t, "    firmware: {min: \"3.9.2\"}\n    password_exposed: forbidden\n")
	masked := `{"password":"WebPass"}`
	cases := map[string]struct {
		settings string
		firmware string // "-" for no info at all
		want     string
	}{
		"old firmware, password in clear": {`{"password":"sip-secret-1"}`, "3.8.0", "firmware=true password_exposed=true"},
		"fixed firmware, masked":          {masked, "3.9.2", "firmware=false password_exposed=false"},
		"newer minor":                     {masked, "3.10.0", "firmware=false password_exposed=false"},
		"suffix ignored":                  {masked, "3.9.1-rc2", "firmware=true password_exposed=false"},
		"fewer parts":                     {masked, "3.9", "firmware=true password_exposed=false"},
		"info not read":                   {masked, "-", "password_exposed=false"},
		"firmware not sent":               {masked, "", "password_exposed=false"},
		"firmware not a version":          {masked, "unknown", "password_exposed=false"},
		"empty password is a mask":        {`{"password":""}`, "4.0", "firmware=false password_exposed=false"},
		"asterisks are a mask":            {`{"password":"*****"}`, "4.0", "firmware=false password_exposed=false"},
		"no password field":               {`{}`, "4.0", "firmware=false password_exposed=false"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var info *device.Info
			if c.firmware != "-" {
				info = &device.Info{Firmware: device.FlexString(c.firmware)}
			}
			if got := format(Evaluate(p, settings(t, c.settings), info), Rules[:]); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestRuleAndFieldNames(t *testing.T) {
	seen := map[string]bool{}
	for r, name := range Rules {
		if name == "" || seen[name] {
			t.Errorf("rule %d: name %q empty or repeated", r, name)
		}
		seen[name] = true
		if Rule(r).String() != name {
			t.Errorf("Rule(%d).String() = %q", r, Rule(r).String())
		}
	}
	for f, name := range Fields {
		if name == "" {
			t.Errorf("field %d has no name", f)
		}
	}
}
