package config

import (
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// PrometheusScrapeInterval is Prometheus' default scrape interval. The
// exporter cannot know the interval it is scraped at, so a
// min_poll_interval longer than this is a warning: scrapes at the default
// interval would be served results of an earlier one.
const PrometheusScrapeInterval = time.Minute

// maxNamed is how many devices one warning names; the rest are counted.
const maxNamed = 3

// risks gathers, device by device, what loads but exposes a secret or
// defeats a setting; warn turns it into a few warnings however large the
// fleet.
type risks struct {
	basicHTTP map[string][]string // credential set: the devices it sends Basic to over http
	reuse     []Warning           // devices whose own min_poll_interval is too long
	reuseMore int
}

// device notes d's risks; node is its entry in v's file.
func (r *risks) device(v *validator, d *Device, node *yaml.Node) {
	where := fmt.Sprintf("device %q (%s:%d)", d.Name, v.file, fieldLine(node, "address"))
	if c := d.Credential; c.authSet && c.Auth == AuthBasic && d.URL.Scheme == "http" {
		if r.basicHTTP == nil {
			r.basicHTTP = map[string][]string{}
		}
		name := credentialName(d)
		r.basicHTTP[name] = append(r.basicHTTP[name], where)
	}
	if isSet(node, "min_poll_interval") && *d.MinPollInterval > PrometheusScrapeInterval {
		if len(r.reuse) == maxNamed {
			r.reuseMore++
			return
		}
		r.reuse = append(r.reuse, Warning{File: v.file, Line: fieldLine(node, "min_poll_interval"),
			What: fmt.Sprintf("device %q", d.Name), Field: "min_poll_interval", Err: reuseTooLong(*d.MinPollInterval)})
	}
}

// warn adds the warnings of the whole configuration to cfg: the global
// settings and credential sets (v is the main file's validator), then what
// the devices gathered.
func (r *risks) warn(v *validator, cfg *Config) {
	if g := child(v.root, "global"); isSet(g, "min_poll_interval") && *cfg.Global.MinPollInterval > PrometheusScrapeInterval {
		v.warnf(cfg, fieldLine(g, "min_poll_interval"), "global", "min_poll_interval", "%v", reuseTooLong(*cfg.Global.MinPollInterval))
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Credentials)) {
		c, node, what := cfg.Credentials[name], v.entry("credentials", name), fmt.Sprintf("credentials %q", name)
		if problem := exposedPasswordFile(c); problem != "" {
			v.warnf(cfg, fieldLine(node, "password_file"), what, "password_file", "password file %s %s", c.PasswordFile, problem)
		}
		if devices := r.basicHTTP[name]; len(devices) > 0 {
			v.warnf(cfg, fieldLine(node, "auth"), what, "auth",
				"basic sends the password unencrypted with every request, here over plain http to %s; give those devices https:// addresses", named(devices))
		}
	}
	cfg.Warnings = append(cfg.Warnings, r.reuse...)
	if r.reuseMore > 0 {
		v.warnf(cfg, 0, "", "min_poll_interval", "%d more devices set it longer than %v", r.reuseMore, PrometheusScrapeInterval)
	}
}

// reuseTooLong says what a min_poll_interval of d longer than
// PrometheusScrapeInterval does.
func reuseTooLong(d time.Duration) error {
	return fmt.Errorf("%v is longer than %v, Prometheus' default scrape interval (the exporter cannot know the interval it is scraped at): a scrape within it is served a poll up to %v old instead of a new one; set it just under the scrape interval",
		d, PrometheusScrapeInterval, d)
}

// exposedPasswordFile says how c's password file, once read, is readable
// by users other than the exporter's; empty when it is not. A symlink (a
// Kubernetes secret) is followed: the mode of the file read counts. Read
// by group is right when that is how this process reads it: another user
// owns the file, the group is the process's (a Kubernetes secret with
// fsGroup and mode 0440, or root:basip_exporter 0640).
func exposedPasswordFile(c *Credential) string {
	if c == nil || c.PasswordFile == "" || c.password == "" || runtime.GOOS == "windows" {
		return ""
	}
	st, err := os.Stat(c.PasswordFile)
	if err != nil {
		return "" // it was read a moment ago; a vanished file is the next load's error
	}
	switch perm := st.Mode().Perm(); {
	case perm&0o004 != 0:
		return fmt.Sprintf("is readable by every user (mode %04o); chmod 600 it, or 640 owned by root and the exporter's group", perm)
	case perm&0o040 != 0 && !readThroughGroup(st):
		return fmt.Sprintf("is readable by its group, which the exporter does not read it through (mode %04o); chmod 600 it", perm)
	}
	return ""
}

// named lists up to maxNamed of devices and counts the rest.
func named(devices []string) string {
	if len(devices) <= maxNamed {
		return strings.Join(devices, ", ")
	}
	return fmt.Sprintf("%s and %d more devices", strings.Join(devices[:maxNamed], ", "), len(devices)-maxNamed)
}
