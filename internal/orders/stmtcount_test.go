package orders

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// wireCounter is a TCP proxy in front of PostgreSQL that counts the
// statements clients send: Execute messages of the extended protocol and
// Query messages of the simple one (BEGIN and COMMIT among them). sqldb
// opens its driver by name, so the counting happens on the wire.
type wireCounter struct {
	ln      net.Listener
	target  string
	execs   atomic.Int64 // 'E'
	queries atomic.Int64 // 'Q'
	wg      sync.WaitGroup
}

func newWireCounter(t testing.TB, target string) *wireCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &wireCounter{ln: ln, target: target}
	w.wg.Add(1)
	go w.accept()
	t.Cleanup(func() { ln.Close(); w.wg.Wait() })
	return w
}

func (w *wireCounter) accept() {
	defer w.wg.Done()
	for {
		c, err := w.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", w.target)
		if err != nil {
			c.Close()
			continue
		}
		w.wg.Add(2)
		go func() { defer w.wg.Done(); io.Copy(c, s); c.Close() }()
		go func() { defer w.wg.Done(); w.frontend(c, s); s.Close() }()
	}
}

// frontend relays the client's messages to the server, counting them: the
// startup message has no type byte; every later one is a type byte and a
// length that counts itself.
func (w *wireCounter) frontend(c, s net.Conn) {
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:4]); err != nil {
		return
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if _, err := s.Write(hdr[:4]); err != nil || n < 4 {
		return
	}
	if _, err := io.CopyN(s, c, int64(n-4)); err != nil {
		return
	}
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		switch hdr[0] {
		case 'E':
			w.execs.Add(1)
		case 'Q':
			w.queries.Add(1)
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		if _, err := s.Write(hdr[:]); err != nil || n < 4 {
			return
		}
		if _, err := io.CopyN(s, c, int64(n-4)); err != nil {
			return
		}
	}
}

func (w *wireCounter) total() int64 { return w.execs.Load() + w.queries.Load() }

// countedPostgres opens a fresh PostgreSQL test database whose connections
// go through a wireCounter (skipped, with a message, when
// MERCATO_TEST_POSTGRES_URL is unset).
func countedPostgres(t testing.TB) (*sqldb.DB, *wireCounter) {
	t.Helper()
	u, err := url.Parse(sqldbtest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	w := newWireCounter(t, u.Host)
	u.Host = w.ln.Addr().String()
	db, err := sqldb.Open(context.Background(), sqldb.Config{URL: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := migrate.Up(context.Background(), db, sources()...); err != nil {
		t.Fatal(err)
	}
	return db, w
}

// TestWireCounterCounts: the counter sees each statement of a transaction
// once, plus BEGIN and COMMIT.
func TestWireCounterCounts(t *testing.T) {
	db, w := countedPostgres(t)
	ctx := context.Background()
	before := w.total()
	if err := db.InTx(ctx, func(tx *sqldb.Tx) error {
		for i := range 5 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO orderstest_stock (sku, available) VALUES ($1, 1)`, itoa(i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := w.total() - before; got != 7 {
		t.Fatalf("5 inserts in a transaction counted as %d messages, want 7", got)
	}
}

// TestPlaceStatements: one placement (checkout of a one-line cart, in a
// transaction of its own) runs at most 10 statements on PostgreSQL besides
// BEGIN and COMMIT — stock double included (its conditional UPDATE and its
// reservation row).
func TestPlaceStatements(t *testing.T) {
	db, w := countedPostgres(t)
	e := newEnv(t, db)
	carts := e.benchCarts(4, 64)
	ctx := context.Background()
	for _, id := range carts {
		before := w.total()
		if err := db.Do(ctx, func(tx *sqldb.Tx) error {
			_, err := e.svc.CheckoutTx(ctx, tx, benchCaller, id, benchCheckout)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		n := w.total() - before - 2
		t.Logf("statements per placed order: %d (+ BEGIN, COMMIT)", n)
		if n > 10 {
			t.Fatalf("%d statements per placed order, want at most 10", n)
		}
	}
}
