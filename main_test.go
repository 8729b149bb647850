package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/basip/basip_exporter/collector/config"
)

// TestExampleConfigIsValid keeps config.example.yaml loadable.
func TestExampleConfigIsValid(t *testing.T) {
	b, err := os.ReadFile("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "basip")
	if err := os.WriteFile(pw, []byte("example-Passw0rd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.ReplaceAll(string(b), "/run/secrets/basip", pw)
	cfg, err := config.Parse([]byte(y), "config.example.yaml", dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Devices) == 0 {
		t.Error("the example configures no device")
	}
}

func TestDemoURL(t *testing.T) {
	cases := map[string]string{":9875": "http://localhost:9875/", "127.0.0.1:1234": "http://127.0.0.1:1234/", "[::1]:9875": "http://[::1]:9875/"}
	for in, want := range cases {
		if got := demoURL([]string{in}); got != want {
			t.Errorf("demoURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// The version the test build is stamped with, through the Dockerfile's
// build arguments. An unstamped build reports an empty version and
// revision "unknown". (The values show in the README's screenshot.)
const (
	testVersion  = "0.1.0"
	testRevision = "5d1e0c7a9b3f4e2d8c6a1b0f9e8d7c6b5a4f3e2d"
	testBranch   = "main"
	testDate     = "2026-01-02T03:04:05Z"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// exporterBinary builds the exporter once, the way the Dockerfile does, and
// returns its path.
func exporterBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "basip_exporter-test-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "basip_exporter")
		var env, args []string
		env, args, buildErr = dockerBuildCommand(binPath)
		if buildErr != nil {
			return
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building the exporter as the Dockerfile does: %v", buildErr)
	}
	return binPath
}

// dockerBuildCommand reads the Dockerfile's `go build` RUN instruction and
// returns its environment assignments and command line, with the build
// arguments set to the test's values and the output redirected to out.
func dockerBuildCommand(out string) (env, args []string, err error) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		return nil, nil, err
	}
	vars := map[string]string{
		"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH,
		"VERSION": testVersion, "REVISION": testRevision, "BRANCH": testBranch, "BUILD_DATE": testDate,
	}
	var run string
	for _, inst := range dockerInstructions(string(b)) {
		keyword, rest, _ := strings.Cut(inst, " ")
		switch strings.ToUpper(keyword) {
		case "ARG":
			name, def, _ := strings.Cut(strings.TrimSpace(rest), "=")
			if _, set := vars[name]; !set {
				vars[name] = strings.Trim(def, `"`)
			}
		case "RUN":
			if strings.Contains(rest, "go build") {
				if run != "" {
					return nil, nil, errors.New("more than one RUN instruction runs go build")
				}
				run = rest
			}
		}
	}
	if run == "" {
		return nil, nil, errors.New("no RUN instruction runs go build")
	}
	words, err := shellWords(run, vars)
	if err != nil {
		return nil, nil, fmt.Errorf("RUN %s: %w", run, err)
	}
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		env = append(env, words[0])
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		return nil, nil, fmt.Errorf("the RUN instruction is not one go build command: %q", words)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, nil, err
	}
	args = append([]string{goTool}, words[1:]...)
	found := false
	for i := range args {
		if args[i] == "-o" && i+1 < len(args) {
			args[i+1] = out
			found = true
		}
	}
	if !found {
		return nil, nil, errors.New("the go build command has no -o")
	}
	return env, args, nil
}

// dockerInstructions splits a Dockerfile into instructions, joining
// continuation lines and dropping comments.
func dockerInstructions(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		if cur.Len() > 0 {
			out = append(out, cur.String())
		}
		cur.Reset()
	}
	return out
}

// shellWords splits a shell command the way sh would for the simple
// commands a Dockerfile's RUN uses: quotes, backslashes, $VAR and ${VAR}.
// Anything more (;, &&, |, $(...)) is refused.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			if quote == c {
				quote = 0
			} else if quote == 0 {
				quote, inWord = c, true
			} else {
				cur.WriteByte(c)
			}
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == '$':
			name := ""
			switch {
			case i+1 < len(s) && s[i+1] == '{':
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					return nil, errors.New("unterminated ${")
				}
				name, i = s[i+2:i+end], i+end
			case i+1 < len(s) && s[i+1] == '(':
				return nil, errors.New("command substitution is not supported")
			default:
				j := i + 1
				for j < len(s) && (s[j] == '_' || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
					j++
				}
				name, i = s[i+1:j], j-1
			}
			v, ok := vars[name]
			if !ok {
				return nil, fmt.Errorf("$%s is not a build argument the test knows", name)
			}
			cur.WriteString(v)
			inWord = true
		case quote == 0 && (c == ' ' || c == '\t'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case quote == 0 && strings.IndexByte(";&|<>`", c) >= 0:
			return nil, fmt.Errorf("%q: only a single simple command is supported", c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// TestDockerBuildIsStaticAndStamped builds the binary with the Dockerfile's
// command and flags and checks that it is static, carries no build path,
// and reports the version it was stamped with.
func TestDockerBuildIsStaticAndStamped(t *testing.T) {
	env, args, err := dockerBuildCommand("/out")
	if err != nil {
		t.Fatal(err)
	}
	cmdline := strings.Join(append(env, args...), " ")
	for _, want := range []string{"CGO_ENABLED=0", " -trimpath ", "-X github.com/prometheus/common/version.Version=" + testVersion, "-X github.com/prometheus/common/version.Revision=" + testRevision} {
		if !strings.Contains(cmdline, want) {
			t.Errorf("the Dockerfile's build does not set %q:\n%s", want, cmdline)
		}
	}
	bin := exporterBinary(t)

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP program header: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v (%v)", libs, err)
	}
	content, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if wd, _ := os.Getwd(); wd != "" && bytes.Contains(content, []byte(wd)) {
		t.Errorf("the binary contains the build directory %s: -trimpath is not in effect", wd)
	}

	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	for _, want := range []string{"basip_exporter, version " + testVersion, "revision: " + testRevision, "branch: " + testBranch, "build date:       " + testDate} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--version lacks %q:\n%s", want, out)
		}
	}
}

