package webhooks

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// A slow receiver holds at most MaxInFlight of its deliveries and none of
// another endpoint's: the fast one is served while the slow one hangs.
func TestSlowReceiverCostsOthersNothing(t *testing.T) {
	forEachEngine(t, Config{MaxInFlight: 4}, func(t *testing.T, e *env) {
		release := make(chan struct{})
		var mu sync.Mutex
		inflight, most := 0, 0
		slow := newReceiver(t, e.clock.Now)
		slow.answer = func(int, received) (int, http.Header) {
			mu.Lock()
			inflight++
			most = max(most, inflight)
			mu.Unlock()
			<-release
			mu.Lock()
			inflight--
			mu.Unlock()
			return http.StatusOK, nil
		}
		arrived := make(chan string, 16)
		fast := newReceiver(t, e.clock.Now)
		fast.answer = func(_ int, g received) (int, http.Header) { arrived <- g.id; return http.StatusOK, nil }
		e.register(slow.URL(), []string{"order.paid"}, false)
		e.register(fast.URL(), []string{"order.placed"}, false)
		for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
			e.emit("order.paid", id)
		}
		for _, id := range []string{"a", "b", "c", "d"} {
			e.emit("order.placed", id)
		}
		d := e.svc.Dispatcher()
		ctx := context.Background()
		if n, err := d.Step(ctx); err != nil || n != 8 {
			t.Fatalf("step started %d (%v), want 4 of each endpoint", n, err)
		}
		for range 4 { // the fast receiver is served while the slow one hangs
			<-arrived
		}
		mu.Lock()
		m := most
		mu.Unlock()
		if m > 4 {
			t.Fatalf("%d deliveries in flight to the slow receiver, limit 4", m)
		}
		if n, _ := d.Step(ctx); n != 0 {
			t.Fatalf("a step started %d more for the slow receiver at its limit", n)
		}
		close(release)
		if err := d.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(slow.requests()); n != 8 || len(fast.requests()) != 4 {
			t.Fatalf("slow receiver got %d once released, want 8", n)
		}
	})
}

// A host that resolved to a public address at registration and to loopback
// later (DNS rebinding) is refused at dial time: the attempt fails, nothing
// is sent.
func TestDNSChangeRefusedAtDial(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		rebind := &switchResolver{answer: "93.184.216.34"}
		e := newEnv(t, db, Config{Resolver: rebind})
		rc := newReceiver(t, e.clock.Now)
		port := rc.srv.URL[strings.LastIndex(rc.srv.URL, ":")+1:]
		c := e.register("http://rebind.example:"+port+"/hook", []string{"order.*"}, false)
		rebind.set("127.0.0.1")
		ev := e.emit("order.placed", "o1")[0]
		e.flush()
		if n := len(rc.requests()); n != 0 {
			t.Fatalf("the receiver on loopback got %d requests", n)
		}
		st, n, _ := e.delivery(c.ID, ev.ID)
		var lastErr string
		db.Reader().QueryRow(`SELECT last_error FROM webhooks_deliveries WHERE event_id = $1`, ev.ID).Scan(&lastErr)
		if st != "pending" || n != 1 || !strings.Contains(lastErr, "not public") {
			t.Fatalf("after the refused dial: %s, %d tries, error %q", st, n, lastErr)
		}
	}, sources()...)
}

// switchResolver answers every name with one settable address.
type switchResolver struct {
	mu     sync.Mutex
	answer string
}

func (s *switchResolver) set(a string) { s.mu.Lock(); s.answer = a; s.mu.Unlock() }

func (s *switchResolver) LookupIPAddr(ctx context.Context, host string) ([]netIPAddr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fakeResolver{host: {s.answer}}.LookupIPAddr(ctx, host)
}

// A receiver's answer is kept as at most 1 KiB of valid UTF-8 without NUL,
// whatever it sent (PostgreSQL refuses invalid UTF-8 and NUL in text).
func TestResponseExcerptBounded(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			w.Write(append([]byte("é\x00\xff\xfe"), bytes.Repeat([]byte("€"), 3000)...))
		}))
		t.Cleanup(srv.Close)
		c := e.register(srv.URL, []string{"order.*"}, false)
		ev := e.emit("order.placed", "o1")[0]
		e.flush()
		var resp string
		if err := e.db.Reader().QueryRow(`SELECT a.response FROM webhooks_attempts a
			JOIN webhooks_deliveries d ON d.id = a.delivery_id WHERE d.event_id = $1`, ev.ID).Scan(&resp); err != nil {
			t.Fatalf("attempt not recorded: %v", err)
		}
		if len(resp) > 1024 || !utf8.ValidString(resp) || strings.ContainsRune(resp, 0) || !strings.HasPrefix(resp, "é€") {
			t.Fatalf("excerpt of %d bytes, valid %v: %q…", len(resp), utf8.ValidString(resp), resp[:min(len(resp), 12)])
		}
		if st, n, _ := e.delivery(c.ID, ev.ID); st != "pending" || n != 1 {
			t.Fatalf("after a 500: %s after %d tries", st, n)
		}
	})
}
