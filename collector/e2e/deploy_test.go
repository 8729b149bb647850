//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/server"
	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
)

const (
	// configPath is where every deployment example keeps the configuration.
	configPath = "/etc/basip_exporter/config.yaml"
	// exporterPort is the exporter's documented port, the default of
	// --web.listen-address.
	exporterPort = 9875
)

// otherPorts are the ports of the other programs the examples run.
var otherPorts = map[int]string{9090: "Prometheus", 9093: "Alertmanager", 3000: "Grafana"}

// deployDoc is one YAML document of a file under deploy/, or a
// configuration embedded in one (a compose config's content, a ConfigMap's
// file).
type deployDoc struct {
	where string
	dir   string // the directory of its file, for relative paths
	v     any
}

// kind is the Kubernetes kind of a document, "" for others.
func (d deployDoc) kind() string { return str(d.v, "kind") }

// readDeploy parses every YAML and JSON file under deploy/ and every
// configuration embedded in them, failing t on any that does not parse.
func readDeploy(t *testing.T, root string) []deployDoc {
	t.Helper()
	var docs []deployDoc
	files := 0
	err := filepath.WalkDir(filepath.Join(root, "deploy"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch filepath.Ext(p) {
		case ".json":
			if !json.Valid(b) {
				t.Errorf("%s is not valid JSON", rel)
			}
		case ".yml", ".yaml":
			files++
			for i, v := range yamlDocs(t, rel, b) {
				docs = append(docs, deployDoc{fmt.Sprintf("%s#%d", rel, i+1), filepath.Dir(p), v})
				walkYAML(v, "", func(key string, v any) bool {
					if s, ok := v.(string); ok && strings.Contains(s, "\n") && (key == "content" || strings.HasSuffix(key, ".yml") || strings.HasSuffix(key, ".yaml")) {
						for _, e := range yamlDocs(t, rel+" "+key, []byte(s)) {
							docs = append(docs, deployDoc{rel + " " + key, filepath.Dir(p), e})
						}
					}
					return true
				})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Errorf("only %d YAML files under deploy/", files)
	}
	return docs
}

// yamlDocs decodes every document of a YAML stream; each must be non-empty.
func yamlDocs(t *testing.T, where string, b []byte) []any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || v == nil {
			t.Errorf("%s: document %d: %v (empty: %v)", where, len(docs)+1, err, v == nil)
			return docs
		}
		docs = append(docs, v)
	}
	if len(docs) == 0 {
		t.Errorf("%s: no YAML document", where)
	}
	return docs
}

// walkYAML calls fn on v and, while fn returns true, on everything under
// it, with the key it stands under; list items inherit their list's key.
func walkYAML(v any, key string, fn func(key string, v any) bool) {
	if !fn(key, v) {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			walkYAML(c, k, fn)
		}
	case []any:
		for _, c := range x {
			walkYAML(c, key, fn)
		}
	}
}

// get follows keys down maps; nil where one is missing.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func str(v any, keys ...string) string { s, _ := get(v, keys...).(string); return s }

func list(v any, keys ...string) []any { l, _ := get(v, keys...).([]any); return l }

