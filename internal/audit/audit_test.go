package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mercato/internal/platform/web"
	"strings"
	"testing"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// record appends entries in one transaction at time at.
func record(t *testing.T, db *sqldb.DB, at time.Time, entries ...Entry) {
	t.Helper()
	db.SetClock(func() time.Time { return at })
	err := db.InTx(context.Background(), func(tx *sqldb.Tx) error {
		for _, e := range entries {
			if err := Record(context.Background(), tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func list(t *testing.T, l *Log, f Filter) Page {
	t.Helper()
	p, err := l.List(context.Background(), f)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	if p.Items == nil {
		t.Fatal("Items is nil; want [] when empty")
	}
	return p
}

func actions(p Page) string {
	var s []string
	for _, it := range p.Items {
		s = append(s, it.Action)
	}
	return strings.Join(s, ",")
}

type userState struct {
	Email string   `json:"email"`
	Roles []string `json:"roles"`
}

func TestRecordAndList(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		l := NewLog(db)
		var nilState *userState
		record(t, db, t0, Entry{ActorID: "u1", Action: "user.created", TargetType: "user", TargetID: "u9",
			IP: "192.0.2.1", After: userState{"a@example.com", []string{"operator"}}})
		record(t, db, t0.Add(time.Minute), Entry{ActorID: "u1", Action: "user.roles_changed", TargetType: "user",
			TargetID: "u9", Before: userState{"a@example.com", []string{"operator"}},
			After: json.RawMessage(`{"roles":["admin"]}`)})
		record(t, db, t0.Add(2*time.Minute), Entry{ActorID: "u2", Action: "product.archived", TargetType: "product",
			TargetID: "p1", Before: nilState, After: map[string]string{"status": "archived"}})
		record(t, db, t0.Add(3*time.Minute), Entry{ActorID: "system", Action: "user.created", TargetType: "user",
			TargetID: "u10"})

		all := list(t, l, Filter{})
		if got, want := actions(all), "user.created,product.archived,user.roles_changed,user.created"; got != want {
			t.Fatalf("order = %s, want %s", got, want)
		}
		if all.NextCursor != "" {
			t.Fatalf("one page only, got cursor %q", all.NextCursor)
		}

		t.Run("fields round-trip", func(t *testing.T) {
			first := all.Items[3]
			want := Item{ID: first.ID, ActorID: "u1", Action: "user.created", TargetType: "user", TargetID: "u9",
				IP: "192.0.2.1", After: json.RawMessage(`{"email":"a@example.com","roles":["operator"]}`),
				CreatedAt: t0.Truncate(time.Microsecond)}
			got, _ := json.Marshal(first)
			exp, _ := json.Marshal(want)
			if string(got) != string(exp) {
				t.Fatalf("item\n got %s\nwant %s", got, exp)
			}
			if !strings.Contains(string(got), `"before":null`) || !strings.Contains(string(got), `"request_id":""`) {
				t.Fatalf("nil Before must read back as null: %s", got)
			}
			if len(first.ID) != 36 {
				t.Fatalf("id %q is not a UUID", first.ID)
			}
			if b := string(all.Items[1].Before); b != "null" && b != "" {
				t.Fatalf("typed nil Before stored as %s, want null", b)
			}
			if a := string(all.Items[2].After); a != `{"roles":["admin"]}` {
				t.Fatalf("RawMessage After = %s", a)
			}
		})

		tests := []struct {
			name string
			f    Filter
			want string
		}{
			{"actor", Filter{ActorID: "u1"}, "user.roles_changed,user.created"},
			{"action", Filter{Action: "user.created"}, "user.created,user.created"},
			{"target type", Filter{TargetType: "product"}, "product.archived"},
			{"target", Filter{TargetType: "user", TargetID: "u9"}, "user.roles_changed,user.created"},
			{"since is inclusive", Filter{Since: t0.Add(2 * time.Minute)}, "user.created,product.archived"},
			{"until is exclusive", Filter{Until: t0.Add(2 * time.Minute)}, "user.roles_changed,user.created"},
			{"window", Filter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, "product.archived,user.roles_changed"},
			{"combined", Filter{ActorID: "u1", Action: "user.created", Until: t0.Add(time.Hour)}, "user.created"},
			{"no match", Filter{ActorID: "nobody"}, ""},
			{"before everything", Filter{Until: t0.Add(-time.Hour)}, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := list(t, l, tt.f)
				if got := actions(p); got != tt.want {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
				if tt.want == "" {
					if b, _ := json.Marshal(p); string(b) != `{"items":[]}` {
						t.Fatalf("empty page encodes as %s", b)
					}
				}
			})
		}
	}, Migrations())
}

func TestPagination(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		l := NewLog(db)
		// 25 entries: five transactions of five, so created_at ties within
		// each and the id orders them.
		for tx := range 5 {
			var es []Entry
			for i := range 5 {
				es = append(es, Entry{ActorID: "u1", Action: fmt.Sprintf("a%02d", tx*5+i), TargetType: "x"})
			}
			record(t, db, t0.Add(time.Duration(tx)*time.Second), es...)
		}
		want := list(t, l, Filter{Page: web.PageRequest{Limit: 100}})
		if len(want.Items) != 25 || want.NextCursor != "" {
			t.Fatalf("got %d items, cursor %q", len(want.Items), want.NextCursor)
		}
		for i, it := range want.Items {
			if exp := fmt.Sprintf("a%02d", 24-i); it.Action != exp {
				t.Fatalf("item %d is %s, want %s (newest first, ties newest first)", i, it.Action, exp)
			}
		}

		// Page through 10 at a time; between pages, record newer entries.
		var got []Item
		f := Filter{Page: web.PageRequest{Limit: 10}}
		for page := 0; ; page++ {
			p := list(t, l, f)
			got = append(got, p.Items...)
			if p.NextCursor == "" {
				if len(p.Items) != 5 {
					t.Fatalf("last page has %d items, want 5", len(p.Items))
				}
				break
			}
			if len(p.Items) != 10 || page > 3 {
				t.Fatalf("page %d: %d items", page, len(p.Items))
			}
			record(t, db, t0.Add(time.Hour+time.Duration(page)*time.Second),
				Entry{ActorID: "u1", Action: "later", TargetType: "x"})
			f.Page.Cursor = p.NextCursor
		}
		if actions(Page{Items: got}) != actions(want) {
			t.Fatalf("paged\n %s\nwant\n %s", actions(Page{Items: got}), actions(want))
		}

		t.Run("cursor with a filter", func(t *testing.T) {
			p1 := list(t, l, Filter{Action: "later", Page: web.PageRequest{Limit: 1}})
			p2 := list(t, l, Filter{Action: "later", Page: web.PageRequest{Limit: 1, Cursor: p1.NextCursor}})
			if len(p1.Items) != 1 || len(p2.Items) != 1 || p2.NextCursor != "" ||
				!p1.Items[0].CreatedAt.After(p2.Items[0].CreatedAt) {
				t.Fatalf("pages %v / %v: want the two later entries, newest first, then no cursor", p1, p2)
			}
		})
		t.Run("default and maximum limit", func(t *testing.T) {
			var es []Entry
			for range 100 {
				es = append(es, Entry{ActorID: "bulk", Action: "bulk", TargetType: "x"})
			}
			record(t, db, t0.Add(2*time.Hour), es...)
			if p := list(t, l, Filter{}); len(p.Items) != web.DefaultPageLimit || p.NextCursor == "" {
				t.Fatalf("default page: %d items, cursor %q", len(p.Items), p.NextCursor)
			}
			if p := list(t, l, Filter{Page: web.PageRequest{Limit: 1000}}); len(p.Items) != web.MaxPageLimit || p.NextCursor == "" {
				t.Fatalf("capped page: %d items, cursor %q", len(p.Items), p.NextCursor)
			}
		})
	}, Migrations())
}

func TestListRejectsBadFilters(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite, Migrations())
	l := NewLog(db)
	tests := []struct {
		name  string
		f     Filter
		field string
	}{
		{"negative limit", Filter{Page: web.PageRequest{Limit: -1}}, "limit"},
		{"until before since", Filter{Since: t0, Until: t0.Add(-time.Second)}, "until"},
		{"until equals since", Filter{Since: t0, Until: t0}, "until"},
		{"cursor not base64", Filter{Page: web.PageRequest{Cursor: "!!"}}, "cursor"},
		{"cursor edited", Filter{Page: web.PageRequest{Cursor: "x" + web.EncodeCursor(cursor{At: 5, ID: "a"})[1:]}}, "cursor"},
		{"cursor of another shape", Filter{Page: web.PageRequest{Cursor: web.EncodeCursor([]int{1})}}, "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.List(context.Background(), tt.f)
			var e *errs.Error
			if !errors.As(err, &e) || e.Kind != errs.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != tt.field {
				t.Fatalf("err = %v, want Invalid naming %q", err, tt.field)
			}
		})
	}
}

