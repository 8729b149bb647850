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
//
// # Guarantees and the tests that prove them
//
// Each guarantee names the test that proves it. `go test -race ./...` runs them
// all but the soak and the fuzzing, which `.ci/run` adds.
//
// **Hostile devices.** Whatever a device answers, the scrape completes before
// Prometheus' timeout, the device is `basip_up 0` with the reason below (1 where
// its data is still usable), at most 1 MiB of a body is read, and no goroutine
// started for the poll outlives it: every case runs under goleak, and so does
// the whole `collector` package (`TestMain` in `collector/leak_test.go`).
//
//	| the device answers | result | test |
//	|---|---|---|
//	| malformed or truncated JSON, trailing garbage, HTML, an empty body with 200, `null`, an array, `"30"` for a number, a string for a bool, an array for a string or an object, a fraction, a number beyond int64, nesting deeper than 10 000 | `decode` | `TestBadAnswers` |
//	| unknown fields, `null` fields | up; absent fields give no series | `TestBadAnswers` |
//	| 2 MiB; 64 MiB with a Content-Length or chunked | `too_large`; the scrape allocates a few MiB (the bound is 16 MiB) | `TestBadAnswers`, `TestFailureReasons` |
//	| headers a byte at a time; a body slower than the deadline; nothing at all | `timeout`, at the device's deadline | `TestFailureReasons` |
//	| the connection closed mid-body; an echo service or a non-HTTP service on the address; nothing listening | `connection` | `TestFailureReasons` |
//	| 500 to every request | `http_status`, after at most two retries that fit in the deadline | `TestFailureReasons`, `TestServerErrorsAreRetried` |
//	| a redirect of the login, or of the request carrying the token, to another host; a redirect loop | `http_status`; the other host (a listener on 127.0.0.2 that records every byte) gets no connection at all; a loop stops after 3 requests | `TestFailureReasons` |
//	| 401 right after a fresh login, or after the re-login that follows a refused cached token; a login answering HTML, no token, or a number for it | `auth`, counted in `basip_auth_failures_total`; `decode` | `TestFailureReasons` |
//	| a certificate from an unknown CA, expired, or for another host | `tls`, and no HTTP request is sent | `TestTLSVerification` |
//	| strings with quotes, newlines, backslashes, invalid UTF-8, 800 bytes, or a forged series | up; a valid exposition with the exact values, invalid bytes replaced, values cut at 256 bytes | `TestHostileLabelValues` |
//
// **Secrets.** Passwords, their MD5 (either case) and tokens never appear in
// logs at any level, in metrics, on the status, debug and `/config` pages, or in
// error messages. Errors name the API path, never the URL with its query; an
// error that quotes what a device sent back (an echo service on the address
// returns the login query) has the hash and the token replaced by `<secret>`.
// Configuration errors name the file, line and field, never a value that could
// not be decoded, nor a password file's content.
// `TestSecretsNeverInMetricsOrLogs` (`collector/server`) serves the exporter's
// real routes with the promslog logger at debug level over devices that fail
// in every way above, with credentials from a password file and inline, and
// fetches `/metrics`, `/probe` and `/debug` of every device, `/`, `/config`,
// `/-/healthy`, `/-/ready` and `/-/reload` with a good configuration and with
// bad ones that quote a password; it adds the device statuses and debug
// reports in Go's formats, and searches all of it, the whole log included, for
// each password, its MD5 in both cases, the 7-character cut that YAML errors
// make of a value, each token the devices issued and the SIP password.
//
//   - Configuration secrets print and marshal as `<secret>` (`TestSecretNeverPrints`;
//     `FuzzParse`: an accepted configuration marshals without its passwords).
//   - `/probe` polls only configured devices (`TestProbeRefusesUnknownTargets`).
//
// **Configuration input.**
//
//   - Every error names the file, the line, the entry and the field
//     (`TestParseErrors`).
//   - A `password_file` that is missing, a directory, unreadable, not a regular
//     file (`/dev/zero`, a named pipe: refused without reading it), larger than
//     4 KiB or empty is an error naming the file, never its content; a symlink to
//     a file (as Kubernetes mounts secrets) works (`TestPasswordFileProblems`; the
//     unreadable case is skipped when the tests run as root, who reads a `chmod
//     000` file anyway).
//   - YAML bombs are refused without a panic in bounded time and memory: labels
//     fanned out by aliases ("excessive aliasing"), the billion laughs wherever
//     the configuration has lists or maps, 100 000-deep nesting, a 20 000-long
//     chain of anchors; at most 10 decoding errors are reported, since each costs
//     a walk of the document (`TestYAMLBombs`).
//   - 100 000 devices load in about 3 s, 13 s under the race detector
//     (`TestHundredThousandDevices` logs it).
//
// **Fuzzing** (`.ci/run` runs each target for 20 s; seeds in the packages'
// `testdata/fuzz/`): `FuzzDecodeSIPSettings` never panics, its errors never quote
// the body, and what it accepts marshals and decodes back to the same settings
// with the SIP password as `<secret>`. `FuzzParseAddress`: an accepted address is
// `http` or `https`, a lower-case host and a port from 1 to 65535, with no user
// information, path, query or fragment, and parsing its printed form gives it
// back (`h:080` is `h:80`). `FuzzParse` never panics and its errors never quote
// a password.
//
// **Long runs.** `TestSoak` (`BASIP_SOAK=60s`; `.ci/run` runs it for a minute
// under the race detector) scrapes 16 simulated devices while they join and
// leave the configuration, go off the network and come back on another port,
// misbehave in each way above, and have their password rotated (password file,
// then a reload through the Reloader). Goroutines and heap
// in use after GC end where they started (within 20 goroutines and 8 MiB), and
// no goroutine is left.
//
// **Fleet safety** (package collector unless named): one poll per device
// whatever the callers (TestConcurrentCallersShareOnePollPerDevice: 20
// scrapes, 20 probes and 20 debug views of devices answering after 200 ms,
// one request and one connection each, never two requests at once);
// min_poll_interval (TestMinPollIntervalReusesRecentResults); concurrency
// across callers (TestConcurrencyBoundsPollsAcrossCallers); reloads
// (TestReloadThatChangesNothingKeepsBackoffTokenAndConnection,
// TestReloadWithCorrectedPasswordTriesAtOnce,
// TestReloadClosesConnectionsOfRemovedAndMovedDevices); a dark building
// (TestDarkBuildingDoesNotBlindTheRest: 300 of 305 devices stop answering);
// the transport (package basip: TestTransportSkipsInformationalAnswers,
// TestTransportNeverTakesAnUnaskedAnswer,
// TestTransportNeverReusesAClosingConnection,
// TestTransportClosesIdleConnectionAfterTimeout, TestRedirects); a client
// that never reads (package server:
// TestClientThatNeverReadsCannotHoldAHandler).
//
// **Static analysis.** `staticcheck` v0.8.2 is clean (`.ci/run`).
package collector
