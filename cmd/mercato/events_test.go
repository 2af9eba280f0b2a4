package main

import (
	"context"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"mercato/internal/platform/event"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
)

var update = flag.Bool("update", false, "rewrite docs/events.md from the modules' event types")

// eventsDoc is the generated events catalogue, relative to this package.
var eventsDoc = filepath.Join("..", "..", "docs", "events.md")

const eventsDocHead = "<!-- Generated from every module's event types by `go test ./cmd/mercato -run TestEventsDoc -update`;\n" +
	"a test fails when this file is out of date or the server emits a type it does not list. -->\n\n"

func catalogue(t *testing.T) []event.TypeInfo {
	t.Helper()
	s, err := newShop(module.Platform{}, nil, shopConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return module.Events(s.modules)
}

// docs/events.md is what the modules declare.
func TestEventsDoc(t *testing.T) {
	want := eventsDocHead + event.Markdown(catalogue(t))
	if *update {
		if err := os.WriteFile(eventsDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(eventsDoc)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date: run go test ./cmd/mercato -run TestEventsDoc -update", eventsDoc)
	}
}

// Every type the running server appends to the outbox is in the catalogue:
// a scenario that emits each of today's types, then the outbox is read.
func TestEmittedEventsAreDocumented(t *testing.T) {
	documented := map[string]bool{}
	for _, e := range catalogue(t) {
		documented[e.Type] = true
	}
	for name, args := range engines(t) {
		t.Run(name, func(t *testing.T) {
			argv := args(t)
			c, _ := startInProcess(t, nil, argv...)
			reg := c.Do("POST", "/api/v1/auth/register", map[string]string{"email": "ev@example.com", "password": "a long enough password", "name": "E"})
			reg.WantStatus(t, http.StatusCreated)
			c.WithToken(reg.Field("token").(string)).Do("POST", "/api/v1/me/erase", map[string]string{"password": "a long enough password"}).WantStatus(t, http.StatusOK)

			var cfg sqldb.Config
			for i := 0; i+1 < len(argv); i += 2 {
				switch argv[i] {
				case "--data-dir":
					cfg.DataDir = argv[i+1]
				case "--database-url":
					cfg.URL = argv[i+1]
				}
			}
			db, err := sqldb.Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			rows, err := db.Reader().Query(`SELECT DISTINCT type FROM outbox`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var seen []string
			for rows.Next() {
				var typ string
				if err := rows.Scan(&typ); err != nil {
					t.Fatal(err)
				}
				seen = append(seen, typ)
				if !documented[typ] {
					t.Errorf("the server emitted %s, which docs/events.md does not document", typ)
				}
			}
			slices.Sort(seen)
			if !slices.Equal(seen, []string{"customer.erased", "customer.registered"}) {
				t.Errorf("emitted %v", seen)
			}
		})
	}
}