func TestAppendOnly(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		record(t, db, t0, Entry{ActorID: "u1", Action: "user.created", TargetType: "user", TargetID: "u9"})
		stmts := []struct{ name, sql string }{
			{"update", `UPDATE audit_log SET action = 'forged'`},
			{"update one column of one row", `UPDATE audit_log SET ip = '203.0.113.9' WHERE target_id = 'u9'`},
			{"delete", `DELETE FROM audit_log`},
			{"delete one row", `DELETE FROM audit_log WHERE target_id = 'u9'`},
		}
		if db.Engine() == sqldb.Postgres {
			stmts = append(stmts, struct{ name, sql string }{"truncate", `TRUNCATE audit_log`})
		}
		for _, s := range stmts {
			t.Run(s.name, func(t *testing.T) {
				_, err := db.Writer().ExecContext(context.Background(), s.sql)
				if err == nil || !strings.Contains(err.Error(), "append-only") {
					t.Fatalf("%s: err = %v, want the append-only refusal", s.sql, err)
				}
				p := list(t, NewLog(db), Filter{})
				if len(p.Items) != 1 || p.Items[0].Action != "user.created" || p.Items[0].IP != "" {
					t.Fatalf("the entry changed: %+v", p.Items)
				}
			})
		}
	}, Migrations())
}

