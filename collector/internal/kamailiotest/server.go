// Package kamailiotest runs a real Kamailio on loopback for tests: a
// registrar without a database that answers OPTIONS and serves usrloc's
// contacts over JSON-RPC (ul.dump) at /RPC.
//
// A test that calls Start is skipped when the kamailio binary or its
// modules are missing, unless the environment variable named by
// RequireEnv is "1": then it fails.
package kamailiotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns a missing
// Kamailio from a skip into a failure when set to "1".
const RequireEnv = "BASIP_REQUIRE_KAMAILIO"

// DefaultBinary is where Debian's kamailio package installs the binary,
// tried when "kamailio" is not on PATH.
const DefaultBinary = "/usr/sbin/kamailio"

// modulesDirs are the module folders tried in turn, Debian's first.
var modulesDirs = []string{
	"/usr/lib/x86_64-linux-gnu/kamailio/modules",
	"/usr/lib/aarch64-linux-gnu/kamailio/modules",
	"/usr/lib/kamailio/modules",
	"/usr/lib64/kamailio/modules",
	"/usr/local/lib64/kamailio/modules",
	"/usr/local/lib/kamailio/modules",
}

// Bounds on starting and stopping.
const (
	// ReadyTimeout bounds the wait for a started Kamailio to answer both
	// OPTIONS and JSON-RPC.
	ReadyTimeout = 15 * time.Second
	// stopTimeout bounds each of the waits after SIGTERM and SIGKILL.
	stopTimeout = 5 * time.Second
	// rebindTimeout bounds the retries of a restart whose ports are still
	// held.
	rebindTimeout = 5 * time.Second
	// logTail is how much of Kamailio's log is kept for a failure.
	logTail = 64 << 10
)

// Options shape the Kamailio a test runs.
type Options struct {
	// UseDomain sets usrloc's use_domain: the registrar keeps AoRs as
	// user@domain instead of user.
	UseDomain bool
	// DefaultExpires is the registrar's default_expires, for a REGISTER
	// that asks for none: 60 s when zero. min_expires is 1 s.
	DefaultExpires time.Duration
	// TimerInterval is usrloc's timer_interval, how often expired contacts
	// are removed: 60 s when zero, as in Kamailio. Until it runs, ul.dump
	// lists an expired contact with Expires "expired".
	TimerInterval time.Duration
	// Password, when set, makes every REGISTER authenticate with digest
	// (realm: the To header's domain), any user, this password. It may not
	// hold a quote, a backslash, a newline or a dollar sign.
	Password string
	// Received makes the registrar record where each REGISTER came from
	// (nathelper's fix_nated_register and received_avp): ul.dump's
	// Received field, empty otherwise.
	Received bool
	// Binary is the kamailio executable: "kamailio" on PATH, else
	// DefaultBinary, when empty.
	Binary string
	// ModulesDir is the folder of Kamailio's modules: Debian's when empty.
	ModulesDir string
}