func strs(v any, keys ...string) []string {
	var out []string
	for _, x := range list(v, keys...) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// exporterFlags returns the binary's flags (from --help) and their
// defaults.
func exporterFlags(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command(buildExporter(t), "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	flags := map[string]string{}
	re := regexp.MustCompile(`(?m)^\s+(?:-\w, )?--(?:\[no-\])?([a-z][\w.\-]*)(?:=("[^"]*"|\S*))?`)
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = strings.Trim(m[2], `"`)
	}
	for _, want := range []string{"config.file", "web.listen-address", "web.config.file", "demo", "log.level"} {
		if _, ok := flags[want]; !ok {
			t.Fatalf("--help does not list --%s; the parser is broken:\n%s", want, out)
		}
	}
	return flags
}

// checkArgs checks a command line's flags against the binary's and its
// --config.file against configPath, and returns the port it listens on.
func checkArgs(t *testing.T, flags map[string]string, where string, args []string) int {
	t.Helper()
	listen := flags["web.listen-address"]
	for _, a := range args {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		switch {
		case !strings.HasPrefix(a, "--"):
			t.Errorf("%s: argument %q is not a --flag", where, a)
		case !hasFlag(flags, name):
			t.Errorf("%s: --%s is not a flag of the exporter", where, name)
		case name == "config.file" && value != configPath:
			t.Errorf("%s: --config.file=%s, want %s", where, value, configPath)
		case name == "web.listen-address":
			listen = value
		}
	}
	_, port, err := net.SplitHostPort(listen)
	n, _ := strconv.Atoi(port)
	if err != nil || n != exporterPort {
		t.Errorf("%s: listens on %q, want port %d", where, listen, exporterPort)
	}
	return n
}

func hasFlag(flags map[string]string, name string) bool {
	_, ok := flags[strings.TrimPrefix(name, "no-")]
	return ok
}

var (
	// A command line in a comment or a unit file, continuations joined.
	invocationRE = regexp.MustCompile(`basip_exporter((?:\s+--[\w.\-]+(?:=[^\s"'\]` + "`" + `]*)?)+)`)
	configFileRE = regexp.MustCompile(`--config\.file=([^\s"'\]` + "`" + `]+)`)
	// host:port in a URL, a target or an address replacement.
	hostPortRE = regexp.MustCompile(`(?:^|[/\s\[])([a-z][\w.\-]*):(\d+)\b`)
	// A compose port mapping: [ip:]published:container[/proto].
	portMappingRE = regexp.MustCompile(`^(?:[\d.]+:)?(\d+):(\d+)(?:/\w+)?$`)
	jobSelectorRE = regexp.MustCompile(`job=~?"([^"]+)"`)
)

// TestDeployMatchesExporter checks that what the Dockerfile and the files
// under deploy/ say of the exporter is true of the binary: every flag they
// pass exists, every command line reads configPath and listens on the
// documented port, every port is the exporter's or another program's, the
// configuration and password land where the configuration says, the jobs
// the alert rules select are the jobs that scrape the exporter, and every
// path probed or scraped is served.
func TestDeployMatchesExporter(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	flags := exporterFlags(t)
	if flags["web.listen-address"] != ":"+strconv.Itoa(exporterPort) || flags["config.file"] != "config.yaml" {
		t.Fatalf("defaults --web.listen-address=%q --config.file=%q", flags["web.listen-address"], flags["config.file"])
	}
	docs := readDeploy(t, root)

	// The texts: every file under deploy/ and the Dockerfile.
	texts := map[string]string{}
	_ = filepath.WalkDir(filepath.Join(root, "deploy"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !slices.Contains([]string{".png", ".json"}, filepath.Ext(p)) {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			texts[rel] = strings.ReplaceAll(string(b), "\\\n", " ")
		}
		return nil
	})
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	texts["Dockerfile"] = strings.ReplaceAll(string(dockerfile), "\\\n", " ")

	var (
		paths     []string                // HTTP paths probed or scraped
		portNames = map[string]int{}      // the exporter containers' named ports
		files     = map[string]string{}   // path in the container -> "configmap NAME KEY" or "secret NAME KEY"
		jobs      = map[string][]string{} // job name -> where it scrapes the exporter
	)

	t.Run("command lines", func(t *testing.T) {
		found := 0
		for where, text := range texts {
			for _, m := range invocationRE.FindAllStringSubmatch(text, -1) {
				checkArgs(t, flags, where+": "+strings.TrimSpace(m[0]), strings.Fields(m[1]))
				found++
			}
			for _, m := range configFileRE.FindAllStringSubmatch(text, -1) {
				if strings.Contains(m[1], "basip") && m[1] != configPath {
					t.Errorf("%s: --config.file=%s, want %s", where, m[1], configPath)
				}
			}
		}
		// Containers: Kubernetes' args, compose's command.
		for _, d := range docs {
			walkYAML(d.v, "", func(_ string, v any) bool {
				if !strings.Contains(str(v, "image"), "basip_exporter") {
					return true
				}
				found++
				name := d.where + " " + str(v, "name")
				if get(v, "entrypoint") != nil || (d.kind() != "" && get(v, "command") != nil) {
					t.Errorf("%s overrides the image's entrypoint", name)
				}
				args := strs(v, "command")
				if d.kind() != "" {
					args = strs(v, "args")
				}
				listen := checkArgs(t, flags, name, args)
				for _, p := range list(v, "ports") {
					if n, ok := get(p, "containerPort").(int); ok {
						portNames[str(p, "name")] = n
						if n != listen {
							t.Errorf("%s: container port %d, but it listens on %d", name, n, listen)
						}
					} else if m := portMappingRE.FindStringSubmatch(fmt.Sprint(p)); m == nil || m[2] != strconv.Itoa(listen) {
						t.Errorf("%s: publishes %v, not the port it listens on (%d)", name, p, listen)
					}
				}
				for _, probe := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
					if h := get(v, probe, "httpGet"); h != nil {
						paths = append(paths, str(h, "path"))
					}
				}
				collectMounts(d, v, files)
				return false
			})
		}
		if found < 4 {
			t.Errorf("found only %d command lines of the exporter; the patterns are broken", found)
		}
	})

	t.Run("ports", func(t *testing.T) {
		for _, d := range docs {
			exporterResource := d.kind() != "" && strings.Contains(fmt.Sprint(get(d.v, "metadata", "labels")), "basip")
			walkYAML(d.v, "", func(key string, v any) bool {
				if key == "egress" || key == "image" { // the devices' and DNS ports; image tags
					return false
				}
				switch x := v.(type) {
				case int:
					if key == "port" || key == "containerPort" || key == "targetPort" || key == "hostPort" {
						if x != exporterPort && (exporterResource || otherPorts[x] == "") {
							t.Errorf("%s: %s %d is neither the exporter's port %d nor another program's", d.where, key, x, exporterPort)
						}
					}
				case string:
					if (key == "port" || key == "targetPort") && portNames[x] == 0 {
						t.Errorf("%s: %s %q names no port of the exporter's container", d.where, key, x)
					}
					if key == "ports" {
						if m := portMappingRE.FindStringSubmatch(x); m != nil {
							for _, p := range m[1:] {
								if n, _ := strconv.Atoi(p); n != exporterPort && otherPorts[n] == "" {
									t.Errorf("%s: port mapping %q uses port %d", d.where, x, n)
								}
							}
						}
					}
					for _, m := range hostPortRE.FindAllStringSubmatch(x, -1) {
						if n, _ := strconv.Atoi(m[2]); n != exporterPort && (strings.Contains(m[1], "exporter") || strings.Contains(m[1], "basip")) {
							t.Errorf("%s: %s:%s names the exporter on another port than %d", d.where, m[1], m[2], exporterPort)
						}
					}
				}
				return true
			})
			// What Prometheus scrapes is the exporter or another program.
			for _, sc := range list(d.v, "scrape_configs") {
				walkYAML(sc, "", func(_ string, v any) bool {
					x, _ := v.(string)
					for _, m := range hostPortRE.FindAllStringSubmatch(x, -1) {
						if n, _ := strconv.Atoi(m[2]); n != exporterPort && otherPorts[n] == "" {
							t.Errorf("%s: job %s scrapes %s:%s, neither the exporter's port %d nor another program's", d.where, str(sc, "job_name"), m[1], m[2], exporterPort)
						}
					}
					return true
				})
			}
		}
		if !regexp.MustCompile(`(?m)^EXPOSE\s+` + strconv.Itoa(exporterPort) + `(/tcp)?\s*$`).Match(dockerfile) {
			t.Errorf("the Dockerfile does not EXPOSE %d", exporterPort)
		}
		if !regexp.MustCompile(`-p \d+:` + strconv.Itoa(exporterPort) + `\b`).Match(dockerfile) {
			t.Errorf("the docker run example does not publish port %d", exporterPort)
		}
	})

	t.Run("Dockerfile", func(t *testing.T) {
		text := texts["Dockerfile"]
		exec := map[string][]string{}
		for _, m := range regexp.MustCompile(`(?m)^(ENTRYPOINT|CMD)\s+(\[.*\])\s*$`).FindAllStringSubmatch(text, -1) {
			var v []string
			if err := json.Unmarshal([]byte(m[2]), &v); err != nil {
				t.Errorf("%s is not in exec form: %v", m[1], err)
			}
			exec[m[1]] = v
		}
		copied := regexp.MustCompile(`(?m)^COPY\s+--from=\S+\s+\S+\s+(\S+)\s*$`).FindStringSubmatch(text)
		if copied == nil || !slices.Equal(exec["ENTRYPOINT"], copied[1:]) {
			t.Errorf("ENTRYPOINT %q is not the copied binary %q", exec["ENTRYPOINT"], copied)
		}
		checkArgs(t, flags, "Dockerfile CMD", exec["CMD"])
		if !slices.Contains(exec["CMD"], "--config.file="+configPath) {
			t.Errorf("CMD %q does not name %s", exec["CMD"], configPath)
		}
		// The `docker run` example mounts the config and the password
		// where the image and config.example.yaml expect them.
		var example struct {
			Credentials map[string]struct {
				PasswordFile string `yaml:"password_file"`
			}
		}
		b, err := os.ReadFile(filepath.Join(root, "config.example.yaml"))
		if err != nil || yaml.Unmarshal(b, &example) != nil {
			t.Fatalf("config.example.yaml: %v", err)
		}
		pw := example.Credentials["default"].PasswordFile
		if !filepath.IsAbs(pw) { // relative to the configuration file
			pw = filepath.Join(filepath.Dir(configPath), pw)
		}
		for _, mount := range []string{configPath, pw} {
			if !regexp.MustCompile(`-v "[^"]*:` + regexp.QuoteMeta(mount) + `:ro"`).MatchString(text) {
				t.Errorf("the docker run example does not mount %s", mount)
			}
		}
	})

	t.Run("systemd", func(t *testing.T) {
		units := 0
		for where, text := range texts {
			if filepath.Ext(where) != ".service" {
				continue
			}
			units++
			unit := filepath.Base(where)
			keys := map[string][]string{}
			for _, line := range strings.Split(text, "\n") {
				if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(line, "#") {
					keys[k] = append(keys[k], strings.TrimSpace(v))
				}
			}
			execStart := strings.Fields(strings.Join(keys["ExecStart"], " "))
			if len(keys["ExecStart"]) != 1 || len(execStart) == 0 || !strings.Contains(text, "install -m 0755 basip_exporter "+execStart[0]) {
				t.Errorf("%s: ExecStart %q, not the binary the installation comment installs", where, keys["ExecStart"])
			}
			for key, want := range map[string]string{
				"ConfigurationDirectory": strings.TrimPrefix(path.Dir(configPath), "/etc/"),
				"ExecReload":             "/bin/kill -HUP $MAINPID",
				"DynamicUser":            "yes",
			} {
				if got := keys[key]; len(got) != 1 || got[0] != want {
					t.Errorf("%s: %s=%q, want %q", where, key, got, want)
				}
			}
			// LoadCredential=NAME:PATH is read by the service at
			// /run/credentials/UNIT/NAME, which the config must name.
			lc := keys["LoadCredential"]
			if len(lc) != 1 {
				t.Errorf("%s: LoadCredential=%q", where, lc)
				continue
			}
			name, src, _ := strings.Cut(lc[0], ":")
			if path.Dir(src) != path.Dir(configPath) {
				t.Errorf("%s: LoadCredential reads %s, not from %s", where, src, path.Dir(configPath))
			}
			if want := "password_file: /run/credentials/" + unit + "/" + name; !strings.Contains(text, want) {
				t.Errorf("%s: the comment does not tell the config to use %q", where, want)
			}
		}
		if units == 0 {
			t.Error("no systemd unit under deploy/")
		}
	})

	t.Run("kubernetes files", func(t *testing.T) {
		// The configuration lands at configPath from a ConfigMap and
		// loads; its password files are keys of a Secret.
		cm, ok := strings.CutPrefix(files[configPath], "configmap ")
		if !ok {
			t.Fatalf("%s in the container is %q, want a ConfigMap's key", configPath, files[configPath])
		}
		name, key, _ := strings.Cut(cm, " ")
		var y string
		for _, d := range docs {
			if d.kind() == "ConfigMap" && str(d.v, "metadata", "name") == name {
				y = str(d.v, "data", key)
			}
		}
		if y == "" {
			t.Fatalf("no ConfigMap %s with a key %s", name, key)
		}
		var cfg struct {
			Credentials map[string]struct {
				PasswordFile string `yaml:"password_file"`
			}
		}
		if err := yaml.Unmarshal([]byte(y), &cfg); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		for cred, c := range cfg.Credentials {
			secret, ok := strings.CutPrefix(files[c.PasswordFile], "secret ")
			name, key, _ := strings.Cut(secret, " ")
			if !ok || !secretHasKey(docs, name, key) {
				t.Errorf("credentials %s: password_file %s is %q in the container, want a key of a Secret defined under deploy/", cred, c.PasswordFile, files[c.PasswordFile])
			}
			local := filepath.Join(dir, "password")
			replaceFile(t, local, "x\n")
			y = strings.ReplaceAll(y, c.PasswordFile, local)
		}
		if _, err := config.Parse([]byte(y), "configmap "+name, dir); err != nil {
			t.Errorf("the ConfigMap's config does not load: %v", err)
		}
		// Selectors select the pods.
		var pods []map[string]any
		for _, d := range docs {
			if l, ok := get(d.v, "spec", "template", "metadata", "labels").(map[string]any); ok {
				pods = append(pods, l)
			}
		}
		for _, d := range docs {
			sel, _ := get(d.v, "spec", "selector", "matchLabels").(map[string]any)
			if d.kind() == "Service" {
				sel, _ = get(d.v, "spec", "selector").(map[string]any)
			}
			if d.kind() == "ServiceMonitor" || len(sel) == 0 {
				continue
			}
			if !slices.ContainsFunc(pods, func(l map[string]any) bool {
				for k, v := range sel {
					if l[k] != v {
						return false
					}
				}
				return true
			}) {
				t.Errorf("%s: the selector %v matches no pod", d.where, sel)
			}
		}
		for _, d := range docs {
			if d.kind() == "Kustomization" {
				for _, r := range strs(d.v, "resources") {
					if _, err := os.Stat(filepath.Join(d.dir, r)); err != nil {
						t.Errorf("%s: %v", d.where, err)
					}
				}
			}
		}
	})

	t.Run("prometheus", func(t *testing.T) {
		mounted := map[string]bool{} // compose targets
		for _, d := range docs {
			services, _ := get(d.v, "services").(map[string]any)
			for _, svc := range services {
				for _, v := range strs(svc, "volumes") {
					parts := strings.Split(v, ":")
					if strings.HasPrefix(parts[0], ".") {
						if _, err := os.Stat(filepath.Join(d.dir, parts[0])); err != nil {
							t.Errorf("%s: volume %s: %v", d.where, v, err)
						}
					}
					if len(parts) > 1 {
						mounted[parts[1]] = true
					}
				}
				for _, c := range list(svc, "configs") {
					mounted[str(c, "target")] = true
				}
			}
		}
		selected := map[string]bool{} // the jobs the alert rules select
		for _, d := range docs {
			if get(d.v, "groups") != nil {
				walkYAML(d.v, "", func(key string, v any) bool {
					if x, ok := v.(string); ok && key == "expr" {
						for _, m := range jobSelectorRE.FindAllStringSubmatch(x, -1) {
							for _, j := range strings.Split(m[1], "|") { // job=~"a|b"
								selected[j] = true
							}
						}
					}
					return true
				})
			}
		}
		if len(selected) == 0 {
			t.Error("no alert rule under deploy/ selects a job")
		}
		for _, d := range docs {
			// A Prometheus configuration or an operator's scrape object.
			var defined []string
			scrapesExporter := strings.Contains(fmt.Sprint(d.v), ":"+strconv.Itoa(exporterPort)) || strings.Contains(fmt.Sprint(get(d.v, "metadata", "labels")), "basip")
			for _, sc := range list(d.v, "scrape_configs") {
				if strings.Contains(fmt.Sprint(sc), ":"+strconv.Itoa(exporterPort)) {
					defined = append(defined, str(sc, "job_name"))
					paths = append(paths, orDefault(str(sc, "metrics_path"), "/metrics"))
					paths = append(paths, sdPaths(sc)...)
				}
			}
			switch d.kind() {
			case "ScrapeConfig":
				defined = append(defined, str(d.v, "spec", "jobName"))
				paths = append(paths, orDefault(str(d.v, "spec", "metricsPath"), "/metrics"))
				paths = append(paths, sdPaths(d.v)...)
			case "ServiceMonitor", "PodMonitor":
				job := str(d.v, "spec", "jobLabel")
				for _, ep := range append(list(d.v, "spec", "endpoints"), list(d.v, "spec", "podMetricsEndpoints")...) {
					paths = append(paths, orDefault(str(ep, "path"), "/metrics"))
					for _, r := range list(ep, "relabelings") {
						if str(r, "targetLabel") == "job" {
							job = str(r, "replacement")
						}
					}
				}
				defined = append(defined, orDefault(job, "(the Service's name)"))
			}
			if scrapesExporter && len(defined) > 0 {
				ok := false
				for _, j := range defined {
					jobs[j] = append(jobs[j], d.where)
					ok = ok || selected[j]
				}
				if !ok {
					t.Errorf("%s scrapes the exporter as job %q, which no alert rule selects", d.where, defined)
				}
			}
			for _, f := range strs(d.v, "rule_files") {
				if _, err := os.Stat(filepath.Join(d.dir, f)); err != nil && !mounted[f] {
					t.Errorf("%s: rule file %s neither exists nor is mounted", d.where, f)
				}
			}
			for _, p := range list(d.v, "providers") {
				if dir := str(p, "options", "path"); dir != "" && !mounted[dir] {
					t.Errorf("%s: the dashboards path %s is not mounted in compose", d.where, dir)
				}
			}
		}
		for j := range selected {
			if len(jobs[j]) == 0 {
				t.Errorf("the alert rules select job=%q, which nothing under deploy/ scrapes", j)
			}
		}
	})

	t.Run("paths", func(t *testing.T) {
		// The paths probed and scraped above answer, with the target a
		// probe job sends.
		door := testutil.Panel("100", "udp")
		srv, err := simulator.Serve(door)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		cfg, err := config.Parse([]byte("credentials:\n  default:\n    username: "+testutil.User+"\n    password: "+testutil.Password+"\ndevices:\n  - name: door\n    address: "+srv.URL+"\n"), "door.yaml", ".")
		if err != nil {
			t.Fatal(err)
		}
		logger := slog.New(slog.DiscardHandler)
		e, err := collector.New(cfg, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		reg := prometheus.NewRegistry()
		h := server.New(e, server.Options{Self: reg, Registerer: reg, Reload: func() error { return nil }, Logger: logger})
		slices.Sort(paths)
		paths = slices.Compact(paths)
		// The health endpoints last: /-/ready answers 200 only once a
		// scrape has had the exporter poll.
		health := func(p string) int {
			if strings.HasPrefix(p, "/-/") {
				return 1
			}
			return 0
		}
		slices.SortStableFunc(paths, func(a, b string) int { return health(a) - health(b) })
		if len(paths) < 4 {
			t.Errorf("only found the paths %q", paths)
		}
		for _, p := range paths {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p+"?target=door", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("GET %s?target=door = %d", p, rec.Code)
			}
		}
	})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// sdPaths are the paths of the HTTP service discovery URLs under v that
// point at the exporter.
func sdPaths(v any) []string {
	var out []string
	walkYAML(v, "", func(key string, v any) bool {
		if s, ok := v.(string); ok && key == "url" && strings.Contains(s, ":"+strconv.Itoa(exporterPort)) {
			if u, err := url.Parse(s); err == nil {
				out = append(out, u.Path)
			}
		}
		return true
	})
	return out
}

// collectMounts records in files where the container's volume mounts put
// ConfigMap and Secret keys: path -> "configmap NAME KEY" or "secret NAME
// KEY".
func collectMounts(d deployDoc, container any, files map[string]string) {
	volumes := list(get(d.v, "spec", "template", "spec"), "volumes")
	for _, m := range list(container, "volumeMounts") {
		for _, v := range volumes {
			if str(v, "name") != str(m, "name") {
				continue
			}
			sources := append(list(v, "projected", "sources"), map[string]any{"configMap": get(v, "configMap"), "secret": get(v, "secret")})
			for _, s := range sources {
				for _, kind := range []string{"configMap", "secret"} {
					src := get(s, kind)
					if src == nil {
						continue
					}
					name := orDefault(str(src, "name"), str(src, "secretName"))
					for _, it := range list(src, "items") {
						files[path.Join(str(m, "mountPath"), str(it, "path"))] = strings.ToLower(kind) + " " + name + " " + str(it, "key")
					}
				}
			}
		}
	}
}

// secretHasKey reports whether a Secret of that name with that key is
// under deploy/, as a manifest or a kustomize secretGenerator.
func secretHasKey(docs []deployDoc, name, key string) bool {
	for _, d := range docs {
		if d.kind() == "Secret" && str(d.v, "metadata", "name") == name {
			return get(d.v, "stringData", key) != nil || get(d.v, "data", key) != nil
		}
		for _, g := range list(d.v, "secretGenerator") {
			if str(g, "name") != name {
				continue
			}
			for _, f := range append(strs(g, "files"), strs(g, "literals")...) {
				if k, _, _ := strings.Cut(f, "="); k == key || path.Base(f) == key {
					return true
				}
			}
		}
	}
	return false
}
