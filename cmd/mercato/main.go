// Command mercato is the one binary of the mercato e-commerce platform: the
// HTTP API, the web UI, the outbox relay and the event consumers
// (`mercato serve`), and the operator's sub-commands (migrate, admin,
// version). See `mercato --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		os.Exit(exitCode(err)) // run has reported it
	}
}
