// Command basip_exporter exports the SIP configuration of BAS-IP intercoms
// to Prometheus.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/server"
	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	webflag "github.com/prometheus/exporter-toolkit/web/kingpinflag"
)

const name = "basip_exporter"

// releaseVersion is this source's release, the version of a build made
// without the release's -ldflags (`go build`, `go install`) and without a
// module version of its own.
const releaseVersion = "0.1.0"

// defaultGCPercent replaces Go's default GOGC of 100. Most of the heap is
// long-lived per-device state (clients, the last poll of each device), so
// letting the heap grow to twice of it before a collection wastes memory:
// at 10,000 devices GOGC 100 peaked at 111 MiB RSS, 75 at 94-95 MiB, for
// about 5% more CPU (collector/loadtest has the figures and the command).
// GOGC in the environment takes precedence.
const defaultGCPercent = 75

func setGCPercent() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// stampVersion fills in the version when the build did not set it: the
// module's version for `go install ...@vX.Y.Z`, else releaseVersion.
func stampVersion() {
	if version.Version != "" {
		return
	}
	version.Version = releaseVersion
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version.Version = strings.TrimPrefix(bi.Main.Version, "v")
	}
}

func main() { os.Exit(run()) }

func run() int {
	stampVersion()
	setGCPercent()
	var (
		configFile    = kingpin.Flag("config.file", "Configuration file.").Default("config.yaml").String()
		configCheck   = kingpin.Flag("config.check", "Validate the configuration file, print \"ok\" or every problem found, and exit: 0 ok, 1 errors, 2 warnings only.").Bool()
		allowDrop     = kingpin.Flag("config.allow-device-drop", "Accept a configuration reload that removes more than half of the devices in use (refused by default: a device_files glob that matches nothing would stop the watch of the fleet).").Bool()
		demo          = kingpin.Flag("demo", "Serve a simulated fleet of BAS-IP devices on 127.0.0.1 instead of the configured one.").Bool()
		demoPort      = kingpin.Flag("demo.first-port", fmt.Sprintf("With --demo: the port on 127.0.0.1 of the first simulated device; the other devices, then the Ufanet device's status and the demo PBX (SIP on UDP, its registrar on TCP), take the %d ports after it, listed at start (their username %s, password %s); 0 picks free ports.", simulator.DemoPorts()-1, simulator.DemoUsername, simulator.DemoPassword)).Default("0").Int()
		checkDevices  = kingpin.Flag("check.device", "Poll the named configured device (repeatable; \"all\" for every one) once, print what was found, and exit 0 if every one is up, else 1.").Strings()
		timeoutOffset = kingpin.Flag("scrape.timeout-offset", "Offset to subtract from Prometheus' scrape timeout.").Default("0.5s").Duration()
		webFlags      = webflag.AddFlags(kingpin.CommandLine, ":9875")
		logConfig     = &promslog.Config{}
	)
	promslogflag.AddFlags(kingpin.CommandLine, logConfig)
	kingpin.Version(version.Print(name))
	kingpin.HelpFlag.Short('h')
	kingpin.Parse()
	logger := promslog.New(logConfig)

	if *configCheck {
		return check(*configFile)
	}
	load := func() (*config.Config, error) { return config.Load(*configFile) }
	if *demo {
		fleet, err := simulator.StartDemoWith(simulator.DemoOptions{FirstPort: *demoPort})
		if err != nil {
			logger.Error("cannot start the demo fleet", "err", err)
			return 1
		}
		defer fleet.Close()
		logDemo(logger, fleet)
		load = func() (*config.Config, error) { return config.Parse(fleet.Config, "demo", ".") }
	}
	cfg, err := load()
	if err != nil {
		logger.Error("cannot load the configuration", "err", err)
		return 1
	}
	exporter, err := collector.New(cfg, logger)
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	if len(*checkDevices) > 0 {
		defer exporter.Close()
		return checkDevice(exporter, *checkDevices)
	}
	logger.Info("starting "+name, "version", version.Info(), "devices", exporter.Devices())
	config.LogWarnings(logger, cfg)

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector(name),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		exporter,
	)
	reloader := config.NewReloader(load, exporter.Apply, reg, logger)
	reloader.InForce(cfg)
	if !*allowDrop {
		reloader.RefuseDeviceDrop(cfg)
	}
	srv := &http.Server{
		Handler: server.New(exporter, server.Options{
			TimeoutOffset: *timeoutOffset,
			Self:          reg,
			Registerer:    reg,
			Reload:        reloader.Reload,
			Logger:        logger,
			Pages: server.PageOptions{
				Name:        "BAS-IP Exporter",
				Description: "Prometheus exporter for the SIP configuration of BAS-IP intercoms",
				Version:     version.Info(),
			},
		}),
		ReadHeaderTimeout: 10 * time.Second,
		// Idle keep-alive connections of scrapers and browsers are closed
		// after this; each handler sets its own write deadline.
		IdleTimeout: 2 * time.Minute,
	}
	if *demo {
		logger.Info("demo fleet running; open the exporter in a browser", "url", demoURL(*webFlags.WebListenAddresses))
	}
	stopped := make(chan struct{})
	go handleSignals(srv, reloader, logger, stopped)
	if err := web.ListenAndServe(srv, webFlags, logger); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("server failed", "err", err)
		return 1
	}
	<-stopped // Serve returns at once on Shutdown; wait for the scrapes in flight
	return 0
}

