package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// DemoPBX is the demo's PBX: a SIP responder that answers OPTIONS with 200,
// and a registrar view that answers Kamailio's JSON-RPC ul.dump with the
// contacts it is given, in the shape Kamailio 5.6 prints. It is for --demo
// only; the tests read a real Kamailio.
type DemoPBX struct {
	// SIPAddr is where it answers SIP over UDP; RPCURL its registrar.
	SIPAddr, RPCURL string

	mu       sync.Mutex
	contacts []DemoContact
	ua       *sipgo.UserAgent
	srv      *sipgo.Server
	udp      net.PacketConn
	http     *http.Server
	cancel   context.CancelFunc
}

// DemoContact is one registration the demo registrar holds.
type DemoContact struct {
	User   string // the address of record (no domain)
	Source string // host:port it registered from
}

// StartDemoPBX starts a DemoPBX answering SIP on UDP at addr and its
// registrar over HTTP on TCP at the same address.
func StartDemoPBX(addr string, contacts []DemoContact) (*DemoPBX, error) {
	udp, tcp, err := listenBoth(addr)
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("basip-demo-pbx"))
	if err != nil {
		udp.Close()
		tcp.Close()
		return nil, err
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		ua.Close()
		udp.Close()
		tcp.Close()
		return nil, err
	}
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	p := &DemoPBX{SIPAddr: udp.LocalAddr().String(), RPCURL: "http://" + tcp.Addr().String() + "/RPC",
		contacts: contacts, ua: ua, srv: srv, udp: udp}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { _ = srv.ServeUDP(udp) }()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /RPC", p.serveRPC)
	p.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() { _ = p.http.Serve(tcp) }()
	return p, nil
}

// SetContacts replaces the contacts the registrar holds.
func (p *DemoPBX) SetContacts(c []DemoContact) {
	p.mu.Lock()
	p.contacts = c
	p.mu.Unlock()
}

func (p *DemoPBX) serveRPC(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Method string `json:"method"`
		ID     any    `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil || req.Method != "ul.dump" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "error": map[string]any{"code": -32601, "message": "Method Not Found"}, "id": req.ID})
		return
	}
	p.mu.Lock()
	contacts := append([]DemoContact(nil), p.contacts...)
	p.mu.Unlock()
	byUser := map[string][]any{}
	var order []string
	for i, c := range contacts {
		if _, ok := byUser[c.User]; !ok {
			order = append(order, c.User)
		}
		byUser[c.User] = append(byUser[c.User], map[string]any{"Contact": map[string]any{
			"Address": "sip:" + c.User + "@" + c.Source, "Expires": 3600, "Q": -1,
			"Call-ID": "demo-" + c.User, "CSeq": 1 + i, "User-Agent": "demo", "Received": "[not set]",
			"Path": "[not set]", "State": "CS_NEW", "Flags": 0, "CFlags": 0, "Socket": "udp:" + p.SIPAddr,
			"Methods": -1, "Ruid": "demo-ruid", "Instance": "[not set]", "Reg-Id": 0,
			"Server-Id": 0, "Tcpconn-Id": -1, "Keepalive": 0, "Last-Keepalive": 0, "KA-Roundtrip": 0,
			"Last-Modified": time.Now().Unix(),
		}})
	}
	aors := make([]any, 0, len(order))
	for _, u := range order {
		aors = append(aors, map[string]any{"Info": map[string]any{"AoR": u, "HashID": 0, "Contacts": byUser[u]}})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": map[string]any{
		"Domains": []any{map[string]any{"Domain": map[string]any{"Domain": "location", "Size": 1024, "AoRs": aors,
			"Stats": map[string]any{"Records": len(order), "Max-Slots": 1}}}},
	}})
}

// Close stops the PBX.
func (p *DemoPBX) Close() error {
	p.cancel()
	err := p.http.Close()
	err = errors.Join(err, p.srv.Close(), p.udp.Close())
	_ = p.ua.Close()
	return err
}

// listenBoth listens on UDP and TCP at addr, the same port for both; for
// port 0, a port free for both (a few tries: the UDP port chosen may be
// taken on TCP).
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	for i := 0; ; i++ {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		tcp, err := net.Listen("tcp", udp.LocalAddr().String())
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if i+1 >= tries {
			return nil, nil, err
		}
	}
}
