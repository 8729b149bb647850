package collector

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/internal/safetext"
)

// WriteText writes the report for a reader at a terminal (--check.device):
// the result, the API family and authentication, every request, how each
// endpoint went, the decoded answers (the SIP password as <secret>), the
// policy's verdict and the series. Every character that is not
// printable (an ESC sequence in the firmware, a carriage return in the
// proxy) is written escaped, \x1b, so the device's bytes cannot drive the
// terminal; one-line values are escaped whole, line breaks and all.
func (r *DebugReport) WriteText(w io.Writer) error {
	var b strings.Builder
	state := "up"
	if r.Error != "" {
		state = "down: " + safetext.Escape(r.Error)
	}
	fmt.Fprintf(&b, "== %s (%s): %s\n", r.Name, r.Address, state)
	family := r.APIFamily
	if family == "" {
		family = "not found"
	}
	if r.APIAuto() {
		family += " (api_version auto)"
	}
	fmt.Fprintf(&b, "API family:     %s\nAuthentication: %s\nPoll:           %s, %s\n", family, r.Auth, r.Served, r.Duration.Round(1e6))
	b.WriteString("Requests:\n")
	if len(r.Requests) == 0 {
		b.WriteString("  none\n")
	}
	for _, q := range r.Requests {
		status := "no answer"
		if q.Status != 0 {
			status = fmt.Sprint(q.Status)
		}
		fmt.Fprintf(&b, "  %s %s: %s, %d attempt(s), %s", q.Method, q.Path, status, q.Attempts, q.Duration.Round(1e5))
		if q.Error != "" {
			b.WriteString(", " + safetext.Escape(q.Error))
		}
		b.WriteString("\n")
	}
	b.WriteString("Endpoints:\n")
	for ep, name := range device.Endpoints {
		fmt.Fprintf(&b, "  %-9s %s\n", name+":", r.Endpoints[ep])
	}
	for _, a := range []struct {
		title string
		v     any
		set   bool
	}{{"SIP settings", r.Settings, r.Settings != nil}, {"SIP status", r.Status, r.Status != nil}, {"Device info", r.Info, r.Info != nil}} {
		if !a.set {
			continue
		}
		var js strings.Builder
		enc := json.NewEncoder(&js)
		enc.SetEscapeHTML(false)
		enc.SetIndent("  ", "  ")
		if err := enc.Encode(a.v); err != nil { // the SIP password marshals as <secret>
			return err
		}
		fmt.Fprintf(&b, "%s:\n  %s", a.title, js.String())
	}
	switch {
	case r.Policy == "":
		b.WriteString("Policy:         none\n")
	case !r.PolicyChecked:
		fmt.Fprintf(&b, "Policy:         %s: not checked (no settings read)\n", r.Policy)
	case len(r.Violations) == 0:
		fmt.Fprintf(&b, "Policy:         %s: compliant\n", r.Policy)
	default:
		fmt.Fprintf(&b, "Policy:         %s: violated: %s\n", r.Policy, strings.Join(r.Violations, ", "))
	}
	b.WriteString("Series:\n")
	for line := range strings.SplitSeq(strings.TrimSuffix(r.Series, "\n"), "\n") {
		if !strings.HasPrefix(line, "#") {
			b.WriteString("  " + line + "\n")
		}
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, safetext.EscapeLines(b.String()))
	return err
}