func TestRollbackLeavesNoEntry(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		boom := errors.New("the change failed")
		err := db.InTx(ctx, func(tx *sqldb.Tx) error {
			if err := Record(ctx, tx, Entry{ActorID: "u1", Action: "user.deleted", TargetType: "user"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v", err)
		}
		// A savepoint that rolls back takes its entry with it too.
		err = db.InTx(ctx, func(tx *sqldb.Tx) error {
			_ = tx.Savepoint(ctx, func() error {
				if err := Record(ctx, tx, Entry{ActorID: "u1", Action: "in.savepoint", TargetType: "user"}); err != nil {
					return err
				}
				return boom
			})
			return Record(ctx, tx, Entry{ActorID: "u1", Action: "kept", TargetType: "user"})
		})
		if err != nil {
			t.Fatal(err)
		}
		if p := list(t, NewLog(db), Filter{}); actions(p) != "kept" {
			t.Fatalf("entries = %q, want only the committed one", actions(p))
		}
	}, Migrations())
}

func TestRecordRejectsBadEntries(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite, Migrations())
	tests := []struct {
		name string
		e    Entry
	}{
		{"no action", Entry{ActorID: "u1", TargetType: "user"}},
		{"no target type", Entry{ActorID: "u1", Action: "user.created"}},
		{"before not JSON", Entry{Action: "a.b", TargetType: "x", Before: make(chan int)}},
		{"after not JSON", Entry{Action: "a.b", TargetType: "x", After: func() {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.InTx(context.Background(), func(tx *sqldb.Tx) error {
				return Record(context.Background(), tx, tt.e)
			})
			if !errs.Is(err, errs.Internal) {
				t.Fatalf("err = %v, want an Internal error", err)
			}
		})
	}
	if p := list(t, NewLog(db), Filter{}); len(p.Items) != 0 {
		t.Fatalf("rejected entries were stored: %v", actions(p))
	}
}
