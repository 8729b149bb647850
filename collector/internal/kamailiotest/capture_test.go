package kamailiotest_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/internal/kamailiotest"
	"github.com/basip/basip_exporter/collector/simulator/sipua"
)

// CaptureEnv names the environment variable that, set to "1", makes
// TestULDumpCaptures write Kamailio's answers into captureDir instead of
// comparing them with the files there.
const CaptureEnv = "BASIP_KAMAILIO_CAPTURE"

// captureDir holds the ul.dump answers the PBX client's parser is tested
// on.
var captureDir = filepath.Join("..", "..", "pbx", "testdata", "kamailio")

// capture is one registrar state and the file holding its ul.dump answer.
type capture struct {
	file string
	opts kamailiotest.Options
	// setup registers the contacts and returns when ul.dump shows them.
	setup func(t *testing.T, k *kamailiotest.Server)
}

var captures = []capture{
	{file: "empty.json", setup: func(*testing.T, *kamailiotest.Server) {}},
	{file: "one-contact.json", setup: func(t *testing.T, k *kamailiotest.Server) {
		register(t, k, sipua.Options{User: "100"})
	}},
	{file: "use-domain.json", opts: kamailiotest.Options{UseDomain: true}, setup: func(t *testing.T, k *kamailiotest.Server) {
		register(t, k, sipua.Options{User: "100", Domain: "example.com"})
		register(t, k, sipua.Options{User: "101", LocalIP: "127.0.0.2"}) // the domain: the proxy's IP
	}},
	{file: "two-contacts.json", setup: func(t *testing.T, k *kamailiotest.Server) {
		register(t, k, sipua.Options{User: "100"})
		register(t, k, sipua.Options{User: "100", LocalIP: "127.0.0.2"})
	}},
	{file: "several-aors.json", setup: func(t *testing.T, k *kamailiotest.Server) {
		register(t, k, sipua.Options{User: "100"})
		register(t, k, sipua.Options{User: "101", LocalIP: "127.0.0.2"})
		register(t, k, sipua.Options{User: "102", LocalIP: "127.0.0.3"})
		register(t, k, sipua.Options{User: "102", LocalIP: "127.0.0.4"})
		register(t, k, sipua.Options{User: "2001", LocalIP: "127.0.0.5"})
	}},
	{file: "received.json", opts: kamailiotest.Options{Received: true}, setup: func(t *testing.T, k *kamailiotest.Server) {
		// A device behind NAT: its Contact names its private address, the
		// registrar records where the REGISTER came from.
		rawRegister(t, k.SIPAddr, "127.0.0.2", "100", "192.0.2.10:5060")
		register(t, k, sipua.Options{User: "101", LocalIP: "127.0.0.3"})
	}},
	{file: "permanent.json", setup: func(t *testing.T, k *kamailiotest.Server) {
		// A static contact (expires 0), as an operator adds one over RPC.
		k.RPC(t, "ul.add", "location", "999", "sip:999@127.0.0.9:5060", 0, 1.0, "", 0, 0, 4294967295)
		register(t, k, sipua.Options{User: "100"})
	}},
	{file: "expired.json", setup: func(t *testing.T, k *kamailiotest.Server) {
		ua := register(t, k, sipua.Options{User: "100", Expires: time.Second})
		ua.Pause()
		register(t, k, sipua.Options{User: "101", LocalIP: "127.0.0.2"})
		eventually(t, 4*time.Second, "the contact listed as expired", func() bool {
			cs := k.ContactsOf(t, "100")
			return len(cs) == 1 && cs[0].Expired()
		})
	}},
}

// TestULDumpCaptures builds each captured registrar state on a real
// Kamailio and checks that its ul.dump answer has the shape (every field
// and its JSON type) and the AoRs of the captured file, so that the files
// stay what this Kamailio answers. With BASIP_KAMAILIO_CAPTURE=1 it writes
// the files instead.
func TestULDumpCaptures(t *testing.T) {
	write := os.Getenv(CaptureEnv) == "1"
	for _, c := range captures {
		t.Run(strings.TrimSuffix(c.file, ".json"), func(t *testing.T) {
			k := kamailiotest.Start(t, c.opts)
			c.setup(t, k)
			live := k.Dump(t)
			path := filepath.Join(captureDir, c.file)
			if write {
				if err := os.WriteFile(path, live, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			file, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (%s=1 writes it)", err, CaptureEnv)
			}
			liveShape, fileShape := shapeOf(t, live), shapeOf(t, file)
			if !slices.Equal(liveShape, fileShape) {
				t.Errorf("ul.dump's shape differs from %s:\nlive: %v\nfile: %v", path, liveShape, fileShape)
			}
			if l, f := aorsOf(t, live), aorsOf(t, file); !slices.Equal(l, f) {
				t.Errorf("AoRs and contact hosts differ from %s:\nlive: %v\nfile: %v", path, l, f)
			}
		})
	}
}

// register starts a UA registering at k until the test ends and waits
// until it is registered.
func register(t *testing.T, k *kamailiotest.Server, o sipua.Options) *sipua.UA {
	t.Helper()
	o.Proxy = k.SIPAddr
	ua, err := sipua.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := ua.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ua.Stop)
	eventually(t, 5*time.Second, "registered", ua.Registered)
	return ua
}

// rawRegister sends one REGISTER for user from localIP whose Contact names
// contactHost, and wants a 200.
func rawRegister(t *testing.T, proxy, localIP, user, contactHost string) {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(localIP)}, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	host, _, _ := net.SplitHostPort(proxy)
	id := fmt.Sprintf("%d", time.Now().UnixNano())
	msg := "REGISTER sip:" + host + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=z9hG4bK" + id + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:" + user + "@" + host + ">;tag=" + id + "\r\n" +
		"To: <sip:" + user + "@" + host + ">\r\n" +
		"Call-ID: " + id + "@" + localIP + "\r\n" +
		"CSeq: 1 REGISTER\r\n" +
		"Contact: <sip:" + user + "@" + contactHost + ">\r\n" +
		"Expires: 60\r\n" +
		"User-Agent: basip-simulator\r\n" +
		"Content-Length: 0\r\n\r\n"
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200 ") {
		t.Fatalf("REGISTER answered %q", buf[:n])
	}
}

// shapeOf lists every path of a JSON document with the JSON type there,
// arrays' elements under "[]", sorted and without repeats.
func shapeOf(t *testing.T, b []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	set := map[string]bool{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			set[path+": object"] = true
			for k, e := range v {
				walk(path+"."+k, e)
			}
		case []any:
			set[path+": array"] = true
			for _, e := range v {
				walk(path+"[]", e)
			}
		case string:
			set[path+": string"] = true
		case float64:
			set[path+": number"] = true
		case bool:
			set[path+": bool"] = true
		case nil:
			set[path+": null"] = true
		}
	}
	walk("", v)
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// aorsOf lists "AoR contact-host" for every contact, sorted: the ports
// change from run to run, the rest does not.
func aorsOf(t *testing.T, b []byte) []string {
	t.Helper()
	var d struct {
		Result struct {
			Domains []struct {
				Domain struct {
					AoRs []struct {
						Info struct {
							AoR      string
							Contacts []struct{ Contact struct{ Address string } }
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, dom := range d.Result.Domains {
		for _, a := range dom.Domain.AoRs {
			for _, c := range a.Info.Contacts {
				host, _, _ := strings.Cut(strings.TrimPrefix(c.Contact.Address, "sip:"+strings.Split(a.Info.AoR, "@")[0]+"@"), ":")
				out = append(out, a.Info.AoR+" "+host)
			}
		}
	}
	slices.Sort(out)
	return out
}
