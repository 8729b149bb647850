// Package collector turns a fleet of intercoms into Prometheus metrics. It
// owns the fleet: each configured device with the state it keeps across
// scrapes and reloads (its client with the cached token, counters, the last
// poll), the polling of devices within a scrape's deadline, and the metric
// families of the device series.
//
// # Code layout
//
// Each package has one job and imports only the packages listed after it;
// no package imports its parent.
//
//	main.go                  flags, logger, wiring, signals
//	collector                the fleet, its polling and the metric families   device, basip, config, policy, textformat
//	collector/server         the HTTP surface: /metrics, /probe, /sd, the     collector, config, device
//	                         pages, /debug, /config, /-/reload; its own
//	                         instrumentation
//	collector/device         what is known of an intercom, whoever made it:   (none)
//	                         settings, status, info, failure reasons, the
//	                         Client interface, Secret
//	collector/basip          the BAS-IP implementation of device.Client:      device
//	                         login, token, HTTP transport
//	collector/config         YAML, defaults, validation, reload               device
//	collector/policy         pure checks of settings against a policy and     device, config
//	                         the vendor's constraints
//	collector/textformat     the text exposition writer                       (none)
//	collector/simulator      simulated devices for tests and --demo           (none)
//	collector/e2e            tests of the built binary against real           (test only)
//	                         Prometheus, Alertmanager and Chromium
//	collector/loadtest       load measurement against json_exporter           (test only)
//	collector/internal/testutil  helpers shared by tests                      simulator
//
// # Why the device series bypass client_golang
//
// Exporter is a prometheus.Collector for the exporter's own metrics only.
// The device series are written by package textformat, because building
// them as const metrics through a registry costs most of the exporter's CPU
// at ten thousand devices. BenchmarkExposition compares the two on the same
// poll results; TestWriterMatchesClientGolang proves their output equal.
//
//	go test -run '^$' -bench 'Exposition' -benchmem ./collector/
package collector
