package kamailiotest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/basip/basip_exporter/collector/internal/kamailiotest"
	"github.com/basip/basip_exporter/collector/simulator/sipua"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartRegisterStopStart(t *testing.T) {
	k := kamailiotest.Start(t, kamailiotest.Options{})
	if !k.Running() || !strings.HasPrefix(k.SIPAddr, "127.0.0.1:") || !strings.HasPrefix(k.RPCURL, "http://127.0.0.1:") || !strings.HasSuffix(k.RPCURL, "/RPC") {
		t.Fatalf("running %v, SIP %s, RPC %s", k.Running(), k.SIPAddr, k.RPCURL)
	}
	if cs := k.Contacts(t); len(cs) != 0 {
		t.Fatalf("contacts of a new registrar: %+v", cs)
	}

	ua, err := sipua.New(sipua.Options{User: "100", Proxy: k.SIPAddr})
	if err != nil {
		t.Fatal(err)
	}
	if err := ua.Start(); err != nil {
		t.Fatal(err)
	}
	defer ua.Stop()
	eventually(t, 5*time.Second, "registered", ua.Registered)
	dump := k.Dump(t)
	if !bytes.Contains(dump, []byte(`"AoR":	"100"`)) || !bytes.Contains(dump, []byte(ua.Contact())) {
		t.Fatalf("ul.dump lacks the contact %s:\n%s", ua.Contact(), dump)
	}
	cs := k.Contacts(t)
	if len(cs) != 1 || cs[0].AoR != "100" || cs[0].Address != ua.Contact() || cs[0].Received != "" || cs[0].Expired() {
		t.Fatalf("contacts %+v", cs)
	}

	sip, rpc := k.SIPAddr, k.RPCURL
	k.Stop()
	if k.Running() {
		t.Fatal("running after Stop")
	}
	c := &http.Client{Timeout: time.Second}
	if resp, err := c.Post(rpc, "application/json", strings.NewReader(`{"jsonrpc":"2.0","method":"ul.dump","id":1}`)); err == nil {
		resp.Body.Close()
		t.Fatal("the RPC URL answers after Stop")
	}
	k.Stop() // a second Stop does nothing

	k.Start()
	if !k.Running() || k.SIPAddr != sip || k.RPCURL != rpc {
		t.Fatalf("after Start: running %v, SIP %s (was %s), RPC %s (was %s)", k.Running(), k.SIPAddr, sip, k.RPCURL, rpc)
	}
	// The registrar keeps nothing across a restart (db_mode 0).
	if cs := k.Contacts(t); len(cs) != 0 {
		t.Fatalf("contacts after the restart: %+v", cs)
	}
	// The UA's next refresh comes later; a new UA registers at once.
	ua2, err := sipua.New(sipua.Options{User: "101", Proxy: k.SIPAddr, LocalIP: "127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ua2.Start(); err != nil {
		t.Fatal(err)
	}
	defer ua2.Stop()
	eventually(t, 5*time.Second, "registered after the restart", ua2.Registered)
	if cs := k.ContactsOf(t, "101"); len(cs) != 1 || !strings.HasPrefix(cs[0].Address, "sip:101@127.0.0.2:") {
		t.Fatalf("contacts of 101: %+v", cs)
	}
	if !strings.Contains(k.Log(), "kamailio") {
		t.Errorf("no log kept:\n%s", k.Log())
	}
}

func TestReceivedAndExpired(t *testing.T) {
	k := kamailiotest.Start(t, kamailiotest.Options{Received: true, TimerInterval: 30 * time.Second})
	ua, err := sipua.New(sipua.Options{User: "200", Proxy: k.SIPAddr, LocalIP: "127.0.0.2", Expires: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := ua.Start(); err != nil {
		t.Fatal(err)
	}
	defer ua.Stop()
	eventually(t, 5*time.Second, "registered", ua.Registered)
	ua.Pause()
	cs := k.Contacts(t)
	if len(cs) != 1 || cs[0].Received != strings.Replace(ua.Contact(), "sip:200@", "sip:", 1) {
		t.Fatalf("contacts %+v, want Received the UA's address (%s)", cs, ua.Contact())
	}
	eventually(t, 4*time.Second, "the contact listed as expired", func() bool {
		cs := k.Contacts(t)
		return len(cs) == 1 && cs[0].Expired()
	})
}

func TestSkipsOrFailsWithoutKamailio(t *testing.T) {
	// A missing binary skips the test, unless required.
	ft := &fakeTB{TB: t}
	t.Setenv(kamailiotest.RequireEnv, "")
	ft.run(func() { kamailiotest.Start(ft, kamailiotest.Options{Binary: "/nonexistent/kamailio"}) })
	if !ft.skipped || ft.failed {
		t.Errorf("without kamailio: skipped %v, failed %v (%s)", ft.skipped, ft.failed, ft.msg)
	}
	ft = &fakeTB{TB: t}
	t.Setenv(kamailiotest.RequireEnv, "1")
	ft.run(func() { kamailiotest.Start(ft, kamailiotest.Options{Binary: "/nonexistent/kamailio"}) })
	if ft.skipped || !ft.failed || !strings.Contains(ft.msg, kamailiotest.RequireEnv) {
		t.Errorf("without kamailio, required: skipped %v, failed %v (%s)", ft.skipped, ft.failed, ft.msg)
	}
}

// fakeTB records a Skip or a Fatal instead of ending the test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

type stop struct{}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, sprintf(format, args...)
	panic(stop{})
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, sprintf(format, args...)
	panic(stop{})
}

func (f *fakeTB) run(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stop); !ok {
				panic(r)
			}
		}
	}()
	fn()
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