// Exit codes of --config.check.
const (
	checkOK       = 0
	checkErrors   = 1
	checkWarnings = 2
)

// check implements --config.check: errors and warnings go to stderr, one a
// line; "ok" to stdout only when there is neither.
func check(path string) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return checkErrors
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(os.Stderr, "warning: "+w.String())
	}
	if len(cfg.Warnings) > 0 {
		return checkWarnings
	}
	fmt.Println("ok")
	return checkOK
}

// checkDevice implements --check.device: each device is polled once and
// reported on stdout; the exit code is 0 when every one is up.
func checkDevice(e *collector.Exporter, names []string) int {
	reports, err := e.Check(context.Background(), names)
	if err != nil && len(reports) == 0 {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := 0
	for _, r := range reports {
		if r == nil {
			code = 1
			continue
		}
		if err := e.WriteReport(os.Stdout, r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if r.Error != "" {
			code = 1
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}

// shutdownGrace is how long scrapes in flight get to finish after SIGTERM
// or SIGINT before they are cancelled.
const shutdownGrace = 5 * time.Second

// handleSignals reloads on SIGHUP and shuts down gracefully on SIGTERM or
// SIGINT. A reload runs on a goroutine of its own, so a shutdown never
// waits for one; the two kinds of signal have a channel each, so a burst
// of SIGHUPs cannot crowd out a SIGTERM.
func handleSignals(srv *http.Server, r *config.Reloader, logger *slog.Logger, stopped chan<- struct{}) {
	defer close(stopped)
	hup, term := make(chan os.Signal, 1), make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	for {
		select {
		case <-hup:
			go reloadOnSignal(r, logger)
		case s := <-term:
			logger.Info("shutting down", "signal", s.String())
			ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
			cancel()
			return
		}
	}
}

// reloadOnSignal reloads for SIGHUP; Reload logs how it went.
func reloadOnSignal(r *config.Reloader, logger *slog.Logger) {
	if err := r.Reload(); errors.Is(err, config.ErrReloadInProgress) {
		logger.Warn("SIGHUP ignored: a reload is in progress")
	}
}

// logDemo lists where the demo's devices answer, so that a configuration
// of one's own can name them.
func logDemo(logger *slog.Logger, fleet *simulator.Demo) {
	for _, d := range fleet.Devices {
		args := []any{"device", d.Name, "vendor", d.Vendor, "address", d.URL}
		if d.StatusPort != 0 {
			args = append(args, "status_port", d.StatusPort)
		}
		logger.Info("demo device", args...)
	}
	if fleet.PBX != nil {
		logger.Info("demo PBX", "pbx", "pbx-demo", "sip", "udp://"+fleet.PBX.SIPAddr, "registrar", fleet.PBX.RPCURL)
	}
}

func demoURL(addrs []string) string {
	addr := ":9875"
	if len(addrs) > 0 {
		addr = addrs[0]
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}
