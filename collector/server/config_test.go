package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	promconfig "github.com/prometheus/common/config"
	"go.yaml.in/yaml/v3"
)

// clientCert returns a PEM certificate and its PEM private key.
func clientCert(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "basip-exporter-client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

func indent(s, by string) string {
	return by + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+by)
}

// TestConfigRedactsEverySecret loads a configuration with every kind of
// secret (inline password, password file, inline TLS client key) and checks
// the whole of /config for each.
func TestConfigRedactsEverySecret(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte(filePassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key := clientCert(t)
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte(cert), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	y := `global:
  timeout: 5s
credentials:
  default:
    username: admin
    password: "` + password + `"
  filed:
    username: operator
    password_file: pw
devices:
  - name: lobby-1
    address: https://192.0.2.10
    credentials: filed
    tls_config:
      ca_file: ca.pem
      server_name: lobby-1.example.com
      cert: |
` + indent(cert, "        ") + `
      key: |
` + indent(key, "        ") + `
    labels: {site: hq}
  - name: flat-101
    address: 192.0.2.11
    api_version: v0
`
	cfg, err := config.Parse([]byte(y), "test.yaml", dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	out, err := marshalConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	body := get200(t, newPages(&fakeSource{cfg: cfg}, PageOptions{}).configHandler(), "/config")
	if body != string(out) {
		t.Errorf("/config differs from MarshalConfig")
	}
	leaks := append(append(secretForms(password), secretForms(filePassword)...), key)
	for _, line := range strings.Split(strings.TrimSpace(key), "\n") {
		if !strings.HasPrefix(line, "-----") {
			leaks = append(leaks, line)
		}
	}
	for _, s := range leaks {
		if strings.Contains(body, s) {
			t.Errorf("/config shows a secret (%.12s...):\n%s", s, body)
		}
	}

	// The output is YAML that says where every secret was.
	var got struct {
		Credentials map[string]map[string]string `yaml:"credentials"`
		Devices     []struct {
			Name      string            `yaml:"name"`
			Address   string            `yaml:"address"`
			TLSConfig map[string]any    `yaml:"tls_config"`
			Labels    map[string]string `yaml:"labels"`
		} `yaml:"devices"`
	}
	if err := yaml.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("/config is not YAML: %v\n%s", err, body)
	}
	if p := got.Credentials["default"]["password"]; p != "<secret>" {
		t.Errorf("inline password shown as %q", p)
	}
	if p, ok := got.Credentials["filed"]["password"]; ok {
		t.Errorf("a password_file credential shows a password: %q", p)
	}
	if f := got.Credentials["filed"]["password_file"]; f != filepath.Join(dir, "pw") {
		t.Errorf("password_file shown as %q", f)
	}
	if len(got.Devices) != 2 {
		t.Fatalf("devices: %+v", got.Devices)
	}
	tc := got.Devices[0].TLSConfig
	if tc["key"] != "<secret>" || tc["cert"] != cert || tc["server_name"] != "lobby-1.example.com" || tc["ca_file"] != filepath.Join(dir, "ca.pem") {
		t.Errorf("tls_config shown as %v", tc)
	}
	if got.Devices[1].Address != "192.0.2.11" {
		t.Errorf("address shown as %q, want it as configured", got.Devices[1].Address)
	}
	// Round trip: the shown configuration is the loaded one, secrets aside.
	again, err := config.Parse([]byte(strings.ReplaceAll(strings.ReplaceAll(body, "password: <secret>", "password: x"), "key: <secret>", "key_file: key.pem")), "shown.yaml", dir)
	if err != nil {
		t.Fatalf("the shown configuration does not load: %v\n%s", err, body)
	}
	if len(again.Devices) != 2 || again.Devices[0].URL.String() != "https://192.0.2.10:443" || again.Global.Timeout != 5*time.Second {
		t.Errorf("round trip: %+v", again)
	}
}

// TestSecretFieldsHaveSecretTypes guards the configuration types: a field
// whose name says it holds a secret must have a type that marshals as
// <secret>, so a field added later cannot appear on /config in clear.
func TestSecretFieldsHaveSecretTypes(t *testing.T) {
	secretTypes := map[reflect.Type]bool{
		reflect.TypeFor[device.Secret]():     true,
		reflect.TypeFor[promconfig.Secret](): true,
	}
	seen := map[reflect.Type]bool{}
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || tag == "-" {
				continue
			}
			if tag == "" {
				tag = strings.ToLower(f.Name)
			}
			name := strings.ToLower(tag)
			secretish := (strings.Contains(name, "pass") || strings.Contains(name, "secret") || strings.Contains(name, "token") || name == "key" || strings.HasSuffix(name, "_key")) &&
				!strings.HasSuffix(name, "_file") && !strings.HasSuffix(name, "_ref") &&
				name != "password_exposed" // a policy rule's value (forbidden), not a secret
			if secretish && f.Type.Kind() == reflect.String && !secretTypes[f.Type] {
				t.Errorf("%s.%s (yaml %q) is a %s; use device.Secret so /config shows <secret>", path, f.Name, tag, f.Type)
			}
			walk(path+"."+tag, f.Type)
		}
	}
	walk("config", reflect.TypeFor[config.Config]())
	if !seen[reflect.TypeFor[promconfig.TLSConfig]()] || !seen[reflect.TypeFor[config.Credential]()] {
		t.Error("the walk missed tls_config or credentials")
	}
}