func TestShellWords(t *testing.T) {
	got, err := shellWords(`A=1 go build -ldflags "-s -X a.B=${V} -X 'c.D=$V'" -o '/x y' .`, map[string]string{"V": "v 1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", "go", "build", "-ldflags", "-s -X a.B=v 1 -X 'c.D=v 1'", "-o", "/x y", "."}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	for _, bad := range []string{"a && b", "echo $(id)", "echo $UNKNOWN", `echo "x`} {
		if _, err := shellWords(bad, map[string]string{}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// process is the exporter binary running in a test.
type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string // host:port it listens on
	done chan struct{}

	mu    sync.Mutex
	lines []string // log lines, stdout and stderr
	grow  chan struct{}
}

// startExporter runs the exporter with args plus JSON logging on a free
// loopback port, and waits until it listens. It is stopped when the test
// ends.
func startExporter(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{t: t, done: make(chan struct{}), grow: make(chan struct{})}
	p.cmd = exec.Command(exporterBinary(t), append([]string{"--web.listen-address=127.0.0.1:0", "--log.format=json"}, args...)...)
	p.cmd.Dir = t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.grow)
			p.grow = make(chan struct{})
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("exporter output:\n%s", p.output())
		}
	})
	line := p.waitLog(20*time.Second, func(l map[string]any) bool { return l["msg"] == "Listening on" })
	if line == nil {
		t.Fatalf("the exporter did not start listening:\n%s", p.output())
	}
	p.addr = line["address"].(string)
	return p
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// waitLog waits for a JSON log line that match accepts, among all the lines
// logged since the start, and returns it; nil after timeout.
func (p *process) waitLog(timeout time.Duration, match func(map[string]any) bool) map[string]any {
	return p.waitLogAfter(0, timeout, match)
}

// waitLogAfter is waitLog among the lines after the first n.
func (p *process) waitLogAfter(n int, timeout time.Duration, match func(map[string]any) bool) map[string]any {
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		lines, grow := p.lines, p.grow
		p.mu.Unlock()
		for i := n; i < len(lines); i++ {
			var l map[string]any
			if json.Unmarshal([]byte(lines[i]), &l) == nil && match(l) {
				return l
			}
		}
		n = len(lines)
		select {
		case <-grow:
		case <-p.done:
			return nil
		case <-deadline:
			return nil
		}
	}
}

// logCount is how many lines have been logged so far.
func (p *process) logCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// stop sends SIGTERM and waits for the exit; it returns the exit code and
// how long the exit took.
func (p *process) stop(timeout time.Duration) (int, time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("the exporter did not exit within %v of SIGTERM", timeout)
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

// loopbackClient talks to the exporter on 127.0.0.1 only, never through a
// proxy.
func loopbackClient(tlsConfig *tls.Config) *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{Proxy: nil, TLSClientConfig: tlsConfig, DisableKeepAlives: true},
	}
}

// fetch does one request and returns the status and body.
func fetch(t *testing.T, c *http.Client, method, url, user, pass string) (int, string) {
	t.Helper()
	code, body, err := tryFetch(c, method, url, user, pass)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return code, body
}

func tryFetch(c *http.Client, method, url, user, pass string) (int, string, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, "", err
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
