package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"mercato/internal/accounts"
	"mercato/internal/platform/bus/natsbus"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/module"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// serveConfig is everything `mercato serve` is told by flags and environment.
type serveConfig struct {
	storeFlags
	addr                string
	natsURL             string
	natsListen          string
	redisURL            string
	webhookAllowPrivate bool
	demo                bool
	logLevel            string
	staffMFA            string
	shutdownTimeout     time.Duration
	relayPoll           time.Duration
	modules             string

	bootstrapEmail, bootstrapPassword string
}

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve [flags]", "Run the shop: HTTP API, outbox relay and event consumers.\nStops cleanly on SIGINT/SIGTERM.")
	var c serveConfig
	c.storeFlags.register(fs)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&c.natsURL, "nats-url", "", "external NATS URL (nats://…); empty runs NATS JetStream embedded under --data-dir")
	fs.StringVar(&c.natsListen, "nats-listen", "", "embedded NATS: also listen for NATS clients on this address (none by default)")
	fs.StringVar(&c.redisURL, "redis-url", "", "Redis URL (redis://…) for a cache shared by replicas; checked by /readyz")
	fs.BoolVar(&c.webhookAllowPrivate, "webhook-allow-private", false, "allow webhook URLs that resolve to loopback, private or link-local addresses")
	fs.BoolVar(&c.demo, "demo", false, "seed demo data and print the demo logins")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.staffMFA, "staff-mfa", "optional", "staff multi-factor authentication: optional or required")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long a clean stop may take to drain requests")
	fs.DurationVar(&c.relayPoll, "relay-poll", time.Second, "outbox relay fallback polling interval")
	fs.StringVar(&c.modules, "modules", "", "comma-separated modules to run (their API, consumers and jobs); empty runs all: "+strings.Join(moduleNames(), ","))
	if done, err := helpOK(parse(fs, args, getenv, stdout)); done {
		return err
	}
	if c.staffMFA != "optional" && c.staffMFA != "required" {
		return fmt.Errorf("%w: --staff-mfa must be optional or required", errUsage)
	}
	if err := checkModuleNames(parseModules(c.modules)); err != nil {
		return fmt.Errorf("%w: --modules: %v", errUsage, err)
	}
	c.bootstrapEmail = getenv("MERCATO_BOOTSTRAP_ADMIN_EMAIL")
	c.bootstrapPassword = getenv("MERCATO_BOOTSTRAP_ADMIN_PASSWORD")

	logger := newLogger(stderr, c.logLevel)
	slog.SetDefault(logger)
	a, err := newApp(ctx, c, logger, stdout)
	if err != nil {
		return err
	}
	return a.serve(ctx)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// app is one running mercato process: its stores, bus, background workers
// and HTTP server, wired in one readable place.
type app struct {
	cfg      serveConfig
	log      *slog.Logger
	out      io.Writer
	db       *sqldb.DB
	bus      *natsbus.Bus
	relay    *outbox.Relay
	runner   *inbox.Runner
	monitor  *inbox.Monitor
	batcher  *groupcommit.Batcher
	idem     *web.Idempotency
	router   *web.Router
	jobs     *jobs.Runner // the periodic jobs of the modules this process runs
	accounts *accounts.Service
	handler  http.Handler
}

