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
//	collector                the fleet, its polling and the metric families   config, device, pbx, policy, schedule,
//	                         (pbxs.go: the PBX view beside it)                textformat, vendors, internal/safetext
//	collector/server         the HTTP surface: /metrics, /probe, /sd, the     collector, config, device,
//	                         pages, /debug, /config, /-/reload; its own       internal/safetext
//	                         instrumentation
//	collector/device         what is known of an intercom, whoever made it:   (none)
//	                         settings, status, info, failure reasons, the
//	                         Client interface, Secret
//	collector/vendors        a device.Client per vendor, chosen by the        basip, config, devhttp, device,
//	                         configuration's vendor; the one boundary every   internal/safetext
//	                         answer crosses (text, proxy, accounts, states)
//	collector/basip          the BAS-IP client: login, token, API families    devhttp, device
//	collector/devhttp        the device HTTP transport every vendor shares:   device
//	                         one kept-alive connection, bounded bodies,
//	                         redirects, retries, Basic and Digest
//	collector/pbx            a PBX's side: SIP OPTIONS, and the contacts of   devhttp, device, internal/safetext
//	                         its registrar (Kamailio, Asterisk), bounded
//	collector/config         YAML, defaults, validation, reload               device
//	collector/policy         pure checks of settings against a policy and     config, device
//	                         the vendor's constraints
//	collector/schedule       when each poll runs: one per device at a time,   (none)
//	                         slots, deadlines, classes of devices
//	collector/textformat     the text exposition writer                       (none)
//	collector/simulator      simulated devices for tests and --demo, the      simulator/vendorsim, simulator/sipua
//	                         demo's PBX
//	collector/simulator/vendorsim  the other vendors' simulated devices       (none)
//	collector/simulator/sipua  a registering SIP user agent for the           (none)
//	                         simulated devices
//	collector/e2e            tests of the built binary against real           (test only)
//	                         Prometheus, Alertmanager and Chromium
//	collector/loadtest       load measurement against json_exporter           (test only)
//	collector/internal/safetext  escaping of device text for terminals and    (none)
//	                         pages
//	collector/internal/testutil, internal/rawdev  helpers shared by tests     simulator
//	collector/internal/kamailiotest  a real Kamailio for tests                 (none)
//
// # One scrape, file by file
//
//	server/handler.go    the budget (budget.go), then Exporter.PollFleet
//	exporter.go          PollFleet: the fleet of the configuration in force
//	poll.go              pollMembers: one job per device for the scheduler;
//	                     pollAndRecord: the poll (the client's requests) and
//	                     its record, once per poll
//	schedule/            who polls when (see its package documentation)
//	exporter.go          Poll.WriteTo: render into memory, then copy out
//	families.go          the families, sample by sample, through textformat
//
// A device's state: fleet.go (member, session, record), outcome.go (one
// poll's result).
//
// # Why the device series bypass client_golang
//
// Exporter is a prometheus.Collector for the exporter's own metrics only.
// The device series are written by package textformat, because building
// them as const metrics through a registry costs most of the exporter's CPU
// at ten thousand devices:
//
//	go test -run '^$' -bench 'Exposition' -benchmem ./collector/
//
// # Guarantees
//
// Tests prove each; the names change, the guarantees do not. `go test
// -race ./...` runs them all but the soak, the fuzzing and the long run of
// generated timelines, which `.ci/run` adds.
//
// **The fleet's safety.** A device never has two requests of the exporter
// at once: one poll per device address at a time, whatever the callers
// (scrapes, probes, debug views) and across reloads, even one that renames
// the device or changes its credentials. Polls in flight never exceed
// global.concurrency, across every caller and configuration. A result is
// served again within min_poll_interval, to any caller of the same session.
//
// **Deadlines.** A caller waits until its budget ends (budget.go: every
// margin in one table), never longer; the poll it started runs under the
// device's timeout for the others. A caller that stops waiting is served a
// result of its own (skipped, or a timeout while the poll was in flight)
// that is stored, shared and counted nowhere. How long an answer takes to
// write is learned by rendering into memory, never on the client's socket.
//
// **Silent devices.** However many devices stop answering and wherever they
// are listed, the devices that answer are polled: the scheduler places each
// device by how its last poll went, and silent ones never hold the slots
// the answering ones need (package schedule states the rule and its
// bounds).
//
// **Hostile devices.** Whatever a device answers, the scrape completes
// before Prometheus' timeout, the device is `basip_up 0` with a reason (1
// where its data is still usable), at most 1 MiB of a body is read, and no
// goroutine started for the poll outlives it. Malformed, truncated, deeply
// nested or wrongly typed JSON is `decode`; unknown and null fields are
// ignored and absent fields give no series; large bodies `too_large`;
// nothing or a trickle `timeout`; a closed connection, an echo or
// non-HTTP service `connection`; 5xx `http_status` after at most two
// retries; redirects to another host, of the login or of a request
// carrying the token are refused, and the other host gets no connection;
// a rejected login `auth`, with back-off; a bad certificate `tls`, with no
// request sent; hostile strings come out as a valid exposition, cut at 256
// bytes.
//
// **Secrets.** Passwords, their MD5 (either case), tokens and SIP passwords
// never appear in logs at any level, in metrics, on the pages, or in error
// messages; errors name the API path, never the URL with its query, and an
// error quoting what a device sent back has credential-shaped text
// replaced. Configuration errors name the file, line and field, never a
// value. Configuration secrets print and marshal as `<secret>`. `/probe`
// polls only configured devices.
//
// **Configuration input.** Every error names the file, the line, the entry
// and the field, and one load names every problem of every file. Every
// file the configuration names (itself, device files, password files, TLS
// files) is opened without blocking and must be a regular file after its
// symlinks (as Kubernetes mounts secrets) within a limit (32 MiB, 4 KiB
// for a password, 1 MiB for a TLS file): a named pipe or /dev/zero is an
// error naming the file, never its content. A device_files pattern that
// matches nothing is an error. YAML bombs are refused in bounded time and
// memory. A broken configuration never replaces a working one.
//
// **Reloads.** A reload is never queued (a second one while one runs is
// refused at once, 503 on /-/reload), a load that takes longer than a
// minute fails it, and SIGTERM or SIGINT shut down within the grace period
// whatever a reload does. A reload says how many devices it dropped.
//
// **Long runs.** A fleet that changes, misbehaves and has its passwords
// rotated for a minute ends with the goroutines and heap it started with
// (the soak, in `.ci/run`).
//
// **Static analysis.** `staticcheck` is clean (`.ci/run`).
package collector