// Server is one Kamailio process a test runs.
type Server struct {
	// SIPAddr is where SIP is served, on UDP and TCP: 127.0.0.1:P.
	SIPAddr string
	// RPCURL is the JSON-RPC endpoint: http://127.0.0.1:H/RPC.
	RPCURL string

	tb      testing.TB
	bin     string
	dir     string
	cfgPath string
	sipPort int
	rpcPort int
	logs    *tail

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start writes a configuration into a temporary directory of tb and runs
// Kamailio on free loopback ports until the test ends, in the foreground
// and in its own process group. It returns once SIP answers OPTIONS and
// the JSON-RPC URL answers, or fails the test after ReadyTimeout, showing
// the end of Kamailio's log.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if !supported {
		unavailable(tb, "kamailiotest runs Kamailio on Linux only")
	}
	bin, err := findBinary(opts.Binary)
	if err != nil {
		unavailable(tb, err.Error())
	}
	mods, err := findModules(opts.ModulesDir)
	if err != nil {
		unavailable(tb, err.Error())
	}
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir(), logs: &tail{max: logTail}}
	s.cfgPath = filepath.Join(s.dir, "kamailio.cfg")
	tb.Cleanup(func() {
		s.Stop()
		if tb.Failed() {
			tb.Logf("the end of Kamailio's log:\n%s", s.logs)
		}
	})
	c := config{
		ModulesDir:     mods,
		RunDir:         s.dir,
		UseDomain:      opts.UseDomain,
		DefaultExpires: seconds(opts.DefaultExpires, 60),
		TimerInterval:  seconds(opts.TimerInterval, 60),
		Password:       opts.Password,
		Received:       opts.Received,
	}
	// Another process may take a port between picking it and Kamailio
	// binding it: then new ports, a few times.
	for attempt := 1; ; attempt++ {
		if c.SIPPort, c.RPCPort, err = freePorts(); err != nil {
			tb.Fatalf("kamailiotest: %v", err)
		}
		text, err := render(c)
		if err != nil {
			tb.Fatalf("kamailiotest: %v", err)
		}
		if err := os.WriteFile(s.cfgPath, []byte(text), 0o600); err != nil {
			tb.Fatalf("kamailiotest: %v", err)
		}
		s.sipPort, s.rpcPort = c.SIPPort, c.RPCPort
		s.SIPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(c.SIPPort))
		s.RPCURL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.RPCPort)) + "/RPC"
		err = s.run()
		if err == nil {
			return s
		}
		if !errors.Is(err, errExited) || attempt == 3 {
			tb.Fatalf("kamailiotest: %v\nthe end of Kamailio's log:\n%s", err, s.logs)
		}
	}
}

