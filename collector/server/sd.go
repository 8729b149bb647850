package server

import (
	"encoding/json"
	"net/http"

	"github.com/basip/basip_exporter/collector"
)

// sdGroup is one target group of Prometheus' HTTP service discovery.
type sdGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// sdHandler serves the configured devices in Prometheus' HTTP service
// discovery format, one group per device, so that Prometheus can scrape
// each through /probe as its own target, with its own up, timeout and
// hashmod sharding. The labels are meta labels (dropped after relabelling
// unless kept): __meta_basip_device, __meta_basip_address (no credential),
// __meta_basip_api_version (as configured, auto included, so that a
// detection never changes a target's labels), __meta_basip_api_family
// (the family in use, once known), __meta_basip_policy and
// __meta_basip_label_<name> for each configured label. The configured
// labels are not target labels since every series of /probe carries them.
func sdHandler(e *collector.Exporter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		targets := e.Targets()
		groups := make([]sdGroup, 0, len(targets))
		for _, t := range targets {
			labels := map[string]string{
				"__meta_basip_device":      t.Name,
				"__meta_basip_address":     t.Address,
				"__meta_basip_api_version": t.APIConfigured,
			}
			if t.APIFamily != "" {
				labels["__meta_basip_api_family"] = t.APIFamily
			}
			if t.Policy != "" {
				labels["__meta_basip_policy"] = t.Policy
			}
			for k, v := range t.Labels {
				labels["__meta_basip_label_"+k] = v
			}
			groups = append(groups, sdGroup{Targets: []string{t.Name}, Labels: labels})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(groups)
	})
}
