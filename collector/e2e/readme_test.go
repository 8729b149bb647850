package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/simulator"
)

// maxReadmeWords bounds the README: what a user needs to run the
// exporter; how it works inside is under docs/.
const maxReadmeWords = 2500

// TestReadmeForUsers: the README stays within its length, and the demo it
// describes is the one --demo starts (its devices and ports).
func TestReadmeForUsers(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Fields(string(b))
	readme := strings.Join(words, " ") // line breaks fall anywhere
	if n := len(words); n > maxReadmeWords {
		t.Errorf("README.md has %d words, at most %d: move internals to docs/", n, maxReadmeWords)
	}
	demo, err := simulator.StartDemo()
	if err != nil {
		t.Fatal(err)
	}
	defer demo.Close()
	numbers := []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
		"twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"}
	n := len(demo.Devices)
	if n >= len(numbers) || !strings.Contains(readme, "`--demo` starts "+numbers[n]+" simulated devices") {
		t.Errorf("the README does not say --demo starts %d devices", n)
	}
	vendors := len(demo.VendorServers)
	if !strings.Contains(readme, "("+numbers[n-vendors]+" BAS-IP") {
		t.Errorf("the README does not say the demo has %d BAS-IP devices", n-vendors)
	}
	last, status, pbx := 19100+simulator.DemoPorts()-3, 19100+simulator.DemoPorts()-2, 19100+simulator.DemoPorts()-1
	if want := fmt.Sprintf("19100-%d (the Ufanet status port %d, the demo PBX %d)", last, status, pbx); !strings.Contains(readme, want) {
		t.Errorf("the README's demo ports are not %q", want)
	}
}
