// Command mizuchi-uploadr is an upload-only S3 proxy: clients upload with the ordinary S3 API, the
// proxy authenticates them, re-signs each request for the real S3 upstream and splices the body
// socket to socket. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mizuchi/uploadr/server"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("mizuchi-uploadr", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: mizuchi-uploadr -config FILE [flags]\n\nFlags override the configuration file:\n")
		fs.PrintDefaults()
	}
	flags := server.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg := &server.Config{}
	if flags.ConfigPath != "" {
		c, err := server.LoadConfig(flags.ConfigPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cfg = c
	}
	if err := flags.Apply(cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "invalid configuration:\n%v\n", err)
		return 1
	}
	if flags.Check {
		fmt.Println("configuration ok")
		return 0
	}
	log, err := server.NewLogger(cfg.Log, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		log.Error("exit", "err", err)
		return 1
	}
	return 0
}
