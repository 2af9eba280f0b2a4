// Package natsbus is the NATS JetStream implementation of the bus contract.
//
// By default it runs a NATS server inside the process (JetStream on local
// disk, no TCP port unless asked for) and talks to it over an in-process
// connection; with Config.URL set, the same code talks to an external NATS
// server or cluster. Every message lives in one stream (Config.Stream) bound
// to the subjects "mercato.>"; consumers are durable pull consumers.
//
// JetStream syncs its store to disk lazily (every SyncInterval, 2 minutes by
// default), so the last messages acknowledged before an unclean stop may be
// lost. The outbox is the record: the relay re-publishes the tail younger
// than SyncInterval at start-up, and message-id de-duplication plus the
// consumers' inboxes absorb the repeats.
//
// External servers from 2.9 on work, except that a consumer filtering on
// several subjects needs 2.10 (Consume refuses it on older servers).
package natsbus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/errs"
)

// Defaults applied by Open to zero Config fields.
const (
	DefaultStream          = "MERCATO"
	DefaultMaxAge          = 72 * time.Hour
	DefaultDuplicateWindow = 2 * time.Minute
	// DefaultSyncInterval is JetStream's own default disk sync interval.
	DefaultSyncInterval = 2 * time.Minute
)

// Tuning that callers need not see.
const (
	startTimeout    = 30 * time.Second // embedded server readiness
	maxAsyncPending = 4096             // outstanding async publishes per connection
	stallWait       = 100 * time.Millisecond
	asyncAckTimeout = 30 * time.Second // a publish ack never arriving fails after this
)

// Config configures Open.
type Config struct {
	// URL of an external NATS server (nats://host:port, several comma
	// separated); empty runs an embedded server in-process.
	URL string
	// DataDir is the embedded server's JetStream store directory (for example
	// <data-dir>/nats). Required when URL is empty.
	DataDir string
	// ListenAddr optionally makes the embedded server accept TCP clients
	// ("127.0.0.1:4333"; port 0 picks a free one). Empty opens no port at
	// all: the bus then reaches the server over an in-process connection.
	ListenAddr string
	// SubjectPrefix is prepended to every subject on the wire and stripped on
	// delivery, so callers always see "mercato.…". Empty in production; tests
	// use a unique "t<rand>." so that streams never overlap on a shared server.
	SubjectPrefix string
	// Stream names the JetStream stream (default DefaultStream).
	Stream string
	// MaxAge is how long the stream keeps messages (default DefaultMaxAge).
	MaxAge time.Duration
	// DuplicateWindow is how long message IDs are remembered for
	// de-duplication (default DefaultDuplicateWindow).
	DuplicateWindow time.Duration
	// SyncInterval is the embedded server's JetStream disk sync interval; 0
	// keeps the server default (DefaultSyncInterval). Syncing is always lazy.
	// With an external server it only declares the server's setting (the
	// bus cannot read it) and is reported by Bus.SyncInterval.
	SyncInterval time.Duration
	// Replicas is the stream's replica count on a cluster (default 1).
	Replicas int
	// Logger receives the embedded server's warnings and errors (its
	// notices at Debug level); nil keeps the server silent.
	Logger *slog.Logger

	// Tests override the publish window: maxAsyncPending and stallWait.
	maxPending int
	stallWait  time.Duration
}

// Bus is a bus.Bus on NATS JetStream. It is safe for concurrent use.
type Bus struct {
	cfg    Config
	srv    *server.Server // nil with an external server
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	closed chan struct{} // closed by the connection's ClosedHandler

	// life ends when Close starts: waiting pulls stop, Consume returns.
	life    context.Context
	endLife context.CancelFunc

	closeOnce sync.Once
	closeErr  error
}

var _ bus.Bus = (*Bus)(nil)

// Open starts the embedded server when cfg.URL is empty, connects, and
// creates or updates the stream on the subjects cfg.SubjectPrefix+"mercato.>".
// The caller must Close the Bus.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	const op = "natsbus.Open"
	cfg = withDefaults(cfg)
	if err := validate(cfg); err != nil {
		return nil, errs.E(op, errs.Invalid, err.Error(), err)
	}
	b := &Bus{cfg: cfg, closed: make(chan struct{})}
	b.life, b.endLife = context.WithCancel(context.Background())
	opts := []nats.Option{
		nats.Name("mercato"),
		nats.MaxReconnects(-1),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
	}
	url := cfg.URL
	if url == "" {
		srv, err := startServer(cfg)
		if err != nil {
			return nil, errs.E(op, errs.Unavailable, err)
		}
		b.srv = srv
		url = srv.ClientURL()
		opts = append(opts, nats.InProcessServer(srv))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.stopServer()
		return nil, errs.E(op, errs.Unavailable, err)
	}
	b.nc = nc
	b.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cmp.Or(cfg.maxPending, maxAsyncPending)),
		jetstream.WithPublishAsyncTimeout(asyncAckTimeout))
	if err == nil {
		b.stream, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:       cfg.Stream,
			Subjects:   []string{cfg.SubjectPrefix + "mercato.>"},
			Retention:  jetstream.LimitsPolicy,
			Storage:    jetstream.FileStorage,
			Discard:    jetstream.DiscardOld,
			MaxAge:     cfg.MaxAge,
			Duplicates: cfg.DuplicateWindow,
			Replicas:   cfg.Replicas,
		})
	}
	if err != nil {
		_ = b.Close()
		return nil, errs.E(op, errs.Unavailable, err)
	}
	return b, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.DuplicateWindow == 0 {
		cfg.DuplicateWindow = DefaultDuplicateWindow
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	return cfg
}

