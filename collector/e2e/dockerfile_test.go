//go:build linux

package e2e

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// dockerBuild is the Dockerfile's `go build` with the test's build
// arguments substituted: its environment and its flags but -o.
type dockerBuild struct {
	env   []string
	flags []string
}

var (
	dockerArgRE     = regexp.MustCompile(`(?m)^ARG\s+(\w+)(?:=(\S*))?\s*$`)
	dockerGoBuildRE = regexp.MustCompile(`(?m)^RUN\s+((?:\w+=\S+\s+)*)go build\s+(.*)$`)
	ldflagsRE       = regexp.MustCompile(`-ldflags\s+"([^"]*)"`)
)

// readDockerBuild reads the Dockerfile's one RUN instruction that runs
// `go build`: the variable assignments before it, a quoted -ldflags, and
// plain flags; it must build the module root.
func readDockerBuild(root string) (dockerBuild, error) {
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return dockerBuild{}, err
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	vars := map[string]string{
		"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH,
		"VERSION": testVersion, "REVISION": testRevision, "BRANCH": testBranch, "BUILD_DATE": testDate,
	}
	for _, m := range dockerArgRE.FindAllStringSubmatch(text, -1) {
		if _, set := vars[m[1]]; !set {
			vars[m[1]] = strings.Trim(m[2], `"`)
		}
	}
	var unknown []string
	expand := func(s string) string {
		return os.Expand(s, func(k string) string {
			v, ok := vars[k]
			if !ok {
				unknown = append(unknown, k)
			}
			return v
		})
	}
	runs := dockerGoBuildRE.FindAllStringSubmatch(text, -1)
	if len(runs) != 1 {
		return dockerBuild{}, fmt.Errorf("%d RUN instructions run go build, want 1", len(runs))
	}
	d := dockerBuild{env: strings.Fields(expand(runs[0][1]))}
	rest := runs[0][2]
	ld := ldflagsRE.FindStringSubmatch(rest)
	if ld == nil {
		return dockerBuild{}, errors.New(`the go build has no -ldflags "..."`)
	}
	words := strings.Fields(strings.Replace(rest, ld[0], "", 1))
	pkg := ""
	for i := 0; i < len(words); i++ {
		switch {
		case words[i] == "-o":
			i++
		case strings.HasPrefix(words[i], "-"):
			d.flags = append(d.flags, expand(words[i]))
		default:
			pkg = words[i]
		}
	}
	d.flags = append(d.flags, "-ldflags", strings.Join(strings.Fields(expand(ld[1])), " "))
	if len(unknown) > 0 {
		return dockerBuild{}, fmt.Errorf("the go build uses $%s, not a build argument", strings.Join(unknown, ", $"))
	}
	if pkg != "." {
		return dockerBuild{}, fmt.Errorf("the go build builds %q, not the module root", pkg)
	}
	return d, nil
}

// TestDockerBuildIsStaticAndStamped checks that the Dockerfile builds with
// cgo off, -trimpath and the version stamped through its build arguments,
// and that the binary built that way (the one every test here runs) is
// static, carries no build path, and reports the version it was stamped
// with.
func TestDockerBuildIsStaticAndStamped(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	d, err := readDockerBuild(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(d.env, "CGO_ENABLED=0") {
		t.Errorf("the Dockerfile's build does not set CGO_ENABLED=0: %q", d.env)
	}
	if !slices.Contains(d.flags, "-trimpath") {
		t.Errorf("the Dockerfile's build has no -trimpath: %q", d.flags)
	}
	for name, value := range map[string]string{"Version": testVersion, "Revision": testRevision, "Branch": testBranch, "BuildDate": testDate} {
		if want := "-X github.com/prometheus/common/version." + name + "=" + value; !strings.Contains(d.flags[len(d.flags)-1], want) {
			t.Errorf("the Dockerfile's -ldflags do not stamp %q:\n%s", want, d.flags[len(d.flags)-1])
		}
	}

	bin := buildExporter(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: it is dynamically linked", p.Type)
		}
	}
	if f.Section(".dynamic") != nil {
		t.Error("the binary has a .dynamic section: it is dynamically linked")
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v (%v)", libs, err)
	}
	content, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(content, []byte(root)) {
		t.Errorf("the binary contains the build directory %s: -trimpath is not in effect", root)
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
