package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"mercato/internal/accounts"
	"mercato/internal/catalog"
	"mercato/internal/catalog/search"
	"mercato/internal/notifications"
	"mercato/internal/payments/stripepay"
	"mercato/internal/platform/bus/natsbus"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/module"
	"mercato/internal/platform/notify"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/secret"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// serveConfig is everything `mercato serve` is told by flags and environment.
type serveConfig struct {
	storeFlags
	addr                string
	metricsAddr         string
	natsURL             string
	natsListen          string
	redisURL            string
	webhookAllowPrivate bool
	connectorDir        string
	payInlineSandbox    bool // --pay-inline-sandbox: the load generator's reference (see bench_pay.go)
	profileStatements   bool // --profile-statements: the writer's statements by query on /metrics (see bench_server.go)
	demo                bool
	logLevel            string
	logFormat           string
	staffMFA            string
	shutdownTimeout     time.Duration
	relayPoll           time.Duration
	modules             string
	search              string // the product search index: bleve or postgres
	sandboxCarrierStep  time.Duration
	smtpURL, smtpFrom   string // --smtp-url, --smtp-from: the notifications' relay
	smtpTLS             string // --smtp-tls: auto, require or off
	staffAlertEmail     string
	trackingURL         string

	bootstrapEmail, bootstrapPassword string
	secret                            string // MERCATO_SECRET: keys what idempotency stores
	sandboxCarrierSecret              string // MERCATO_SANDBOX_CARRIER_SECRET: signs the sandbox carrier's webhooks
	stripeKey, stripeWebhookSecret    string // MERCATO_STRIPE_KEY, MERCATO_STRIPE_WEBHOOK_SECRET: Stripe payments
}