func validate(cfg Config) error {
	switch {
	case cfg.URL == "" && cfg.DataDir == "":
		return errors.New("an embedded server needs a data directory")
	case cfg.URL != "" && cfg.ListenAddr != "":
		return errors.New("a listen address only applies to the embedded server")
	case cfg.MaxAge < 0, cfg.DuplicateWindow < 0, cfg.SyncInterval < 0, cfg.Replicas < 0:
		return errors.New("durations and replicas must not be negative")
	case cfg.DuplicateWindow > cfg.MaxAge:
		return errors.New("the duplicate window must not exceed the stream's max age")
	}
	return nil
}

// startServer runs an embedded NATS server with JetStream and waits until it
// accepts connections.
func startServer(cfg Config) (*server.Server, error) {
	opts := &server.Options{
		JetStream:              true,
		StoreDir:               cfg.DataDir,
		SyncInterval:           cfg.SyncInterval,
		NoSigs:                 true,
		NoLog:                  true,
		DisableJetStreamBanner: true,
		DontListen:             cfg.ListenAddr == "",
	}
	if cfg.ListenAddr != "" {
		host, port, err := net.SplitHostPort(cfg.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: %w", cfg.ListenAddr, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("listen address %q: bad port", cfg.ListenAddr)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if cfg.Logger != nil {
		srv.SetLogger(serverLog{cfg.Logger.With("component", "nats")}, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(startTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("embedded nats: not ready for connections")
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats: JetStream did not start (store %q)", cfg.DataDir)
	}
	return srv, nil
}

// Publish stores msgs on the stream in order and returns once JetStream has
// acknowledged every one of them. Each message carries its ID as the
// JetStream message id, so the server drops a repeat seen within the
// duplicate window (and acknowledges it as stored).
//
// Messages are published asynchronously and their acks awaited together.
// When the connection has too many publishes outstanding (maxAsyncPending),
// Publish blocks; if that lasts (stallWait), it waits for its own oldest ack
// before trying again (back-pressure) instead of failing.
// On error any subset of msgs may have been stored — not only a prefix: a
// message lost with a dropped connection or a stream leader change can be
// followed by stored ones — so callers re-publish the whole batch, and
// de-duplication absorbs what was stored (a message re-stored after later
// ones is then out of publication order). Publish is safe
// for concurrent use; messages of concurrent calls interleave.
func (b *Bus) Publish(ctx context.Context, msgs []bus.Message) error {
	const op = "natsbus.Publish"
	for i := range msgs {
		if msgs[i].ID == "" || msgs[i].Subject == "" {
			return errs.E(op, errs.Invalid, fmt.Sprintf("message %d has no ID or subject", i))
		}
	}
	stall := jetstream.WithStallWait(cmp.Or(b.cfg.stallWait, stallWait))
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	done := 0 // futs[:done] are acknowledged
	for i := range msgs {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return errs.E(op, errs.Unavailable, err)
			}
		}
		m := &nats.Msg{Subject: b.wire(msgs[i].Subject), Data: msgs[i].Data}
		for {
			f, err := b.js.PublishMsgAsync(m, jetstream.WithMsgID(msgs[i].ID), stall)
			if err == nil {
				futs = append(futs, f)
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				return errs.E(op, errs.Unavailable, err)
			}
			// Back-pressure: the connection's outstanding publishes are
			// at the cap. Wait for our own oldest ack, if we have one,
			// else (the cap is held by other callers) just try again.
			if done < len(futs) {
				if err := awaitAck(ctx, futs[done]); err != nil {
					return errs.E(op, errs.Unavailable, err)
				}
				done++
			} else if err := ctx.Err(); err != nil {
				return errs.E(op, errs.Unavailable, err)
			}
			m.Header = nil // WithMsgID sets it again
		}
	}
	for ; done < len(futs); done++ {
		if err := awaitAck(ctx, futs[done]); err != nil {
			return errs.E(op, errs.Unavailable, err)
		}
	}
	return nil
}

// awaitAck waits for one publish acknowledgement. A duplicate is a success.
func awaitAck(ctx context.Context, f jetstream.PubAckFuture) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ping reports whether the server answers JetStream requests for the stream.
func (b *Bus) Ping(ctx context.Context) error {
	if _, err := b.stream.Info(ctx); err != nil {
		return errs.E("natsbus.Ping", errs.Unavailable, err)
	}
	return nil
}

// SyncInterval is the effective JetStream disk sync interval: messages
// acknowledged within it before an unclean stop may be lost. With an
// external server it is Config.SyncInterval, or DefaultSyncInterval.
func (b *Bus) SyncInterval() time.Duration {
	if b.srv != nil {
		if d := b.srv.JetStreamConfig(); d != nil && d.SyncInterval > 0 {
			return d.SyncInterval
		}
	}
	if b.cfg.SyncInterval > 0 {
		return b.cfg.SyncInterval
	}
	return DefaultSyncInterval
}

// Close drains the connection (pending acks and publishes are flushed) and
// shuts down the embedded server, waiting for it. Consume calls still running
// return an error promptly (cancel them first for a clean stop: deliveries
// settled after Close started may not reach the server). Close is idempotent.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.endLife()
		if b.nc != nil {
			if err := b.nc.Drain(); err != nil {
				b.nc.Close()
			}
			<-b.closed
		}
		b.stopServer()
	})
	return b.closeErr
}

func (b *Bus) stopServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// wire maps a bus subject to its subject on the wire.
func (b *Bus) wire(subject string) string { return b.cfg.SubjectPrefix + subject }

// serverLog adapts slog to the embedded server's logger. Notices go to
// Debug (the server is chatty at start-up); Fatalf only logs, as the process
// is not the server's to stop.
type serverLog struct{ l *slog.Logger }

func (s serverLog) Noticef(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLog) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s serverLog) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLog) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLog) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLog) Tracef(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