func newApp(ctx context.Context, c serveConfig, logger *slog.Logger, out io.Writer) (a *app, err error) {
	a = &app{cfg: c, log: logger, out: out}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if a.db, err = c.storeFlags.open(ctx, nil); err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if a.bus, err = natsbus.Open(ctx, natsbus.Config{
		URL:        c.natsURL,
		DataDir:    filepath.Join(c.dataDir, "nats"),
		ListenAddr: c.natsListen,
	}); err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	a.relay = outbox.NewRelay(a.db, a.bus, outbox.RelayConfig{
		PollInterval: c.relayPoll,
		SyncInterval: a.bus.SyncInterval(),
		Logger:       logger,
		Registerer:   reg,
	})
	a.monitor = inbox.NewMonitor(a.db, a.bus)
	a.batcher = groupcommit.New(a.db, groupcommit.Config{Logger: logger})
	a.idem = web.NewIdempotency(a.db, web.IdempotencyConfig{})

	p := module.Platform{DB: a.db, Write: a.batcher, Idem: a.idem, Logger: logger, Registerer: reg}
	sh, err := newShop(p, a.monitor, shopConfig{staffMFARequired: c.staffMFA == "required"})
	if err != nil {
		return nil, err
	}
	run, err := module.Select(sh.modules, parseModules(c.modules))
	if err != nil {
		return nil, fmt.Errorf("%w: --modules: %v", errUsage, err)
	}
	acc := sh.accounts
	a.accounts = acc
	if c.bootstrapEmail != "" {
		created, err := acc.BootstrapAdmin(ctx, c.bootstrapEmail, c.bootstrapPassword)
		if err != nil {
			return nil, fmt.Errorf("bootstrap admin: %w", err)
		}
		if created {
			logger.Info("bootstrap admin created", "email", c.bootstrapEmail)
		}
	}
	var consumers []inbox.Consumer
	periodic := []jobs.Job{{Name: "web.idempotency-prune", Every: time.Hour, Run: a.idem.Prune}}
	for _, m := range run {
		consumers = append(consumers, m.Consumers...)
		periodic = append(periodic, m.Jobs...)
	}
	if a.jobs, err = jobs.New(a.db, jobs.Config{Logger: logger, Registerer: reg}, periodic...); err != nil {
		return nil, err
	}
	a.runner = inbox.NewRunner(a.db, a.bus, inbox.RunnerConfig{Logger: logger, Registerer: reg}, consumers...)
	if c.demo {
		if err := seedDemo(ctx, acc, out); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}

	a.router = web.NewRouter(web.Config{Logger: logger, Registerer: reg, Gatherer: reg, Auth: acc,
		Service: "mercato", Version: version})
	for _, m := range run {
		for _, r := range m.Routes {
			a.router.Handle(r)
		}
	}
	checks := map[string]func(context.Context) error{
		"database": a.db.Ping,
		"bus":      a.bus.Ping,
	}
	if c.redisURL != "" {
		checks["redis"] = redisPing(c.redisURL)
	}
	a.router.HandleOps(checks)
	// Browsers' cross-origin writes are refused (cookie sessions); API clients
	// that send no Origin/Sec-Fetch-Site headers pass.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		web.Error(w, r, errs.E("web.CrossOrigin", errs.Forbidden, "cross-origin request refused"))
	}))
	a.handler = cop.Handler(a.router)
	return a, nil
}

// serve runs the HTTP server and the background workers until ctx ends,
// then stops in order: stop accepting and drain requests, stop consumers,
// flush the relay, close the stores.
func (a *app) serve(ctx context.Context) error {
	defer a.close()
	ln, err := net.Listen("tcp", a.cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext: func(net.Listener) context.Context {
			return outbox.WithWaker(context.Background(), a.relay)
		},
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(a.out, "mercato %s listening on http://%s (%s, %s)\n", version, ln.Addr(), a.db.Engine(), busKind(a.cfg.natsURL))

	// Events appended by consumers and background jobs wake the relay too.
	bg, stopBG := context.WithCancel(outbox.WithWaker(context.Background(), a.relay))
	relayCtx, stopRelay := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.runner.Run(bg); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Error("consumers stopped", "err", err)
		}
	})
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		if err := a.relay.Run(relayCtx); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Error("relay stopped", "err", err)
		}
	}()
	wg.Go(func() {
		if err := a.accounts.RunInvalidations(bg); err != nil {
			a.log.Error("token cache invalidations stopped", "err", err)
		}
	})
	wg.Go(func() {
		if err := a.jobs.Run(bg); err != nil {
			a.log.Error("periodic jobs stopped", "err", err)
		}
	})

	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	select {
	case err = <-srvErr:
	case <-ctx.Done():
	}
	a.log.Info("stopping")
	shutCtx, cancel := context.WithTimeout(context.Background(), a.cfg.shutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(shutCtx); serr != nil {
		a.log.Warn("drain incomplete", "err", serr)
	}
	stopBG()
	wg.Wait()
	a.batcher.Close()
	stopRelay()
	<-relayDone
	if ferr := a.relay.Flush(shutCtx); ferr != nil {
		a.log.Error("relay flush", "err", ferr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	a.log.Info("stopped")
	return err
}

func (a *app) close() {
	if a.idem != nil {
		a.idem.Close()
	}
	if a.bus != nil {
		a.bus.Close()
	}
	if a.db != nil {
		a.db.Close()
	}
}

func busKind(natsURL string) string {
	if natsURL == "" {
		return "embedded NATS JetStream"
	}
	return "NATS " + strings.SplitN(natsURL, "@", 2)[len(strings.SplitN(natsURL, "@", 2))-1]
}
