// Command mizuchi-uploadr is an upload-only S3 proxy: clients upload with the ordinary S3 API, the
// proxy authenticates them, re-signs each request for the real S3 upstream and splices the body
// socket to socket. See README.md.
//
// Signals: SIGTERM or SIGINT drains (/readyz 503 at once, uploads in flight get -drain-timeout,
// then exit 0; a second one cuts the drain short). SIGHUP reloads the buckets of the -config file;
// a bad file is logged and the running configuration stays.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/mizuchi/uploadr/internal/buildinfo"
	"github.com/mizuchi/uploadr/server"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is the whole program; it returns the exit code: 0 after a drain (or -check: a valid
// configuration), 1 when the configuration is invalid or serving failed, 2 for a command-line
// error (a bad flag, no configuration, a -config file that cannot be read).
func run(args []string, stdout, stderr io.Writer) int {
	// Catch the signals before anything else, so an early SIGHUP does not kill the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	fs := flag.NewFlagSet("mizuchi-uploadr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := server.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %q\n", fs.Args())
		return 2
	}
	if flags.Version {
		fmt.Fprintf(stdout, "mizuchi-uploadr %s (revision %s, %s %s/%s)\n", buildinfo.Version, buildinfo.Revision,
			buildinfo.GoVersion(), runtime.GOOS, runtime.GOARCH)
		return 0
	}
	load := func() (*server.Config, error) { return flags.Config(os.LookupEnv) }
	cfg, err := load()
	if err != nil {
		fmt.Fprintf(stderr, "invalid configuration:\n%v\n", err)
		if errors.Is(err, server.ErrConfigUnreadable) || errors.Is(err, server.ErrNoConfig) {
			return 2 // a usage error: no configuration given, or a file that cannot be read
		}
		return 1
	}
	if flags.Check {
		fmt.Fprintln(stdout, "configuration ok")
		for _, w := range cfg.AuthzWarnings(context.Background()) {
			fmt.Fprintln(stdout, "warning: "+w)
		}
		for _, l := range cfg.Routes() {
			fmt.Fprintln(stdout, "  "+l)
		}
		for _, w := range cfg.CheckWarnings() { // an unreachable JWKS: a warning, not an error
			fmt.Fprintln(stdout, "warning: "+w)
		}
		return 0
	}
	log, err := server.NewLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	srv, err := server.New(cfg, log, stdout)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if n, ok := spareProc(srv.EventLoops(), runtime.GOMAXPROCS(0), os.LookupEnv); ok {
		was := runtime.GOMAXPROCS(n)
		log.Info("GOMAXPROCS: one more than the event loops", "gomaxprocs", n, "was", was, "event_loops", srv.EventLoops())
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		terms := 0
		for sig := range sigs {
			switch sig {
			case syscall.SIGHUP:
				if flags.ConfigPath == "" {
					if srv.TLSAddr() != "" {
						log.Info("SIGHUP: reloading the TLS certificate")
						_ = srv.ReloadCertificate()
						continue
					}
					log.Warn("SIGHUP: no -config file to reload")
					continue
				}
				log.Info("SIGHUP: reloading", "config", flags.ConfigPath)
				_ = srv.Reload(load)
			default:
				terms++
				if terms == 1 {
					log.Info("signal: draining", "signal", sig.String())
					stop()
				} else {
					log.Warn("second signal: cutting the drain short", "signal", sig.String())
					srv.CutDrain()
				}
			}
		}
	}()
	if err := srv.Run(ctx); err != nil {
		log.Error("exit", "err", err)
		return 1
	}
	return 0
}

// spareProc returns the GOMAXPROCS to run with (set true) when the event loops would hold every P:
// one more than the loops (none run without the plain listener: then nothing changes). The
// GOMAXPROCS environment variable, when set (not empty), is left to decide.
//
// An event loop waits for its sockets in epoll_wait, a system call, holding its P (the runtime's
// licence to run Go code). With one loop per P, waiting loops hold every P; the runtime's monitor
// (sysmon) then finds no idle P, takes a P from a loop that waits longer than 20 µs, wakes a
// thread to look for other work, and the loop takes a P back on its return. Measured at 1 MiB
// PUTs that churn was ~5% of the proxy's CPU (sysmon 6.7% → 1.8% of the profile, futex calls
// 0.79 → 0.27 per request), and the goroutines of the copy path (https bodies, bodies above
// inline_body_max) ran behind it: with one P to spare, 16 concurrent 1 GiB uploads over TLS
// took 0.83–0.85× the CPU per GiB (bench/results/2026-12-02-spare-proc.md). An idle P makes
// sysmon leave waiting loops alone, and the goroutines get a P without taking one from a loop.
func spareProc(loops, gomaxprocs int, env func(string) (string, bool)) (int, bool) {
	if v, _ := env("GOMAXPROCS"); v != "" || loops < gomaxprocs {
		return gomaxprocs, false
	}
	return loops + 1, true
}