const serveSynopsis = `Run the shop: the HTTP API, the outbox relay and the event consumers.
With neither --database-url nor --nats-url everything lives under --data-dir
(SQLite and NATS JetStream run in-process); one server at a time may use a
data directory (a second one is refused), while migrate and admin work beside
it. Stops cleanly on SIGINT/SIGTERM.

Environment only:
  MERCATO_BOOTSTRAP_ADMIN_EMAIL, MERCATO_BOOTSTRAP_ADMIN_PASSWORD
        create this admin at start-up when no user holds the admin role yet
  MERCATO_SECRET
        the server secret (hex or base64, at least 32 bytes) that keys what
        idempotency records; without it one is generated and kept in the data
        directory (SQLite) or the database (PostgreSQL): set it in production,
        the same on every replica
  MERCATO_SANDBOX_CARRIER_SECRET
        the secret the sandbox carrier's webhooks are signed with (HMAC-SHA256,
        X-Carrier-Signature); unset, every sandbox webhook is refused
  MERCATO_STRIPE_KEY, MERCATO_STRIPE_WEBHOOK_SECRET
        enable the Stripe payment method (secret API key, webhook signing
        secret) instead of the sandbox method`

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve [flags]", serveSynopsis)
	var c serveConfig
	c.storeFlags.register(fs)
	logLevel := &choiceFlag{value: "info", choices: []string{"debug", "info", "warn", "error"}}
	logFormat := &choiceFlag{value: "json", choices: []string{"json", "text"}}
	staffMFA := &choiceFlag{value: "optional", choices: []string{"optional", "required"}}
	searchKind := searchFlag(fs)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "HTTP listen address of the API")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve GET /metrics (unauthenticated) on this separate address only, e.g. 127.0.0.1:9090;\nempty serves it on --addr")
	fs.StringVar(&c.natsURL, "nats-url", "", "external NATS URL (nats://…); empty runs NATS JetStream embedded under --data-dir")
	fs.StringVar(&c.natsListen, "nats-listen", "", "embedded NATS: also listen for NATS clients on this address (none by default)")
	fs.StringVar(&c.redisURL, "redis-url", "", "Redis URL (redis://[user:password@]host[:port][/db]): the catalog's cache of public product\ndocuments, shared by replicas (default: in-process); also checked by /readyz")
	fs.BoolVar(&c.webhookAllowPrivate, "webhook-allow-private", false, "let webhook URLs resolve to loopback, private and link-local addresses (local development and tests only)")
	fs.StringVar(&c.connectorDir, "connector-dir", "", "the directory under which file_drop connectors write their files (one directory each);\nempty is <--data-dir>/connectors")
	fs.BoolVar(&c.payInlineSandbox, "pay-inline-sandbox", false, "benchmarks only: POST /api/v1/orders/{id}/pay charges the orders module's inline test sandbox\n"+
		"(tok_success, tok_decline) inside the pay unit, without the payments module: the reference server of\n"+
		"`mercato bench checkout --pay-reference`; refused with MERCATO_STRIPE_KEY")
	fs.BoolVar(&c.profileStatements, "profile-statements", false, "benchmarks only: count the SQLite writer's statements by query text too, on /metrics\n"+
		"(mercato_db_writer_statements_by_query_total): the breakdown `mercato bench checkout` prints")
	fs.BoolVar(&c.demo, "demo", false, "create demo users (one per role) and print their logins, and a demo catalogue")
	fs.Var(logLevel, "log-level", "log `level`: debug, info, warn or error")
	fs.Var(logFormat, "log-format", "log `format` on standard error: json or text")
	fs.Var(staffMFA, "staff-mfa", "staff multi-factor authentication `mode`: optional or required")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long a clean stop may take to drain requests")
	fs.DurationVar(&c.relayPoll, "relay-poll", time.Second, "outbox relay fallback polling interval")
	fs.DurationVar(&c.sandboxCarrierStep, "sandbox-carrier-step", 5*time.Second, "how long the sandbox carrier takes per tracking stage (label_created, picked_up, …, delivered)")
	smtpTLS := &choiceFlag{value: "auto", choices: []string{"auto", "require", "off"}}
	fs.StringVar(&c.smtpURL, "smtp-url", "", "SMTP relay for customer e-mail, smtp://[user:pass@]host[:port] (port 587, AUTH PLAIN);\nempty records every notification as skipped")
	fs.StringVar(&c.smtpFrom, "smtp-from", "", "the From address of the shop's e-mail (required with --smtp-url)")
	fs.Var(smtpTLS, "smtp-tls", "STARTTLS `mode`: auto (when the relay offers it), require (refuse to send without it) or off")
	fs.StringVar(&c.staffAlertEmail, "staff-alert-email", "", "where staff alerts go (low stock, one per SKU per hour); empty sends none")
	fs.StringVar(&c.trackingURL, "tracking-url", "", "the tracking link of the shipped e-mail, {order}, {carrier} and {number} filled in;\nempty is http://<--addr>/api/v1/orders/{order}/tracking")
	fs.StringVar(&c.modules, "modules", "", "comma-separated modules to run (their API, consumers and jobs); empty runs all: "+strings.Join(moduleNames(), ","))
	if done, err := helpOK(parse(fs, args, getenv, stdout)); done {
		return err
	}
	c.logLevel, c.logFormat, c.staffMFA, c.search = logLevel.value, logFormat.value, staffMFA.value, searchKind.value
	c.smtpTLS = smtpTLS.value
	if c.smtpURL != "" && c.smtpFrom == "" {
		return usagef(fs, "--smtp-from is required with --smtp-url")
	}
	if err := checkSearch(c.search, c.storeFlags); err != nil {
		return usagef(fs, "%v", err)
	}
	if err := checkModuleNames(parseModules(c.modules)); err != nil {
		return usagef(fs, "--modules: %v", err)
	}
	c.secret = getenv("MERCATO_SECRET")
	c.sandboxCarrierSecret = getenv("MERCATO_SANDBOX_CARRIER_SECRET")
	c.bootstrapEmail = getenv("MERCATO_BOOTSTRAP_ADMIN_EMAIL")
	c.bootstrapPassword = getenv("MERCATO_BOOTSTRAP_ADMIN_PASSWORD")
	c.stripeKey, c.stripeWebhookSecret = getenv("MERCATO_STRIPE_KEY"), getenv("MERCATO_STRIPE_WEBHOOK_SECRET")
	if c.payInlineSandbox && c.stripeKey != "" {
		return usagef(fs, "--pay-inline-sandbox is refused with MERCATO_STRIPE_KEY: a shop taking real money has no test sandbox")
	}

	logger := newLogger(stderr, c.logLevel, c.logFormat)
	slog.SetDefault(logger)
	a, err := newApp(ctx, c, logger, stdout)
	if err != nil {
		return err
	}
	return a.serve(ctx)
}