// Start starts the stopped Kamailio again with the same configuration, on
// the same ports, waiting up to a few seconds for ports still held to be
// released. It does nothing when Kamailio runs. Call it from the test's
// goroutine: it fails the test when Kamailio does not come up.
func (s *Server) Start() {
	s.tb.Helper()
	if s.Running() {
		return
	}
	deadline := time.Now().Add(rebindTimeout)
	for {
		err := s.run()
		if err == nil {
			return
		}
		if !errors.Is(err, errExited) || time.Now().After(deadline) {
			s.tb.Fatalf("kamailiotest: starting again: %v\nthe end of Kamailio's log:\n%s", err, s.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop ends Kamailio: SIGTERM to its process group, SIGKILL when it has
// not exited within 5 s, and waits for it. It does nothing when Kamailio
// is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	stopGroup(cmd, done)
}

// Running tells whether the Kamailio process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Dump returns Kamailio's raw answer to the JSON-RPC request ul.dump, for
// debugging and for Contacts. It fails the test when Kamailio does not
// answer.
func (s *Server) Dump(tb testing.TB) []byte {
	tb.Helper()
	return s.RPC(tb, "ul.dump")
}

// RPC sends one JSON-RPC request and returns the raw answer. It fails the
// test when Kamailio does not answer 200 with a result, e.g.
// RPC(tb, "ul.add", "location", "999", "sip:999@127.0.0.9:5060", 0, 1.0,
// "", 0, 0, 4294967295) adds a permanent contact (expires 0).
func (s *Server) RPC(tb testing.TB, method string, params ...any) []byte {
	tb.Helper()
	b, err := s.call(method, params...)
	if err != nil {
		tb.Fatalf("kamailiotest: %v", err)
	}
	return b
}

// Log returns the end of Kamailio's log (its standard error), every run
// of this Server together.
func (s *Server) Log() string { return s.logs.String() }

// errExited is the error of a Kamailio that exited before it was ready.
var errExited = errors.New("kamailio exited before it was ready")

// run starts the process and waits until it is ready. On failure the
// process is stopped.
func (s *Server) run() error {
	fmt.Fprintf(s.logs, "=== kamailiotest: starting %s -DD -E -f %s\n", s.bin, s.cfgPath)
	cmd := exec.Command(s.bin, "-DD", "-E", "-f", s.cfgPath, "-m", "32", "-M", "8")
	cmd.Dir = s.dir
	cmd.Stdin = nil
	cmd.Stdout = s.logs
	cmd.Stderr = s.logs
	cmd.SysProcAttr = sysProcAttr()
	// Kamailio's children share the log pipe: never wait on it for long.
	cmd.WaitDelay = stopTimeout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	err := s.waitReady(done)
	if err != nil {
		s.Stop()
	}
	return err
}

// waitReady polls OPTIONS and JSON-RPC until both answer, the process
// exits or ReadyTimeout passes.
func (s *Server) waitReady(done <-chan struct{}) error {
	deadline := time.Now().Add(ReadyTimeout)
	var last error
	for {
		select {
		case <-done:
			return errExited
		default:
		}
		if last = probeOptions(s.SIPAddr, 300*time.Millisecond); last == nil {
			if _, last = s.call("core.version"); last == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kamailio not ready after %v: %v", ReadyTimeout, last)
		}
		select {
		case <-done:
			return errExited
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// rpcClient is the JSON-RPC client: every request bounded, no connection
// kept open after it.
var rpcClient = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// call POSTs one JSON-RPC request and returns the answer's body.
func (s *Server) call(method string, params ...any) ([]byte, error) {
	req := map[string]any{"jsonrpc": "2.0", "method": method, "id": 1}
	if len(params) > 0 {
		req["params"] = params
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, s.RPCURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := rpcClient.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d: %.200q", method, resp.StatusCode, b)
	}
	if !bytes.Contains(b, []byte(`"result"`)) {
		return nil, fmt.Errorf("%s: no result: %.200q", method, b)
	}
	return b, nil
}

// probeOptions sends one OPTIONS over UDP to addr and wants a 200.
func probeOptions(addr string, timeout time.Duration) error {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	id := randomHex(8)
	msg := "OPTIONS sip:" + addr + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + id + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:probe@127.0.0.1>;tag=" + id + "\r\n" +
		"To: <sip:" + addr + ">\r\n" +
		"Call-ID: " + id + "@127.0.0.1\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Content-Length: 0\r\n\r\n"
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(buf[:n], []byte("SIP/2.0 200 ")) {
		line, _, _ := bytes.Cut(buf[:n], []byte("\r\n"))
		return fmt.Errorf("OPTIONS answered %q", line)
	}
	return nil
}

// freePorts picks a port free on both UDP and TCP at 127.0.0.1 for SIP,
// and a TCP port for JSON-RPC.
func freePorts() (sip, rpc int, err error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, uerr := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		h, herr := net.Listen("tcp", "127.0.0.1:0")
		if herr == nil {
			rpc = h.Addr().(*net.TCPAddr).Port
			_ = h.Close()
		}
		_ = l.Close()
		if uerr == nil {
			_ = u.Close()
		}
		if uerr == nil && herr == nil {
			return port, rpc, nil
		}
	}
	return 0, 0, errors.New("found no port free on both UDP and TCP at 127.0.0.1")
}

func findBinary(bin string) (string, error) {
	if bin != "" {
		if _, err := exec.LookPath(bin); err != nil {
			return "", fmt.Errorf("kamailio binary %s: %v", bin, err)
		}
		return bin, nil
	}
	if p, err := exec.LookPath("kamailio"); err == nil {
		return p, nil
	}
	if _, err := exec.LookPath(DefaultBinary); err == nil {
		return DefaultBinary, nil
	}
	return "", errors.New("kamailio is not installed (neither on PATH nor " + DefaultBinary + "; Debian: apt-get install kamailio)")
}

func findModules(dir string) (string, error) {
	dirs := modulesDirs
	if dir != "" {
		dirs = []string{dir}
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "registrar.so")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no Kamailio modules (registrar.so) in %s", strings.Join(dirs, ", "))
}

// unavailable skips the test, or fails it when RequireEnv is "1".
func unavailable(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("kamailiotest: %s (%s=1)", why, RequireEnv)
	}
	tb.Skipf("kamailiotest: %s; skipping (set %s=1 to fail instead)", why, RequireEnv)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cut {
		return "[...]\n" + string(t.buf)
	}
	return string(t.buf)
}
