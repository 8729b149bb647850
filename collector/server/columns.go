package server

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
)

// column is one column of the landing page's device table. A column whose
// cells are empty for every device is left out, so a column for something
// only some configurations have shows only where it means something.
//
// Adding a column is one line here.
type column struct {
	Key    string // the cells' data-col attribute
	Header string
	Cell   func(s collector.DeviceStatus, now time.Time) cell
}

var columns = []column{
	{"device", "Device", deviceCell},
	// The configured labels' columns come here; see labelColumns.
	{"state", "State", stateCell},
	{"down_since", "Down since", downSinceCell},
	{"sip", "SIP", func(s collector.DeviceStatus, _ time.Time) cell { return boolCell(s.SIPEnabled, "enabled", "disabled") }},
	{"transport", "Transport", transportCell},
	{"registration", "Registration", registrationCell},
	{"password", "SIP password", passwordCell},
	{"api", "API", apiCell},
	{"firmware", "Firmware", func(s collector.DeviceStatus, _ time.Time) cell { return cell{Text: s.Firmware} }},
	{"policy", "Policy", policyCell},
	{"error", "Last error", errorCell},
	{"last_poll", "Last poll", lastPollCell},
}

// maxLabelColumns is how many label names get a column each; a fleet with
// more has one column of every device's labels instead, since the table
// costs a cell per device and column (3,000 label names over 3,000
// devices took 3 s and 850 MB a request).
const maxLabelColumns = 32

// labelColumns are one column for each configured label name, in order,
// or, beyond maxLabelColumns names, one column of all of a device's labels.
func labelColumns(names []string) []column {
	if len(names) > maxLabelColumns {
		return []column{{"labels", "Labels", labelsCell}}
	}
	out := make([]column, len(names))
	for i, n := range names {
		out[i] = column{"label_" + n, n, func(s collector.DeviceStatus, _ time.Time) cell { return cell{Text: s.Labels[n]} }}
	}
	return out
}

// deviceVendors maps each configured device's name to its vendor.
func deviceVendors(cfg *config.Config) map[string]string {
	out := make(map[string]string, len(cfg.Devices))
	for _, d := range cfg.Devices {
		out[d.Name] = d.Vendor
	}
	return out
}

func setOf(m map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, v := range m {
		out[v] = true
	}
	return out
}

// vendorColumn shows each device's vendor, in a fleet of more than BAS-IP
// devices (mixed); a BAS-IP-only fleet's page stays as it was.
func vendorColumn(vendors map[string]string, mixed bool) column {
	return column{"vendor", "Vendor", func(s collector.DeviceStatus, _ time.Time) cell {
		if !mixed {
			return cell{}
		}
		return cell{Text: vendors[s.Name], Href: "./?vendor=" + url.QueryEscape(vendors[s.Name]), Title: "Show this vendor's devices only"}
	}}
}

// vendorAware gives the API column the vendor: other vendors have no API
// family (Sokol shows its revision), only their auth.
func vendorAware(cols []column, vendors map[string]string) []column {
	out := slices.Clone(cols)
	for i, c := range out {
		if c.Key != "api" {
			continue
		}
		base := c.Cell
		out[i].Cell = func(s collector.DeviceStatus, now time.Time) cell {
			if v := vendors[s.Name]; v != "" && v != config.VendorBASIP {
				return cell{Text: s.APIFamily, Note: s.Auth}
			}
			return base(s, now)
		}
	}
	return out
}

// labelsCell is a device's labels, name=value, sorted by name.
func labelsCell(s collector.DeviceStatus, _ time.Time) cell {
	pairs := make([]string, 0, len(s.Labels))
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		if v := s.Labels[k]; v != "" {
			pairs = append(pairs, k+"="+v)
		}
	}
	return cell{Text: strings.Join(pairs, ", ")}
}

// cell is one table cell. An empty Text shows as a dash.
type cell struct {
	Text  string
	Href  string // makes Text a link
	Class string // good, bad, warn or empty
	Note  string // a second, smaller line
	Title string // tooltip
	// Sort is what the column sorts by, when not Text (times, say).
	Sort string
}

// sortKey is what c sorts by.
func (c cell) sortKey() string {
	if c.Sort != "" {
		return c.Sort
	}
	return c.Text
}

func (c cell) empty() bool { return c.Text == "" && c.Note == "" }

func state(s collector.DeviceStatus) string {
	switch {
	case !s.Polled:
		return "pending"
	case s.Up:
		return "up"
	}
	return "down"
}

func deviceCell(s collector.DeviceStatus, _ time.Time) cell {
	return cell{
		Text:  s.Name,
		Href:  "debug?device=" + url.QueryEscape(s.Name),
		Note:  s.Address,
		Title: "Poll this device now and show every request",
	}
}