// choiceFlag is a string flag that accepts only one of its choices, so a
// mistyped value is refused like any bad flag.
type choiceFlag struct {
	value   string
	choices []string
}

func (f *choiceFlag) String() string {
	if f == nil {
		return ""
	}
	return f.value
}

func (f *choiceFlag) Set(s string) error {
	if !slices.Contains(f.choices, s) {
		return fmt.Errorf("want %s", strings.Join(f.choices, ", "))
	}
	f.value = s
	return nil
}

// newLogger returns the process logger writing to w; level is one of
// debug, info, warn, error (anything else is info) and format json or text.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// app is one running mercato process: its stores, bus, background workers
// and HTTP server, wired in one readable place.
type app struct {
	cfg        serveConfig
	log        *slog.Logger
	out        io.Writer
	lock       *dirLock // the data directory's lock; nil when nothing lives there
	db         *sqldb.DB
	bus        *natsbus.Bus
	relay      *outbox.Relay
	runner     *inbox.Runner
	monitor    *inbox.Monitor
	batcher    *groupcommit.Batcher
	idem       *web.Idempotency
	router     *web.Router
	jobs       *jobs.Runner // the periodic jobs of the modules this process runs
	accounts   *accounts.Service
	catalog    *catalog.Service // nil when this process does not run the catalog
	notify     *notify.Hub      // every module cache's invalidations (one LISTEN connection)
	index      search.Index     // the product search index; nil when this process does not run the catalog
	redis      func() error     // closes the catalog's Redis cache; nil without --redis-url
	closeFiles func() error     // closes the file_drop connectors' files
	handler    http.Handler
	metrics    http.Handler // GET /metrics for --metrics-addr; nil without it
}

