package vendors

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/device"
)

// allocated is the heap bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestKeyValuesBoundedBeforeAllocation: a key=value answer of 1 MiB
// (the body limit) costs a few KiB whatever its lines: the line limit
// applies while walking, and only the keys asked for are kept.
func TestKeyValuesBoundedBeforeAllocation(t *testing.T) {
	bodies := map[string][]byte{
		"newlines":         bytes.Repeat([]byte("\n"), 1<<20),
		"a key, newlines":  append([]byte("AccountReg1=1"), bytes.Repeat([]byte("\n"), 1<<20-13)...),
		"other keys":       bytes.Repeat([]byte("Other=value\n"), (1<<20)/12),
		"one long line":    append([]byte("AccountReg1="), bytes.Repeat([]byte("x"), 1<<20-12)...),
		"lines without =":  bytes.Repeat([]byte("<p>banner</p>\n"), (1<<20)/14),
		"a known key, 10k": []byte(strings.Repeat("AccountReg1=1\n", 10000)),
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			var err error
			n := allocated(func() { _, err = parseKeyValues(body, "AccountReg1", "AccountReg2") })
			limit := uint64(16 << 10)
			if name == "one long line" {
				limit += uint64(len(body)) // the value itself is kept (the boundary cuts it)
			}
			if n > limit {
				t.Errorf("%d bytes allocated for a %d-byte answer (err %v)", n, len(body), err)
			}
		})
	}
	if _, err := parseKeyValues(bodies["newlines"], "AccountReg1"); err == nil || !strings.Contains(err.Error(), "more than 10000 lines") {
		t.Errorf("1 MiB of newlines: %v", err)
	}
}

// TestKeyValueLines: lines that are not key=value are skipped; an answer
// with none of the keys is not the device's.
func TestKeyValueLines(t *testing.T) {
	kv, err := parseKeyValues([]byte("Beward DKS\r\n[sip]\r\nAccountReg1 = 1\r\n\r\nAccountReg1=0\nnoise"), "AccountReg1", "AccountReg2")
	if err != nil || kv["AccountReg1"] != "1" || len(kv) != 1 {
		t.Errorf("%v %v", kv, err)
	}
	for _, body := range []string{"<html><body>Login</body></html>", "", "Other=1\n", "AccountReg1=1\x00"} {
		if _, err := parseKeyValues([]byte(body), "AccountReg1"); err == nil {
			t.Errorf("%q accepted", body)
		}
	}
}

// TestNormalizeProxy: BAS-IP's sip:host and the others' host:5060 are
// one proxy.
func TestNormalizeProxy(t *testing.T) {
	for in, want := range map[string]string{
		"sip:pbx.example.net":             "sip:pbx.example.net",
		"pbx.example.net:5060":            "sip:pbx.example.net",
		"sip:PBX.Example.net:5060":        "sip:pbx.example.net",
		"pbx.example.net":                 "sip:pbx.example.net",
		"sip:pbx.example.net:5080":        "sip:pbx.example.net:5080",
		"sips:pbx.example.net:5061":       "sips:pbx.example.net",
		"sip:1001@pbx.example.net;lr":     "sip:pbx.example.net",
		"[2001:db8::1]:5060":              "sip:[2001:db8::1]",
		"2001:db8::1":                     "sip:[2001:db8::1]",
		"10.0.0.5:5070":                   "sip:10.0.0.5:5070",
		"":                                "",
		" ":                               "",
		"pbx:x":                           "pbx:x",
		"pbx\x1b]0;pwned\x07\x1b[2J:5060": `pbx\x1b]0;pwned\a\x1b[2J:5060`,
	} {
		if got := NormalizeProxy(in); got != want {
			t.Errorf("NormalizeProxy(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFinishStatus: the device's state follows from its enabled accounts;
// the boundary refuses what a device cannot have.
func TestFinishStatus(t *testing.T) {
	acc := func(n int, state string) device.AccountStatus { return device.AccountStatus{Account: n, State: state} }
	cases := map[string]struct {
		accounts []device.AccountStatus
		want     string
		kept     int
		err      string
	}{
		"all registered":      {[]device.AccountStatus{acc(1, "OK"), acc(2, "OK")}, device.StatusOK, 2, ""},
		"one not":             {[]device.AccountStatus{acc(2, "OK"), acc(1, "ERROR")}, device.StatusError, 2, ""},
		"disabled dropped":    {[]device.AccountStatus{acc(1, "OFFLINE"), acc(2, "OK")}, device.StatusOK, 1, ""},
		"none enabled":        {[]device.AccountStatus{acc(1, "OFFLINE")}, device.StatusOffline, 0, ""},
		"unknown is error":    {[]device.AccountStatus{acc(1, "registering")}, device.StatusError, 1, ""},
		"too many":            {[]device.AccountStatus{acc(1, "OK"), acc(2, "OK"), acc(3, "OK")}, "", 0, "3 accounts listed, at most 2"},
		"twice":               {[]device.AccountStatus{acc(1, "OK"), acc(1, "OFFLINE")}, "", 0, "account 1 listed twice"},
		"number out of range": {[]device.AccountStatus{acc(0, "OK")}, "", 0, "account number 0 out of 1..2"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			st := &device.SIPStatus{Accounts: c.accounts}
			err := finishStatus(st, Spec{MaxAccounts: 2}, false)
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("err %v, want %s", err, c.err)
				}
				return
			}
			if err != nil || *st.Status != c.want || len(st.Accounts) != c.kept {
				t.Fatalf("%v %s %+v", err, *st.Status, st.Accounts)
			}
			for i, a := range st.Accounts {
				if a.Registered != (a.State == device.StatusOK) || (i > 0 && st.Accounts[i-1].Account >= a.Account) {
					t.Errorf("accounts %+v", st.Accounts)
				}
			}
		})
	}
	st := &device.SIPStatus{Status: ptr("ERROR")}
	if err := finishStatus(st, Spec{MaxAccounts: 1}, true); err != nil || *st.Status != device.StatusOffline {
		t.Errorf("settings say disabled: %s", *st.Status)
	}
	st = &device.SIPStatus{Status: ptr("Registering\x1b[2J")}
	if err := finishStatus(st, Spec{MaxAccounts: 1}, false); err != nil || *st.Status != device.StatusError || st.Raw != `Registering\x1b[2J` {
		t.Errorf("unknown state: %s %q", *st.Status, st.Raw)
	}
}
