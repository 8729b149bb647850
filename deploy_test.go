package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/server"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
)

// configPath is where every deployment example keeps the configuration.
const configPath = "/etc/basip_exporter/config.yaml"

// exporterFlags returns the binary's flags (from --help) and their
// defaults.
func exporterFlags(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command(exporterBinary(t), "--help").CombinedOutput()
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

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, file string) []*yaml.Node {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return yamlDocsOf(t, file, b)
}

func yamlDocsOf(t *testing.T, name string, b []byte) []*yaml.Node {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Errorf("%s: document %d: %v", name, len(docs)+1, err)
			return docs
		}
		docs = append(docs, &n)
	}
	if len(docs) == 0 {
		t.Errorf("%s: no YAML document", name)
	}
	return docs
}

// decodeYAML decodes a single-document YAML file into v.
func decodeYAML(t *testing.T, file string, v any) {
	t.Helper()
	docs := yamlDocs(t, file)
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents, want 1", file, len(docs))
	}
	if err := docs[0].Decode(v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// TestDeployYAMLParses parses every YAML file under deploy/, each of its
// documents, and the configuration files embedded in them.
func TestDeployYAMLParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir("deploy", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch filepath.Ext(p) {
		case ".yml", ".yaml":
			n++
			for _, doc := range yamlDocs(t, p) {
				var v any
				if err := doc.Decode(&v); err != nil || v == nil {
					t.Errorf("%s: %v (empty: %v)", p, err, v == nil)
				}
			}
		case ".json":
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if !json.Valid(b) {
				t.Errorf("%s is not valid JSON", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("only %d YAML files under deploy/", n)
	}
	var compose struct {
		Configs map[string]struct{ Content string } `yaml:"configs"`
	}
	decodeYAML(t, "deploy/docker-compose.yml", &compose)
	for name, c := range compose.Configs {
		if c.Content != "" {
			yamlDocsOf(t, "docker-compose.yml configs."+name, []byte(c.Content))
		}
	}
	var cm struct{ Data map[string]string }
	decodeYAML(t, "deploy/kubernetes/configmap.yaml", &cm)
	yamlDocsOf(t, "configmap.yaml config.yaml", []byte(cm.Data["config.yaml"]))
}

// invocation is one way a deployment example runs the exporter.
type invocation struct {
	where string
	args  []string
}

// checkInvocation checks an invocation's flags against the binary's and
// returns the port it listens on.
func checkInvocation(t *testing.T, flags map[string]string, inv invocation) int {
	t.Helper()
	listen := flags["web.listen-address"]
	for _, a := range inv.args {
		if !strings.HasPrefix(a, "--") {
			t.Errorf("%s: argument %q is not a --flag", inv.where, a)
			continue
		}
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if _, ok := flags[strings.TrimPrefix(name, "no-")]; !ok {
			t.Errorf("%s: --%s is not a flag of the exporter", inv.where, name)
		}
		switch name {
		case "config.file":
			if value != configPath {
				t.Errorf("%s: --config.file=%s, want %s", inv.where, value, configPath)
			}
		case "web.listen-address":
			listen = value
		}
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("%s: listen address %q: %v", inv.where, listen, err)
	}
	n, _ := strconv.Atoi(port)
	return n
}

// TestDeployMatchesExporter checks that the flags, ports and paths the
// Dockerfile and the examples under deploy/ use are the exporter's.
func TestDeployMatchesExporter(t *testing.T) {
	flags := exporterFlags(t)
	_, p, _ := net.SplitHostPort(flags["web.listen-address"])
	defaultPort, _ := strconv.Atoi(p)
	if defaultPort != 9875 {
		t.Fatalf("default listen address %q, want port 9875", flags["web.listen-address"])
	}
	if flags["config.file"] != "config.yaml" {
		t.Errorf("--config.file defaults to %q", flags["config.file"])
	}
	var paths []string // HTTP paths the examples scrape or probe

	t.Run("Dockerfile", func(t *testing.T) {
		b, err := os.ReadFile("Dockerfile")
		if err != nil {
			t.Fatal(err)
		}
		var entry, cmd []string
		var binary string
		exposed := false
		for _, inst := range dockerInstructions(string(b)) {
			keyword, rest, _ := strings.Cut(inst, " ")
			switch strings.ToUpper(keyword) {
			case "ENTRYPOINT", "CMD":
				var v []string
				if err := json.Unmarshal([]byte(rest), &v); err != nil {
					t.Fatalf("%s is not in exec form: %v", keyword, err)
				}
				if keyword == "CMD" {
					cmd = v
				} else {
					entry = v
				}
			case "EXPOSE":
				exposed = exposed || strings.Fields(rest)[0] == strconv.Itoa(defaultPort) || strings.Fields(rest)[0] == strconv.Itoa(defaultPort)+"/tcp"
			case "COPY":
				if f := strings.Fields(rest); len(f) == 3 && strings.HasPrefix(f[0], "--from=") {
					binary = f[2]
				}
			}
		}
		if !exposed {
			t.Errorf("the Dockerfile does not EXPOSE %d", defaultPort)
		}
		if len(entry) != 1 || entry[0] != binary {
			t.Errorf("ENTRYPOINT %q is not the copied binary %q", entry, binary)
		}
		if checkInvocation(t, flags, invocation{"Dockerfile CMD", cmd}) != defaultPort {
			t.Error("the container does not listen on the exposed port")
		}
		if !strings.Contains(strings.Join(cmd, " "), "--config.file="+configPath) {
			t.Errorf("CMD %q does not name %s", cmd, configPath)
		}
		// The `docker run` example mounts the config and the password
		// where the image and config.example.yaml expect them.
		var example struct {
			Credentials map[string]struct {
				PasswordFile string `yaml:"password_file"`
			}
		}
		decodeYAML(t, "config.example.yaml", &example)
		for _, mount := range []string{configPath, example.Credentials["default"].PasswordFile} {
			if !regexp.MustCompile(`-v "[^"]*:` + regexp.QuoteMeta(mount) + `:ro"`).Match(b) {
				t.Errorf("the docker run example does not mount %s", mount)
			}
		}
		if !regexp.MustCompile(`-p \d+:` + strconv.Itoa(defaultPort)).Match(b) {
			t.Errorf("the docker run example does not publish port %d", defaultPort)
		}
	})

	t.Run("systemd", func(t *testing.T) {
		const unit = "basip_exporter.service"
		b, err := os.ReadFile("deploy/systemd/" + unit)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string][]string{}
		var comments []string
		for _, line := range dockerInstructions(string(b)) { // same continuation and comment rules
			if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "[") {
				keys[k] = append(keys[k], v)
			}
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "#") {
				comments = append(comments, line)
			}
		}
		if len(keys["ExecStart"]) != 1 {
			t.Fatalf("ExecStart: %q", keys["ExecStart"])
		}
		exec := strings.Fields(keys["ExecStart"][0])
		if checkInvocation(t, flags, invocation{"ExecStart", exec[1:]}) != defaultPort {
			t.Errorf("the unit does not listen on %d", defaultPort)
		}
		if !strings.Contains(string(b), "install -m 0755 basip_exporter "+exec[0]) {
			t.Errorf("the installation comment does not install the binary ExecStart runs (%s)", exec[0])
		}
		if got := keys["ConfigurationDirectory"]; len(got) != 1 || "/etc/"+got[0] != path.Dir(configPath) {
			t.Errorf("ConfigurationDirectory=%q, want %s", got, path.Dir(configPath))
		}
		if got := keys["ExecReload"]; len(got) != 1 || !strings.Contains(got[0], "-HUP $MAINPID") {
			t.Errorf("ExecReload=%q does not send SIGHUP", got)
		}
		if got := keys["DynamicUser"]; len(got) != 1 || got[0] != "yes" {
			t.Errorf("DynamicUser=%q", got)
		}
		// LoadCredential=NAME:PATH is read by the service at
		// /run/credentials/UNIT/NAME, which the config must name.
		lc := keys["LoadCredential"]
		if len(lc) != 1 {
			t.Fatalf("LoadCredential: %q", lc)
		}
		name, src, _ := strings.Cut(lc[0], ":")
		if path.Dir(src) != path.Dir(configPath) {
			t.Errorf("LoadCredential reads %s, not from %s", src, path.Dir(configPath))
		}
		want := "password_file: /run/credentials/" + unit + "/" + name
		if !strings.Contains(strings.Join(comments, "\n"), want) {
			t.Errorf("the unit's comment does not tell the config to use %q", want)
		}
	})

	t.Run("kubernetes", func(t *testing.T) {
		var kust struct{ Resources []string }
		decodeYAML(t, "deploy/kubernetes/kustomization.yaml", &kust)
		for _, r := range kust.Resources {
			if _, err := os.Stat(filepath.Join("deploy/kubernetes", r)); err != nil {
				t.Errorf("kustomization: %v", err)
			}
		}
		type port struct {
			Name          string
			Port          int
			ContainerPort int `yaml:"containerPort"`
			TargetPort    any `yaml:"targetPort"`
		}
		type projection struct {
			Name  string
			Items []struct{ Key, Path string }
		}
		type probe struct {
			HTTPGet struct {
				Path string
				Port any
			} `yaml:"httpGet"`
		}
		var dep struct {
			Spec struct {
				Selector struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				}
				Template struct {
					Metadata struct{ Labels map[string]string }
					Spec     struct {
						Containers []struct {
							Name           string
							Command, Args  []string
							Ports          []port
							LivenessProbe  probe `yaml:"livenessProbe"`
							ReadinessProbe probe `yaml:"readinessProbe"`
							VolumeMounts   []struct {
								Name      string
								MountPath string `yaml:"mountPath"`
							} `yaml:"volumeMounts"`
						}
						Volumes []struct {
							Name      string
							Projected struct {
								Sources []struct {
									ConfigMap *projection `yaml:"configMap"`
									Secret    *projection
								}
							}
						}
					}
				}
			}
		}
		decodeYAML(t, "deploy/kubernetes/deployment.yaml", &dep)
		spec := dep.Spec.Template.Spec
		if len(spec.Containers) != 1 {
			t.Fatalf("%d containers", len(spec.Containers))
		}
		ctr := spec.Containers[0]
		if len(ctr.Command) > 0 {
			t.Errorf("command %q overrides the image's entrypoint", ctr.Command)
		}
		listen := checkInvocation(t, flags, invocation{"deployment.yaml args", ctr.Args})
		portNames := map[string]int{}
		for _, p := range ctr.Ports {
			portNames[p.Name] = p.ContainerPort
		}
		if len(ctr.Ports) != 1 || ctr.Ports[0].ContainerPort != listen {
			t.Errorf("container ports %+v, want the one it listens on (%d)", ctr.Ports, listen)
		}
		for _, pr := range []probe{ctr.LivenessProbe, ctr.ReadinessProbe} {
			if name, _ := pr.HTTPGet.Port.(string); portNames[name] == 0 {
				t.Errorf("probe port %v is not a container port", pr.HTTPGet.Port)
			}
			paths = append(paths, pr.HTTPGet.Path)
		}
		for k, v := range dep.Spec.Selector.MatchLabels {
			if dep.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("the selector %s=%s does not match the pod", k, v)
			}
		}
		// Where the config and the password file land in the container.
		files := map[string]string{} // path in the container -> "configmap NAME KEY" / "secret NAME KEY"
		for _, m := range ctr.VolumeMounts {
			for _, v := range spec.Volumes {
				if v.Name != m.Name {
					continue
				}
				for _, s := range v.Projected.Sources {
					if s.ConfigMap != nil {
						for _, it := range s.ConfigMap.Items {
							files[path.Join(m.MountPath, it.Path)] = "configmap " + s.ConfigMap.Name + " " + it.Key
						}
					}
					if s.Secret != nil {
						for _, it := range s.Secret.Items {
							files[path.Join(m.MountPath, it.Path)] = "secret " + s.Secret.Name + " " + it.Key
						}
					}
				}
			}
		}
		var cm struct {
			Metadata struct{ Name string }
			Data     map[string]string
		}
		decodeYAML(t, "deploy/kubernetes/configmap.yaml", &cm)
		var secret struct {
			Metadata   struct{ Name string }
			StringData map[string]string `yaml:"stringData"`
		}
		decodeYAML(t, "deploy/kubernetes/secret.yaml", &secret)
		var key string
		for k := range cm.Data {
			key = k
		}
		if len(cm.Data) != 1 || files[configPath] != "configmap "+cm.Metadata.Name+" "+key {
			t.Errorf("%s in the container is %q, want the ConfigMap's %q", configPath, files[configPath], key)
		}
		// The config in the ConfigMap loads, and its password_file is the
		// mounted Secret.
		var cmCfg struct {
			Credentials map[string]struct {
				PasswordFile string `yaml:"password_file"`
			}
		}
		if err := yaml.Unmarshal([]byte(cm.Data[key]), &cmCfg); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		y := cm.Data[key]
		for name, c := range cmCfg.Credentials {
			var secretKey string
			for k := range secret.StringData {
				secretKey = k
			}
			if files[c.PasswordFile] != "secret "+secret.Metadata.Name+" "+secretKey {
				t.Errorf("credentials %s: password_file %s is %q in the container, want the Secret's %q", name, c.PasswordFile, files[c.PasswordFile], secretKey)
			}
			local := filepath.Join(dir, "password")
			writeFile(t, local, "x\n")
			y = strings.ReplaceAll(y, c.PasswordFile, local)
		}
		if _, err := config.Parse([]byte(y), "configmap.yaml", dir); err != nil {
			t.Errorf("the ConfigMap's config does not load: %v", err)
		}

		var svc struct {
			Spec struct {
				Selector map[string]string
				Ports    []port
			}
		}
		decodeYAML(t, "deploy/kubernetes/service.yaml", &svc)
		for k, v := range svc.Spec.Selector {
			if dep.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("the Service selector %s=%s does not match the pods", k, v)
			}
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != defaultPort {
			t.Fatalf("Service ports %+v, want %d", svc.Spec.Ports, defaultPort)
		}
		if tp, _ := svc.Spec.Ports[0].TargetPort.(string); portNames[tp] == 0 {
			t.Errorf("Service targetPort %v is not a container port", svc.Spec.Ports[0].TargetPort)
		}
		var sm struct {
			Spec struct {
				Endpoints []struct {
					Port, Path  string
					Relabelings []struct {
						TargetLabel string `yaml:"targetLabel"`
						Replacement string
					}
				}
			}
		}
		decodeYAML(t, "deploy/kubernetes/servicemonitor.yaml", &sm)
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name {
			t.Fatalf("ServiceMonitor endpoints %+v, want the Service's port %q", sm.Spec.Endpoints, svc.Spec.Ports[0].Name)
		}
		paths = append(paths, sm.Spec.Endpoints[0].Path)
		job := ""
		for _, r := range sm.Spec.Endpoints[0].Relabelings {
			if r.TargetLabel == "job" {
				job = r.Replacement
			}
		}
		if job != "basip" {
			t.Errorf("the ServiceMonitor sets job=%q; the alert rules select job=\"basip\"", job)
		}
	})

	type scrapeConfig struct {
		JobName       string                       `yaml:"job_name"`
		MetricsPath   string                       `yaml:"metrics_path"`
		StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
	}
	type promConfig struct {
		RuleFiles     []string       `yaml:"rule_files"`
		ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
	}
	basipTarget := func(t *testing.T, where string, pc promConfig) string {
		t.Helper()
		for _, sc := range pc.ScrapeConfigs {
			if sc.JobName == "basip" {
				if sc.MetricsPath != "" {
					paths = append(paths, sc.MetricsPath)
				}
				if len(sc.StaticConfigs) == 1 && len(sc.StaticConfigs[0].Targets) == 1 {
					return sc.StaticConfigs[0].Targets[0]
				}
				t.Errorf("%s: job basip has targets %+v", where, sc.StaticConfigs)
				return ""
			}
		}
		t.Errorf("%s: no job basip (the alert rules select job=\"basip\")", where)
		return ""
	}

	t.Run("prometheus", func(t *testing.T) {
		var pc promConfig
		decodeYAML(t, "deploy/prometheus/prometheus.yml", &pc)
		if got := basipTarget(t, "prometheus.yml", pc); got != "localhost:"+strconv.Itoa(defaultPort) {
			t.Errorf("prometheus.yml scrapes %q, want localhost:%d", got, defaultPort)
		}
		for _, f := range pc.RuleFiles {
			if _, err := os.Stat(filepath.Join("deploy/prometheus", f)); err != nil {
				t.Errorf("rule_files: %v", err)
			}
		}
	})

	t.Run("compose", func(t *testing.T) {
		type service struct {
			Command    []string
			Entrypoint []string
			Ports      []string
			Volumes    []string
			Configs    []struct{ Source, Target string }
		}
		var compose struct {
			Services map[string]service
			Configs  map[string]struct{ Content string }
		}
		decodeYAML(t, "deploy/docker-compose.yml", &compose)
		var name string
		var exp service
		for n, s := range compose.Services {
			if strings.Contains(n, "basip") {
				name, exp = n, s
			}
		}
		if name == "" {
			t.Fatal("no exporter service")
		}
		if len(exp.Entrypoint) > 0 {
			t.Errorf("the exporter service overrides the entrypoint: %q", exp.Entrypoint)
		}
		listen := checkInvocation(t, flags, invocation{"compose command", exp.Command})
		published := false
		for _, p := range exp.Ports {
			published = published || strings.HasSuffix(p, ":"+strconv.Itoa(listen))
		}
		if !published {
			t.Errorf("the exporter service publishes %q, not the port it listens on (%d)", exp.Ports, listen)
		}
		// Every bind-mounted source exists; Prometheus' config (given
		// inline) scrapes the exporter service and loads the mounted rules.
		mounted := map[string]bool{}
		for _, s := range compose.Services {
			for _, v := range s.Volumes {
				parts := strings.Split(v, ":")
				if strings.HasPrefix(parts[0], ".") {
					if _, err := os.Stat(filepath.Join("deploy", parts[0])); err != nil {
						t.Errorf("volume %s: %v", v, err)
					}
					mounted[parts[1]] = true
				}
			}
		}
		prom := compose.Services["prometheus"]
		if len(prom.Configs) != 1 {
			t.Fatalf("prometheus configs %+v", prom.Configs)
		}
		var pc promConfig
		if err := yaml.Unmarshal([]byte(compose.Configs[prom.Configs[0].Source].Content), &pc); err != nil {
			t.Fatal(err)
		}
		if got, want := basipTarget(t, "compose prometheus config", pc), name+":"+strconv.Itoa(listen); got != want {
			t.Errorf("Prometheus scrapes %q, want %q", got, want)
		}
		for _, f := range pc.RuleFiles {
			if !mounted[f] {
				t.Errorf("rule file %s is not mounted", f)
			}
		}
		var provider struct {
			Providers []struct{ Options struct{ Path string } }
		}
		decodeYAML(t, "deploy/grafana/provisioning/dashboards/basip.yml", &provider)
		for _, p := range provider.Providers {
			if !mounted[p.Options.Path] {
				t.Errorf("the dashboards path %s is not mounted in compose", p.Options.Path)
			}
		}
	})

	t.Run("comments", func(t *testing.T) {
		// Commented examples run the exporter too: their flags must exist
		// and name the same config path.
		invRE := regexp.MustCompile(`basip_exporter((?:\s+--[\w.\-]+(?:=[^\s"'\]]*)?)+)`)
		cfgRE := regexp.MustCompile(`--config\.file=([^\s"'\]]+)`)
		files := []string{"Dockerfile", "deploy/docker-compose.yml", "deploy/systemd/basip_exporter.service"}
		k8s, _ := filepath.Glob("deploy/kubernetes/*.yaml")
		found := 0
		for _, f := range append(files, k8s...) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range invRE.FindAllStringSubmatch(string(b), -1) {
				checkInvocation(t, flags, invocation{f + ": " + strings.TrimSpace(m[0]), strings.Fields(m[1])})
				found++
			}
			for _, m := range cfgRE.FindAllStringSubmatch(string(b), -1) {
				if strings.Contains(m[1], "basip") && m[1] != configPath {
					t.Errorf("%s: --config.file=%s, want %s", f, m[1], configPath)
				}
			}
		}
		if found == 0 {
			t.Error("found no commented invocation; the pattern is broken")
		}
	})

	t.Run("paths", func(t *testing.T) {
		// The paths probed and scraped above are served.
		cfg, err := config.Parse([]byte("credentials: {}\ndevices: []\n"), "empty.yaml", ".")
		if err != nil {
			t.Fatal(err)
		}
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		e, err := collector.New(cfg, logger)
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		h := server.New(e, server.Options{Self: reg, Registerer: reg, Reload: func() error { return nil }, Logger: logger})
		if len(paths) < 4 {
			t.Errorf("only found the paths %q", paths)
		}
		for _, p := range paths {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
			if rec.Code != 200 {
				t.Errorf("GET %s = %d", p, rec.Code)
			}
		}
	})
}