// newApp opens the stores and the bus and wires the modules. On error it has
// closed whatever it opened and returns a nil *app.
func newApp(ctx context.Context, c serveConfig, logger *slog.Logger, out io.Writer) (_ *app, err error) {
	a := &app{cfg: c, log: logger, out: out}
	defer func() { // a, not the result: the result is nil on error
		if err != nil {
			a.close()
		}
	}()
	// The data directory is locked first: this process touches nothing under
	// it (no migration, no JetStream store) before it knows it may run there.
	if use := c.dataDirUse(); len(use) > 0 {
		dir := absDir(c.dataDir)
		if a.lock, err = lockDataDir(dir); err != nil {
			return nil, err
		}
		logger.Info("data directory", "dir", dir, "holds", strings.Join(use, ", "),
			"reset", "stop the server, then delete the directory")
	}
	if a.db, err = c.storeFlags.open(ctx, nil); err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if a.bus, err = natsbus.Open(ctx, natsbus.Config{
		URL:        c.natsURL,
		DataDir:    filepath.Join(c.dataDir, "nats"),
		ListenAddr: c.natsListen,
		Logger:     logger, // the embedded server's warnings and errors
	}); err != nil {
		return nil, fmt.Errorf("bus (%s): %w", busKind(c.natsURL), err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if c.profileStatements {
		a.db.ProfileStatements()
	}
	reg.MustRegister(a.db.Collectors()...)

	a.relay = outbox.NewRelay(a.db, a.bus, outbox.RelayConfig{
		PollInterval: c.relayPoll,
		SyncInterval: a.bus.SyncInterval(),
		Logger:       logger,
		Registerer:   reg,
	})
	a.monitor = inbox.NewMonitor(a.db, a.bus)
	a.batcher = groupcommit.New(a.db, groupcommit.Config{Logger: logger})
	key, err := secret.Load(ctx, secret.Config{Value: c.secret, DataDir: c.dataDir, DB: a.db, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("server secret: %w", err)
	}
	a.idem = web.NewIdempotency(a.db, web.IdempotencyConfig{Secret: key, Logger: logger})

	p := module.Platform{DB: a.db, Write: a.batcher, Idem: a.idem, Logger: logger, Registerer: reg}
	shopCfg := shopConfig{staffMFARequired: c.staffMFA == "required", sandboxCarrierStep: c.sandboxCarrierStep,
		sandboxCarrierSecret: []byte(c.sandboxCarrierSecret), identityKey: identityKey(key), payments: paymentsConfig{
			sandboxSecret: hmacKey(key, "payments.sandbox.webhook"),
			stripe:        stripepay.Config{Key: c.stripeKey, WebhookSecret: c.stripeWebhookSecret}},
		secret: key, webhooksPrivate: c.webhookAllowPrivate, connectorDir: c.connectorDir,
		inlinePay: c.payInlineSandbox}
	if shopCfg.connectorDir == "" {
		shopCfg.connectorDir = filepath.Join(absDir(c.dataDir), "connectors")
	}
	if shopCfg.notifications, shopCfg.trackingURL, err = notificationsConfig(c); err != nil {
		return nil, err
	}
	if c.redisURL != "" {
		if shopCfg.catalogCache, a.redis, err = catalog.NewRedisCache(c.redisURL, "mercato:catalog:", catalog.DefaultCacheTTL); err != nil {
			return nil, fmt.Errorf("--redis-url: %w", err)
		}
	}
	if runs(parseModules(c.modules), "catalog") {
		if a.index, err = openSearch(ctx, c.search, c.storeFlags, a.db); err != nil {
			return nil, fmt.Errorf("search index (%s): %w", c.search, err)
		}
		shopCfg.searchIndex = a.index
	}
	sh, err := newShop(p, a.monitor, shopCfg)
	if err != nil {
		return nil, err
	}
	run, err := module.Select(sh.modules, parseModules(c.modules))
	if err != nil {
		return nil, fmt.Errorf("--modules: %w", err)
	}
	acc := sh.accounts
	a.accounts = acc
	a.closeFiles = sh.webhooks.CloseFiles
	a.notify = sh.notify
	if slices.ContainsFunc(run, func(m module.Module) bool { return m.Name == "catalog" }) {
		a.catalog = sh.catalog
	}
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
	periodic := []jobs.Job{ // the platform's own housekeeping, then the modules' jobs
		{Name: "web.idempotency-prune", Every: time.Hour, Run: a.idem.Prune},
		{Name: "outbox.prune", Every: 10 * time.Minute, Run: a.relay.Prune},
	}
	for _, m := range run {
		consumers = append(consumers, m.Consumers...)
		periodic = append(periodic, m.Jobs...)
	}
	rc := inbox.RunnerConfig{Logger: logger, Registerer: reg}
	if a.db.Engine() == sqldb.SQLite {
		// One writer: the consumers' batches commit with the requests'
		// units instead of queueing a commit each behind them. PostgreSQL
		// commits transactions in parallel, so there they keep their own.
		rc.Write = a.batcher
	}
	a.runner = inbox.NewRunner(a.db, a.bus, rc, consumers...)
	periodic = append(periodic, jobs.Job{Name: "inbox.prune", Every: 10 * time.Minute, Run: a.runner.Prune})
	for _, c := range consumers { // replays run where their consumer does
		periodic = append(periodic, sh.replays.Jobs(c.Name)...)
	}
	if a.jobs, err = jobs.New(a.db, jobs.Config{Logger: logger, Registerer: reg}, periodic...); err != nil {
		return nil, err
	}
	if c.demo {
		if err := seedDemo(ctx, acc, out); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		n, err := sh.catalog.SeedDemo(ctx)
		if err != nil {
			return nil, fmt.Errorf("demo catalogue: %w", err)
		}
		fmt.Fprintf(out, "demo catalogue: %d products created (GET /api/v1/products)\n", n)
		stocked, err := seedDemoStock(ctx, sh)
		if err != nil {
			return nil, fmt.Errorf("demo stock: %w", err)
		}
		fmt.Fprintf(out, "demo stock: %d SKUs stocked with %d units each\n", stocked, demoStock)
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
	if c.metricsAddr == "" {
		a.router.HandleOps(checks)
	} else { // /metrics only on its own listener
		a.router.HandleProbes(checks)
		a.metrics = a.router.MetricsHandler()
	}
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
		return fmt.Errorf("--addr: %w", err)
	}
	var msrv *http.Server
	var mln net.Listener
	if a.metrics != nil {
		if mln, err = net.Listen("tcp", a.cfg.metricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metrics)
		msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
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
	a.announce(ln, mln)

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
	if a.notify != nil {
		wg.Go(func() { // every module cache's invalidations: one LISTEN connection
			if err := a.notify.Run(bg); err != nil {
				a.log.Error("cache invalidations stopped", "err", err)
			}
		})
	}
	if a.catalog != nil {
		wg.Go(func() { // the search indexer's loop
			if err := a.catalog.Run(bg); err != nil {
				a.log.Error("catalog background work stopped", "err", err)
			}
		})
	}
	wg.Go(func() {
		if err := a.jobs.Run(bg); err != nil {
			a.log.Error("periodic jobs stopped", "err", err)
		}
	})

	srvErr := make(chan error, 2)
	go func() { srvErr <- srv.Serve(ln) }()
	if msrv != nil {
		go func() { srvErr <- msrv.Serve(mln) }()
	}
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
	if msrv != nil {
		msrv.Close()
	}
	stopBG()
	wg.Wait()
	a.accounts.Close() // its queued reset and unlock mails go out on the write path first
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
	if a.closeFiles != nil { // file_drop connectors' open files, under their final names
		if err := a.closeFiles(); err != nil {
			a.log.Error("closing the file_drop connectors' files", "err", err)
		}
	}
	if a.idem != nil {
		a.idem.Close()
	}
	if a.bus != nil {
		a.bus.Close()
	}
	if a.redis != nil {
		a.redis()
	}
	if a.index != nil {
		if err := a.index.Close(); err != nil {
			a.log.Error("closing the search index", "err", err)
		}
	}
	if a.db != nil {
		a.db.Close()
	}
	a.lock.Release() // last: the stores are closed
}

// announce prints the human "listening" line on the app's output (tests and
// scripts wait for it) and logs the same as a structured record.
func (a *app) announce(ln, metrics net.Listener) {
	url := "http://" + ln.Addr().String()
	attrs := []any{"url", url, "version", version, "database", string(a.db.Engine()), "bus", busKind(a.cfg.natsURL)}
	murl := ""
	if metrics != nil {
		murl = "http://" + metrics.Addr().String() + "/metrics"
		attrs = append(attrs, "metrics_url", murl)
	}
	// The record first: whoever waits for the plain line (a script, a test)
	// then finds the record written too.
	a.log.Info("listening", attrs...)
	fmt.Fprintf(a.out, "mercato %s listening on %s (%s, %s)\n", version, url, a.db.Engine(), busKind(a.cfg.natsURL))
	if murl != "" {
		fmt.Fprintf(a.out, "metrics on %s\n", murl)
	}
}

// busKind names the bus for messages and logs: the external NATS URLs
// without their credentials.
func busKind(natsURL string) string {
	if natsURL == "" {
		return "embedded NATS JetStream"
	}
	var hosts []string
	for _, raw := range strings.Split(natsURL, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" {
			hosts = append(hosts, "(unparsable URL)")
			continue
		}
		u.User = nil
		hosts = append(hosts, u.String())
	}
	return "NATS " + strings.Join(hosts, ",")
}

// notificationsConfig is the notifications module's relay, staff address
// and tracking link from c.
func notificationsConfig(c serveConfig) (notifications.Config, string, error) {
	cfg := notifications.Config{StaffEmail: c.staffAlertEmail}
	if c.smtpURL != "" {
		s, err := notifications.ParseSMTPURL(c.smtpURL)
		if err != nil {
			return cfg, "", fmt.Errorf("--smtp-url: %w", err)
		}
		s.From, s.TLS = c.smtpFrom, notifications.TLSMode(c.smtpTLS)
		cfg.SMTP = &s
	}
	link := c.trackingURL
	if link == "" {
		addr := c.addr
		if host, port, err := net.SplitHostPort(addr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
			addr = net.JoinHostPort("localhost", port) // a wildcard listen address is no host to link to
		}
		link = "http://" + addr + "/api/v1/orders/{order}/tracking"
	}
	return cfg, link, nil
}
