package promotions

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"mercato/internal/accounts"
	"mercato/internal/accounts/accountstest"
	"mercato/internal/audit"
	"mercato/internal/money"
	"mercato/internal/platform/idem"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
	"mercato/internal/pricing"
)

// sources are the migrations a promotions test database needs.
func sources() []migrate.Source {
	return []migrate.Source{accounts.Migrations(), audit.Migrations(), outbox.Migrations(), web.Migrations(),
		idem.Migrations(), Migrations()}
}

type clock = sqldbtest.Clock

// env is the promotions module and the accounts module behind a real HTTP
// server, on the group-commit write path.
type env struct {
	t      testing.TB
	db     *sqldb.DB
	svc    *Service
	acc    *accounts.Service
	router *web.Router
	c      *webtest.Client // anonymous
	clock  *clock
	shop   *accountstest.Shop
}

var t0 = accountstest.T0

func newEnv(t testing.TB, db *sqldb.DB) *env {
	t.Helper()
	var svc *Service
	shop := accountstest.New(t, db, func(p module.Platform) []module.Module {
		svc = New(p, Config{})
		return []module.Module{svc.Module()}
	})
	return &env{t: t, db: db, svc: svc, acc: shop.Accounts, router: shop.Router, c: shop.Client, clock: shop.Clock, shop: shop}
}

// forEachEngine runs fn with a fresh env on SQLite and PostgreSQL.
func forEachEngine(t *testing.T, fn func(t *testing.T, e *env)) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) { fn(t, newEnv(t, db)) }, sources()...)
}

// customer registers a customer over HTTP and returns its id and client.
func (e *env) customer(email string) (string, *webtest.Client) { return e.shop.Customer(email) }

// staff creates a staff member with roles and returns its id and client.
func (e *env) staff(email string, roles ...string) (string, *webtest.Client) {
	return e.shop.Staff(email, roles...)
}

// create makes a promotion through the service (staff "s-1").
func (e *env) create(r Rule) Promotion {
	e.t.Helper()
	p, err := e.svc.Create(context.Background(), Actor{ID: "s-1"}, r)
	if err != nil {
		e.t.Fatalf("Create: %v", err)
	}
	return p
}

// promoEvent is one promotion event from the outbox.
type promoEvent struct {
	Type, AggregateID string
	Data              PromotionEvent
}

// events returns the promotion events in the outbox, oldest first.
func (e *env) events() []promoEvent {
	e.t.Helper()
	rows, err := e.db.Reader().Query(`SELECT type, aggregate_id, data FROM outbox
		WHERE aggregate_type = 'promotion' ORDER BY id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []promoEvent
	for rows.Next() {
		var ev promoEvent
		var data string
		if err := rows.Scan(&ev.Type, &ev.AggregateID, &data); err != nil {
			e.t.Fatal(err)
		}
		dec := json.NewDecoder(strings.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev.Data); err != nil {
			e.t.Fatalf("event %s data %s: %v", ev.Type, data, err)
		}
		out = append(out, ev)
	}
	return out
}

// auditEntry is one row of the audit log.
type auditEntry struct {
	Actor, Action, TargetID string
	Before, After           string
}

// audits returns the audit log's entries about promotions, oldest first.
func (e *env) audits() []auditEntry {
	e.t.Helper()
	rows, err := e.db.Reader().Query(`SELECT actor_id, action, target_id, COALESCE(before_json, ''),
		COALESCE(after_json, '') FROM audit_log WHERE target_type = 'promotion' ORDER BY created_at, id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []auditEntry
	for rows.Next() {
		var a auditEntry
		if err := rows.Scan(&a.Actor, &a.Action, &a.TargetID, &a.Before, &a.After); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// count returns the number of rows of table matching where (optional).
func (e *env) count(table, where string, args ...any) int {
	e.t.Helper()
	q := "SELECT count(*) FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	var n int
	if err := e.db.Reader().QueryRow(q, args...).Scan(&n); err != nil {
		e.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// counter reads promotion id's uses and spent.
func (e *env) counter(id string) (uses, spent int64) {
	e.t.Helper()
	if err := e.db.Reader().QueryRow(`SELECT `+usesSQL+`, `+spentSQL+` FROM promotions_promotions p
		JOIN promotions_counters c ON c.id = p.id WHERE p.id = $1`, id).Scan(&uses, &spent); err != nil {
		e.t.Fatal(err)
	}
	return uses, spent
}

// active is ActiveTx in a transaction of its own at the clock's now.
func (e *env) active(codes []string, customerID string) []pricing.Promotion {
	e.t.Helper()
	ps, err := e.svc.Active(context.Background(), e.clock.Now(), codes, customerID)
	if err != nil {
		e.t.Fatalf("Active: %v", err)
	}
	return ps
}

func eur(n int64) money.Money { return money.MustNew(n, "EUR") }

func ptr[T any](v T) *T { return &v }

// applied is what a quote would report for p giving amount off.
func applied(p Promotion, amount int64) pricing.AppliedPromotion {
	code := ""
	if len(p.Codes) > 0 {
		code = p.Codes[0]
	}
	return pricing.AppliedPromotion{ID: p.ID, Version: p.Version, Code: code, Amount: eur(amount), Shipping: eur(0)}
}
