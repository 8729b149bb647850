package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/internal/testutil"
	"go.yaml.in/yaml/v3"
)

// manySets is a configuration of n credential sets, n policies and n
// devices, each device with its own set, policy and label name.
func manySets(n int) []byte {
	var b strings.Builder
	b.WriteString("credentials:\n")
	for i := range n {
		fmt.Fprintf(&b, "  set-%d:\n    username: admin\n    password: %s-%d\n", i, secretPw, i)
	}
	b.WriteString("policies:\n")
	for i := range n {
		fmt.Fprintf(&b, "  policy-%d:\n    transports: [tls]\n", i)
	}
	b.WriteString("devices:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: d%d\n    address: 10.%d.%d.%d\n    credentials: set-%d\n    policy: policy-%d\n    labels: {l%d: x}\n",
			i, i>>16, (i>>8)&255, i&255, i, i, i)
	}
	return []byte(b.String())
}

// parseTime is the least CPU time of three loads of data: CPU time, as a
// busy machine stretches the wall time of one run more than another's.
func parseTime(t testing.TB, data []byte) time.Duration {
	t.Helper()
	best := time.Duration(1 << 62)
	for range 3 {
		start := testutil.CPUTime()
		if _, err := Parse(data, "c.yaml", t.TempDir()); err != nil {
			t.Fatal(err)
		}
		best = min(best, testutil.CPUTime()-start)
	}
	return best
}

// TestLoadIsLinearInCredentialSets: four times the credential sets,
// policies and devices take about four times as long to load, not
// sixteen (each set and each policy looked its YAML node up by a walk of
// every set or policy: 10,000 sets took 0.9 s, 20,000 3.0 s, 40,000
// 11.6 s). The figures are logged; the bound allows for a busy machine.
func TestLoadIsLinearInCredentialSets(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 60,000 credential sets")
	}
	small, large := manySets(4000), manySets(16000)
	ts, tl := parseTime(t, small), parseTime(t, large)
	ratio := float64(tl) / float64(ts)
	t.Logf("4,000 sets, policies and devices: %v of CPU; 16,000: %v; ratio %.1f (linear 4, quadratic 16)", ts, tl, ratio)
	if ratio > 7 {
		t.Errorf("4x the credential sets took %.1fx as long", ratio)
	}
}

// BenchmarkLoadCredentialSets loads 10,000, 20,000 and 40,000 credential
// sets (with as many policies and devices), and reports the CPU time of
// the process (cpu-s/op, the garbage collector's included) beside the
// wall time, which a busy machine stretches. Run it with
// go test -run '^$' -bench LoadCredentialSets -benchtime 1x ./collector/config/
func BenchmarkLoadCredentialSets(b *testing.B) {
	for _, n := range []int{10000, 20000, 40000} {
		data := manySets(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			start := testutil.CPUTime()
			for b.Loop() {
				if _, err := Parse(data, "c.yaml", b.TempDir()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((testutil.CPUTime()-start).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// TestEntriesDecodeAsYAMLDoes: credential sets and policies decode to the
// same values, with the same errors, as yaml.v3's own map decoding with
// KnownFields does.
func TestEntriesDecodeAsYAMLDoes(t *testing.T) {
	type theirs struct {
		Credentials map[string]*Credential `yaml:"credentials"`
		Policies    map[string]*Policy     `yaml:"policies"`
	}
	type ours struct {
		Credentials CredentialSets `yaml:"credentials"`
		Policies    Policies       `yaml:"policies"`
	}
	for name, doc := range map[string]string{
		"good":           "credentials:\n  a: {username: u, password: p}\n  b:\n    username: v\n    password_file: f\npolicies:\n  p: {transports: [tls], firmware: {min: '3.9'}, registration_interval: {min: 30}}\n",
		"defined twice":  "credentials:\n  a: {username: u}\n  b: {username: v}\n  a: {username: w}\n",
		"unknown key":    "credentials:\n  a: {username: u, pasword: p}\npolicies:\n  p: {firmware: {mni: '3.9'}, transport: [tls]}\n",
		"wrong type":     "credentials:\n  a: {username: [u]}\n  b: pw-12345\npolicies:\n  p: {call_timeouts: [x], registration_interval: 5}\n",
		"not a mapping":  "credentials: [a, b]\npolicies: word\n",
		"null":           "credentials:\npolicies: ~\n",
		"empty entry":    "credentials:\n  a:\n  b: {}\n",
		"aliases":        "credentials:\n  a: &c {username: u, password: p}\n  b: *c\npolicies:\n  p: &p {transports: [tls]}\n  q: *p\n",
		"alias, unknown": "credentials:\n  a: &c {username: u, extra: 1}\n  b: *c\n",
		"numeric key":    "credentials:\n  1: {username: u}\n  0x1: {username: v}\n",
	} {
		t.Run(name, func(t *testing.T) {
			decode := func(v any) (string, error) {
				dec := yaml.NewDecoder(strings.NewReader(doc))
				dec.KnownFields(true)
				err := dec.Decode(v)
				var te *yaml.TypeError
				if errors.As(err, &te) {
					errs := slices.Clone(te.Errors)
					slices.Sort(errs)
					return strings.Join(errs, "\n"), nil
				}
				return "", err
			}
			var a theirs
			var b ours
			ea, erra := decode(&a)
			eb, errb := decode(&b)
			if ea != eb || (erra == nil) != (errb == nil) {
				t.Errorf("errors differ:\nyaml.v3: %q %v\nours:    %q %v", ea, erra, eb, errb)
			}
			if !reflect.DeepEqual(map[string]*Credential(b.Credentials), a.Credentials) || !reflect.DeepEqual(map[string]*Policy(b.Policies), a.Policies) {
				t.Errorf("values differ:\nyaml.v3: %+v %+v\nours:    %+v %+v", a.Credentials, a.Policies, b.Credentials, b.Policies)
			}
		})
	}
}
