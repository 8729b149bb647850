package pbx

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// The tests against a real Kamailio: Debian's package (5.6.3 here), run by
// the test on loopback ports of its choosing, with a configuration of the
// test's own. Without /usr/sbin/kamailio they skip, unless
// BASIP_REQUIRE_KAMAILIO=1 makes that a failure.

const kamailioBinary = "/usr/sbin/kamailio"

// kamailioConfig is Kamailio's configuration: usrloc in memory, registrar
// with the address each REGISTER came from kept as Received
// (fix_nated_register), OPTIONS answered 200 Keepalive, and jsonrpcs over
// xhttp. Everything listens on 127.0.0.1 only.
const kamailioConfig = `#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:127.0.0.1:%[1]d
listen=tcp:127.0.0.1:%[1]d
listen=tcp:127.0.0.1:%[2]d
tcp_accept_no_cl=yes
http_reply_parse=yes
mpath="%[3]s/"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xhttp.so"
loadmodule "jsonrpcs.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "nathelper.so"
modparam("nathelper", "received_avp", "$avp(RECEIVED)")
modparam("registrar", "received_avp", "$avp(RECEIVED)")
modparam("jsonrpcs", "transport", 1)
modparam("usrloc", "db_mode", 0)
request_route {
	if (method=="REGISTER") { fix_nated_register(); save("location"); exit; }
	if (method=="OPTIONS") { sl_send_reply("200", "Keepalive"); exit; }
	sl_send_reply("404", "Not here");
}
event_route[xhttp:request] {
	jsonrpc_dispatch();
}
`

type realKamailio struct {
	sipPort int
	rpcURL  string
}

// startKamailio starts a Kamailio for t and stops it when t ends.
func startKamailio(t *testing.T) *realKamailio {
	t.Helper()
	require := os.Getenv("BASIP_REQUIRE_KAMAILIO") == "1"
	absent := func(what string) {
		t.Helper()
		msg := what + ": Debian's kamailio package is not installed; this test runs against it (BASIP_REQUIRE_KAMAILIO=1 makes its absence a failure)"
		if require {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := os.Stat(kamailioBinary); err != nil {
		absent(kamailioBinary + " is absent")
	}
	mods, _ := filepath.Glob("/usr/lib/*/kamailio/modules/usrloc.so")
	if len(mods) == 0 {
		absent("Kamailio's modules (usrloc.so) are absent")
	}
	var err error
	for range 3 { // a port taken meanwhile by another program: again, on others
		var k *realKamailio
		if k, err = tryKamailio(t, filepath.Dir(mods[0])); err == nil {
			return k
		}
	}
	t.Fatalf("Kamailio did not start: %v", err)
	return nil
}

// freePort is a port of 127.0.0.1 free for TCP, and for UDP when udp.
func freePort(t *testing.T, udp bool) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !udp {
			l.Close()
			return port
		}
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		l.Close()
		if err == nil {
			c.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// lockedBuffer keeps the last of Kamailio's log.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		b.buf.Reset()
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

func tryKamailio(t *testing.T, modules string) (*realKamailio, error) {
	dir := t.TempDir()
	sipPort, httpPort := freePort(t, true), freePort(t, false)
	cfg := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, kamailioConfig, sipPort, httpPort, modules), 0o600); err != nil {
		t.Fatal(err)
	}
	log := &lockedBuffer{}
	cmd := exec.Command(kamailioBinary, "-f", cfg, "-DD", "-E", "-Y", dir, "-m", "16", "-M", "4")
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group: it forks its workers, and the group is
	// stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	k := &realKamailio{sipPort: sipPort, rpcURL: fmt.Sprintf("http://127.0.0.1:%d/RPC", httpPort)}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			stop()
			return nil, fmt.Errorf("it exited:\n%s", log.tail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := NewKamailio(k.rpcURL, "", "", nil).Contacts(ctx)
		cancel()
		if err == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("Kamailio's log:\n%s", log.tail())
				}
			})
			return k, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return nil, fmt.Errorf("no answer on %s within 10 s:\n%s", k.rpcURL, log.tail())
}

// register sends a REGISTER of user with contact to k, over UDP from
// 127.0.0.1, with sipgo's client.
func (k *realKamailio) register(t *testing.T, user, contact string) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("basip-test"),
		sipgo.WithUserAgentHostname("127.0.0.1"),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Its Close logs "UDP ref went negative on try close" through
	// slog.Default: sipgo v1.7.3 releases the socket of a finished
	// transaction twice. Harmless here; the prober has no such socket.
	defer ua.Close()
	// A local address with port 0: sipgo binds its socket to 127.0.0.1
	// instead of 0.0.0.0.
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(quiet), sipgo.WithClientConnectionAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: k.sipPort})
	aor := sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1"}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	req.AppendHeader(sip.NewHeader("Contact", "<"+contact+">"))
	req.AppendHeader(sip.NewHeader("Expires", "300"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := client.Do(ctx, req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER: %v %v", res, err)
	}
}

// TestRealKamailioRegistrar: contacts registered with sipgo from
// 127.0.0.1 are read back through NewKamailio, with the address the
// REGISTER came from as Source whatever the contact says.
func TestRealKamailioRegistrar(t *testing.T) {
	k := startKamailio(t)
	k.register(t, "1001", "sip:1001@192.0.2.10:5060") // an address behind NAT, as a device would say
	k.register(t, "1002", "sip:1002@intercom.example.com:5060")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := NewKamailio(k.rpcURL, "", "", nil).Contacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byUser := map[string]Contact{}
	for _, c := range got {
		byUser[c.User] = c
	}
	for _, want := range []Contact{{User: "1001", Source: "127.0.0.1"}, {User: "1002", Source: "127.0.0.1"}} {
		if c, ok := byUser[want.User]; !ok || c != want {
			t.Errorf("contact of %s: %+v, want %+v (all: %+v)", want.User, c, want, got)
		}
	}
	if len(got) != 2 {
		t.Errorf("%d contacts, want 2: %+v", len(got), got)
	}
}

// TestRealKamailioOptions: Kamailio answers the prober's OPTIONS over UDP
// and TCP; its unknown JSON-RPC method is an error naming it.
func TestRealKamailioOptions(t *testing.T) {
	k := startKamailio(t)
	p := newProber(t)
	for _, transport := range []string{"udp", "tcp"} {
		a, _, err := options(p, Target{Transport: transport, Host: "127.0.0.1", Port: k.sipPort}, 5*time.Second)
		if err != nil || a.Code != 200 || a.Reason != "Keepalive" {
			t.Errorf("%s: %+v, %v; want 200 Keepalive", transport, a, err)
		}
		t.Logf("%s: %+v", transport, a)
	}
	// The same endpoint asked for a method it lacks.
	req, _ := http.NewRequest(http.MethodPost, k.rpcURL, strings.NewReader(`{"jsonrpc":"2.0","method":"ul.nosuch","id":1}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if text := rpcErrorText(resp.Body, nil); resp.StatusCode != 500 || text != "JSON-RPC error 500: Method Not Found" {
		t.Errorf("HTTP %d %q", resp.StatusCode, text)
	}
}
