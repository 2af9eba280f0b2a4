package webhooks

import (
	"context"
	"embed"
	"log/slog"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the webhooks module's schema.
func Migrations() migrate.Source { return migrate.Embedded("webhooks", migrations) }

// PermManage is the permission to manage endpoints and their deliveries.
const PermManage = "webhooks.manage"

// ConsumerName is the durable name of the module's inbox consumer.
const ConsumerName = "webhooks"

// DefaultSchedule is the Standard Webhooks retry schedule: the delays before
// the 2nd … 8th tries (the first is at once).
var DefaultSchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Config tunes the module. Zero values take the defaults.
type Config struct {
	// Secret is the server secret (package secret) from which the key that
	// seals endpoint secrets at rest is derived. Without it endpoints can be
	// listed but not created or delivered to (an Internal error).
	Secret []byte
	// Types lists the known event types (every module's Events); a filter
	// naming another type, or a pattern matching none, is refused (422).
	// Nil accepts any well-formed filter.
	Types func() []string
	// AllowPrivate lets URLs resolve to loopback, private and link-local
	// addresses (--webhook-allow-private; tests and local development).
	AllowPrivate bool
	// Resolver resolves host names at registration and at dial time
	// (default net.DefaultResolver).
	Resolver Resolver
	// Schedule is the delays between tries (DefaultSchedule); after the last
	// one fails the delivery is dead.
	Schedule []time.Duration
	// Jitter is the fraction by which a delay is randomly shortened or
	// lengthened (default 0.1: ±10%).
	Jitter float64
	// Timeout bounds one delivery attempt (default 10s).
	Timeout time.Duration
	// MaxInFlight is the per-endpoint concurrency limit (default 8).
	MaxInFlight int
	// BreakerThreshold consecutive failures open an endpoint's circuit
	// breaker for BreakerCooldown (defaults 5 and 30s); while it is open its
	// deliveries wait without using up tries, then one probe is let through.
	BreakerThreshold int
	BreakerCooldown  time.Duration
	// RotationWindow is how long the previous secret still signs after a
	// rotation (default 24h).
	RotationWindow time.Duration
	// Poll is how often the dispatcher looks for due deliveries when nothing
	// woke it (default 1s; new events and finished attempts wake it at once).
	Poll time.Duration
	// PollOnly leaves every new delivery pending for the dispatcher's next
	// step to claim (the way before claims at record time; the benchmark's
	// reference) instead of the recording transaction claiming it.
	PollOnly bool
	// BatchSize caps the deliveries claimed in one step (default 256).
	BatchSize int
	// Retention is how long delivered deliveries and their attempts are
	// kept (default 30 days); dead ones are kept until replayed or their
	// endpoint is deleted.
	Retention time.Duration
	// Payloads describes the known event types' payloads (every module's
	// Events): a connector's template naming a data field that no payload
	// of its selected types has is refused. Nil accepts any data field.
	Payloads func() []event.TypeInfo
	// ConnectorDir is the operator's directory under which file_drop
	// connectors write (serve --connector-dir); empty refuses file_drop.
	ConnectorDir string
	// MaxReplay bounds the retained events one replay request scans
	// (default 5000); a longer replay continues with its next_cursor.
	MaxReplay int
}

func (c Config) withDefaults() Config {
	if c.Resolver == nil {
		c.Resolver = netResolver{}
	}
	if len(c.Schedule) == 0 {
		c.Schedule = DefaultSchedule
	}
	if c.Jitter == 0 {
		c.Jitter = 0.1
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 8
	}
	if c.BreakerThreshold <= 0 {
		c.BreakerThreshold = 5
	}
	if c.BreakerCooldown <= 0 {
		c.BreakerCooldown = 30 * time.Second
	}
	if c.RotationWindow <= 0 {
		c.RotationWindow = 24 * time.Hour
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.Retention <= 0 {
		c.Retention = 30 * 24 * time.Hour
	}
	if c.MaxReplay <= 0 {
		c.MaxReplay = 5000
	}
	return c
}

// Service is the webhooks module. Safe for concurrent use.
type Service struct {
	db    *sqldb.DB
	write sqldb.Committer
	idem  *web.Idempotency
	log   *slog.Logger
	cfg   Config
	guard *Guard
	seal  *sealer
	disp  *Dispatcher
	conns *connCache
}

// New returns the module over p.
func New(p module.Platform, cfg Config) *Service {
	cfg = cfg.withDefaults()
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Service{db: p.DB, write: p.Write, idem: p.Idem, log: log, cfg: cfg,
		guard: &Guard{AllowPrivate: cfg.AllowPrivate, Resolver: cfg.Resolver}, seal: newSealer(cfg.Secret), conns: newConnCache()}
	s.disp = newDispatcher(s)
	return s
}

// Dispatcher returns the module's dispatcher (its Job runs it in a server).
func (s *Service) Dispatcher() *Dispatcher { return s.disp }

// dispatchPeriod is the length of one run of the dispatch job: it delivers
// for this long and returns, and the job runner starts it again (on
// whichever replica wins the lease).
const dispatchPeriod = time.Minute

// Module is the webhooks module's declaration.
func (s *Service) Module() module.Module {
	return module.Module{
		Name:       "webhooks",
		Doc:        "outbound webhooks: endpoints, signed deliveries with retries, dead letters and replay",
		Migrations: []migrate.Source{Migrations()},
		Permissions: []module.Permission{{Name: PermManage, Doc: "manage webhook endpoints and their deliveries",
			Roles: []string{accounts.RoleOperator}}},
		Routes:    s.Routes(),
		Consumers: []inbox.Consumer{s.Consumer()},
		Jobs: []jobs.Job{{Name: "webhooks.dispatch", Every: dispatchPeriod, Timeout: dispatchPeriod + 30*time.Second,
			Run: s.disp.runPeriod},
			{Name: "webhooks.prune", Every: time.Hour, Run: s.Prune},
			{Name: "webhooks.filedrop", Every: time.Minute, Run: s.RotateFiles}},
		// Nothing to export (the envelopes are copies of the shop's events);
		// the copies that name a customer are anonymised with them.
		Privacy: &module.Privacy{Section: "webhooks", Erase: s.EraseTx},
	}
}

// Prune deletes the delivered deliveries last changed before the retention
// period, with their attempts, then the envelopes (webhooks_events) that no
// delivery needs any more — the last of the event's deliveries pruned, or
// deleted with its endpoint — once recorded before that period too, and
// reports how many rows went.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	cutoff := sqldb.Micros(s.db.Now().Add(-s.cfg.Retention))
	a, err := jobs.DeleteChunked(ctx, s.db, "webhooks_attempts", "id", `delivery_id IN (SELECT id FROM webhooks_deliveries
		WHERE status = 'delivered' AND updated_at < $1)`, cutoff)
	if err != nil {
		return a, err
	}
	d, err := jobs.DeleteChunked(ctx, s.db, "webhooks_deliveries", "id", `status = 'delivered' AND updated_at < $1`, cutoff)
	if err != nil {
		return a + d, err
	}
	// created_at is when the event was last recorded: a delivery being
	// recorded for it now (a replay) has moved it past the cutoff.
	ev, err := jobs.DeleteChunked(ctx, s.db, "webhooks_events", "event_id", `created_at < $1 AND NOT EXISTS
		(SELECT 1 FROM webhooks_deliveries d WHERE d.event_id = webhooks_events.event_id)`, cutoff)
	return a + d + ev, err
}
