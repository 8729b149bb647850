//go:build linux

package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The version the test build is stamped with, through the Dockerfile's
// build arguments. An unstamped build reports an empty version and
// revision "unknown". (The values show in the README's screenshot.)
const (
	testVersion  = "0.1.0"
	testRevision = "5d1e0c7a9b3f4e2d8c6a1b0f9e8d7c6b5a4f3e2d"
	testBranch   = "main"
	testDate     = "2026-01-02T03:04:05Z"
)

// exporterBuild is the binary the tests run, built at most once per test
// run and removed by TestMain.
var exporterBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if exporterBuild.dir != "" {
		_ = os.RemoveAll(exporterBuild.dir)
	}
	os.Exit(code)
}

// repoRoot is the module's root directory, two levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no module root at %s: %v", root, err)
	}
	return root
}

// buildExporter builds the exporter once, with the environment and flags
// of the Dockerfile's `go build` and the test's build arguments, and
// returns its path.
func buildExporter(t testing.TB) string {
	t.Helper()
	root := repoRoot(t)
	exporterBuild.once.Do(func() {
		start := time.Now()
		d, err := readDockerBuild(root)
		if err != nil {
			exporterBuild.err = err
			return
		}
		if exporterBuild.dir, err = os.MkdirTemp("", "basip_exporter-e2e-"); err != nil {
			exporterBuild.err = err
			return
		}
		bin := filepath.Join(exporterBuild.dir, "basip_exporter")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		args := append(append([]string{"build"}, d.flags...), "-o", bin, ".")
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), d.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			exporterBuild.err = fmt.Errorf("%s go %s: %v\n%s", strings.Join(d.env, " "), strings.Join(args, " "), err, out)
			return
		}
		exporterBuild.bin = bin
		t.Logf("exporter built in %v", time.Since(start).Round(time.Millisecond))
	})
	if exporterBuild.err != nil {
		t.Fatalf("building the exporter as the Dockerfile does: %v", exporterBuild.err)
	}
	return exporterBuild.bin
}

// exporterProc is the exporter binary running in a test, its log lines
// kept.
type exporterProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string // host:port it listens on
	done chan struct{}

	mu    sync.Mutex
	lines []string // log lines, stdout and stderr
	grow  chan struct{}
}

// startExporterBinary runs the exporter with args plus JSON logging on a
// free loopback port, and waits until it listens. It is stopped when the
// test ends.
func startExporterBinary(t *testing.T, args ...string) *exporterProc {
	t.Helper()
	p := &exporterProc{t: t, done: make(chan struct{}), grow: make(chan struct{})}
	p.cmd = exec.Command(buildExporter(t), append([]string{"--web.listen-address=127.0.0.1:0", "--log.format=json"}, args...)...)
	p.cmd.Dir = t.TempDir()
	// Killed by the kernel should the test binary die without cleaning up.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
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

func (p *exporterProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// waitLog waits for a JSON log line that match accepts, among all the lines
// logged since the start, and returns it; nil after timeout.
func (p *exporterProc) waitLog(timeout time.Duration, match func(map[string]any) bool) map[string]any {
	return p.waitLogAfter(0, timeout, match)
}

// waitLogAfter is waitLog among the lines after the first n.
func (p *exporterProc) waitLogAfter(n int, timeout time.Duration, match func(map[string]any) bool) map[string]any {
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
func (p *exporterProc) logCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// terminate sends SIGTERM and waits for the exit; it returns the exit code
// and how long the exit took.
func (p *exporterProc) terminate(timeout time.Duration) (int, time.Duration) {
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

// fetchURL does one request and returns the status and body.
func fetchURL(t *testing.T, c *http.Client, method, url, user, pass string) (int, string) {
	t.Helper()
	code, body, err := tryFetchURL(c, method, url, user, pass)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return code, body
}

func tryFetchURL(c *http.Client, method, url, user, pass string) (int, string, error) {
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

// replaceFile replaces a file the way a secret rotation does: a new file
// renamed over the old one.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// seriesValue returns the value of the series line that starts with
// series, or "" when there is none.
func seriesValue(exposition, series string) string {
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return rest
		}
	}
	return ""
}
