package config

import (
	"fmt"
	"strings"
	"testing"
)

const pbxHead = mistakesHead + "  pbx-a:\n    username: rpc\n    password: " + secretPw + "\n" +
	"devices:\n  - name: lobby-1\n    address: 192.0.2.10\n"

// TestPBXs: a pbxs entry is parsed into the names devices' proxies are
// matched against, and its registrar's credentials are resolved.
func TestPBXs(t *testing.T) {
	cfg, err := Parse([]byte(pbxHead+`pbxs:
  - name: pbx-a
    sip: udp://10.0.0.5
    aliases: [sip:PBX.example.com, "10.0.0.6:5070"]
    registrar:
      type: kamailio
      url: http://10.0.0.5:5071/RPC
      credentials: pbx-a
  - name: pbx-b
    sip: tls://[2001:db8::1]
`), "c.yaml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.PBXs[0], cfg.PBXs[1]
	if got := strings.Join(a.Names, " "); got != "10.0.0.5:5060 pbx.example.com:5060 10.0.0.6:5070" {
		t.Errorf("pbx-a names %q", got)
	}
	if a.Transport != "udp" || a.Host != "10.0.0.5" || a.Port != 5060 {
		t.Errorf("pbx-a sip parsed as %s %s %d", a.Transport, a.Host, a.Port)
	}
	if a.Registrar.Credential == nil || a.Registrar.Credential.Secret().Reveal() != secretPw || a.Registrar.URL != "http://10.0.0.5:5071/RPC" {
		t.Errorf("pbx-a registrar %+v", a.Registrar)
	}
	if b.Transport != "tls" || b.Port != 5061 || b.Names[0] != "[2001:db8::1]:5061" {
		t.Errorf("pbx-b %s %d %v", b.Transport, b.Port, b.Names)
	}
	for proxy, want := range map[string]string{
		"sip:pbx.example.com": "pbx.example.com:5060", "sip:10.0.0.6:5070": "10.0.0.6:5070",
		"sips:[2001:db8::1]": "[2001:db8::1]:5061", "sip:": "", "": "",
	} {
		if got := ProxyName(proxy); got != want {
			t.Errorf("ProxyName(%q) = %q, want %q", proxy, got, want)
		}
	}
}

// TestPBXMistakes: every mistake in a pbxs entry is reported at once,
// with its line, and none quotes a password written into a URL.
func TestPBXMistakes(t *testing.T) {
	_, err := Parse([]byte(pbxHead+`pbxs:
  - name: pbx-a
    sip: ws://10.0.0.5
  - name: pbx-a
    sip: udp://10.0.0.7
    registrar:
      type: freeswitch
      url: http://rpc:`+secretPw+`@10.0.0.7/RPC
      credentials: nope
  - sip: udp://10.0.0.7:5060
  - name: pbx-c
    sip: udp://10.0.0.8/x
    registrar: {type: asterisk, url: "http://10.0.0.8:8088/rawman?secret=x"}
`), "c.yaml", t.TempDir())
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		`c.yaml:13: pbx "pbx-a": field sip: transport "ws" is not udp, tcp or tls`,
		`c.yaml:14: pbx "pbx-a": field name: duplicate pbx name (first defined at line 12)`,
		`c.yaml:17: pbx "pbx-a": field registrar.type: "freeswitch" is not one of kamailio, asterisk`,
		`c.yaml:18: pbx "pbx-a": field registrar.url: address must not contain user information`,
		`c.yaml:19: pbx "pbx-a": field registrar.credentials: no credentials set "nope"`,
		`c.yaml:20: pbx #3: field name: missing`,
		`pbx #3: field sip: 10.0.0.7:5060 is also an address of pbx "pbx-a"`,
		`c.yaml:22: pbx "pbx-c": field sip: "udp://10.0.0.8/x" has a path or query`,
		`pbx "pbx-c": field registrar.url: must not contain a query`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, secretPw) {
		t.Errorf("the error quotes the password:\n%s", msg)
	}
}

// TestSIPSource: a device's sip_source takes addresses and prefixes; left
// out, the device's IP address is its source; a host name gives none; a
// wrong one is an error with its line.
func TestSIPSource(t *testing.T) {
	cfg, err := Parse([]byte(mistakesHead+`devices:
  - {name: a, address: 192.0.2.10}
  - {name: b, address: 192.0.2.11, sip_source: [203.0.113.7, "198.51.100.0/24", "::ffff:198.51.100.9"]}
  - {name: c, address: door.example.com}
`), "c.yaml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got := func(i int) string { return fmt.Sprint(cfg.Devices[i].SIPSources) }
	if got(0) != "[192.0.2.10/32]" || got(1) != "[203.0.113.7/32 198.51.100.0/24 198.51.100.9/32]" || got(2) != "[]" {
		t.Errorf("sources %s %s %s", got(0), got(1), got(2))
	}
	_, err = Parse([]byte(mistakesHead+"devices:\n  - name: a\n    address: 192.0.2.10\n    sip_source: [nat.example.com]\n"), "c.yaml", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `c.yaml:8: device "a": field sip_source: "nat.example.com" is not an IP address or a CIDR prefix`) {
		t.Errorf("got %v", err)
	}
}
