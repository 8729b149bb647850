package collector

import (
	"encoding/json"
	"net/http"
)

// sdGroup is one target group of Prometheus' HTTP service discovery.
type sdGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// SDHandler serves the configured devices in Prometheus' HTTP service
// discovery format, one group per device, so that Prometheus can scrape
// each through /probe as its own target, with its own up, timeout and
// hashmod sharding. The labels are meta labels (dropped after relabelling
// unless kept): __meta_basip_device, __meta_basip_address (no credential),
// __meta_basip_api_version, __meta_basip_policy and
// __meta_basip_label_<name> for each configured label. The configured
// labels are not target labels since every series of /probe carries them.
func (e *Exporter) SDHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		f := e.fleet.Load()
		groups := make([]sdGroup, 0, len(f.devices))
		for _, d := range f.devices {
			labels := map[string]string{
				"__meta_basip_device":      d.name,
				"__meta_basip_address":     d.cfg.URL.String(),
				"__meta_basip_api_version": d.cfg.APIVersion,
			}
			if p := d.cfg.PolicyRef; p != nil {
				labels["__meta_basip_policy"] = p.Name
			}
			for k, v := range d.cfg.Labels {
				labels["__meta_basip_label_"+k] = v
			}
			groups = append(groups, sdGroup{Targets: []string{d.name}, Labels: labels})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(groups)
	})
}