func stateCell(s collector.DeviceStatus, _ time.Time) cell {
	switch state(s) {
	case "up":
		return cell{Text: "up", Class: "good"}
	case "down":
		return cell{Text: "down", Class: "bad"}
	}
	return cell{Text: "not polled yet", Title: "The table fills in when /metrics or /probe is scraped"}
}

// boolCell shows a *bool: yes, no, or empty when nil.
func boolCell(b *bool, yes, no string) cell {
	switch {
	case b == nil:
		return cell{}
	case *b:
		return cell{Text: yes, Class: "good"}
	}
	return cell{Text: no, Class: "bad"}
}

func transportCell(s collector.DeviceStatus, _ time.Time) cell {
	switch {
	case s.Transport == "":
		return cell{}
	case slices.Contains(device.Transports, s.Transport):
		return cell{Text: s.Transport}
	}
	return cell{Text: s.Transport, Class: "warn", Title: "Not one of the documented transports " + strings.Join(device.Transports, ", ")}
}

func errorCell(s collector.DeviceStatus, _ time.Time) cell {
	if s.Reason == "" && s.LastError == "" {
		return cell{}
	}
	return cell{Text: device.Reason(s.Reason).Description(), Note: s.LastError, Class: "bad", Title: "reason=" + s.Reason}
}

func lastPollCell(s collector.DeviceStatus, now time.Time) cell {
	if !s.Polled {
		return cell{}
	}
	return cell{
		Text:  ago(now.Sub(s.LastPoll)),
		Note:  "at " + s.LastPoll.UTC().Format("15:04:05") + " UTC, took " + seconds(s.LastDuration),
		Title: s.LastPoll.UTC().Format(time.RFC3339Nano),
		Sort:  s.LastPoll.UTC().Format(time.RFC3339Nano),
	}
}

func downSinceCell(s collector.DeviceStatus, now time.Time) cell {
	if s.DownSince.IsZero() {
		return cell{}
	}
	return cell{
		Text:  "for " + strings.TrimSuffix(ago(now.Sub(s.DownSince)), " ago"),
		Note:  "since " + s.DownSince.UTC().Format("2006-01-02 15:04:05") + " UTC",
		Class: "bad",
		Sort:  s.DownSince.UTC().Format(time.RFC3339Nano),
	}
}

// ago says how long ago something was, to the second.
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds ago", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}

// policyCell shows compliance with the device's policy and the rules it
// violates.
func policyCell(s collector.DeviceStatus, _ time.Time) cell {
	c := boolCell(s.PolicyCompliant, "compliant", "violated")
	if c.empty() {
		return c
	}
	c.Note = s.Policy
	if len(s.Violations) > 0 {
		c.Note = s.Policy + ": " + strings.Join(s.Violations, ", ")
	}
	return c
}

// registrationCell shows the SIP registration status the device reports.
func registrationCell(s collector.DeviceStatus, _ time.Time) cell {
	switch s.Registration {
	case "":
		return cell{}
	case "ok":
		return cell{Text: "ok", Class: "good"}
	case "error":
		return cell{Text: "error", Class: "bad", Title: "SIP is enabled but the registration failed"}
	case "offline":
		return cell{Text: "offline", Class: "warn", Title: "SIP is switched off"}
	case "unsupported":
		return cell{Text: "unsupported", Title: "The device has no SIP status endpoint (HTTP 404); asked again after an hour"}
	}
	return cell{Text: s.Registration, Class: "warn", Title: "Not one of the documented states OK, ERROR, OFFLINE"}
}

// passwordCell marks a device whose settings answer carries the SIP
// password in clear; the password itself is never shown.
func passwordCell(s collector.DeviceStatus, _ time.Time) cell {
	if !s.PasswordExposed {
		return cell{}
	}
	return cell{Text: "exposed", Class: "bad",
		Title: "The SIP settings answer carries the SIP password in clear (panels before firmware 3.9.2: CVE-2024-39220)"}
}

// apiCell shows the API family in use, and whether it was found by
// api_version auto.
func apiCell(s collector.DeviceStatus, _ time.Time) cell {
	switch {
	case !s.Polled:
		return cell{}
	case !s.APIAuto():
		return cell{Text: s.APIFamily, Note: s.Auth}
	case s.APIFamily == "":
		return cell{Text: "auto", Note: s.Auth, Title: "api_version auto: not found yet"}
	}
	return cell{Text: s.APIFamily, Note: "auto, " + s.Auth, Title: "api_version auto: found by the exporter"}
}
