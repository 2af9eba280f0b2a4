package module

import (
	"strings"
	"testing"

	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/web"
)

func TestCheck(t *testing.T) {
	route := func(perm string) web.Route {
		return web.Route{Method: "GET", Path: "/api/v1/admin/x", Access: web.Permission(perm)}
	}
	tests := []struct {
		name string
		mods []Module
		want []string // substrings of the error; none: no error
	}{
		{"clean", []Module{
			{Name: "accounts", Permissions: []Permission{{Name: "staff.manage"}}},
			{Name: "orders", Permissions: []Permission{{Name: "orders.read"}}, Routes: []web.Route{route("staff.manage"), route("orders.read")},
				Events: []event.TypeInfo{{Type: "order.placed"}}, Privacy: &Privacy{Section: "orders"}},
		}, nil},
		{"bad and duplicate names", []Module{{Name: "Orders"}, {Name: "x"}, {Name: "x"}},
			[]string{`module name "Orders"`, `two modules named "x"`}},
		{"permission defined twice", []Module{
			{Name: "a", Permissions: []Permission{{Name: "orders.read"}}},
			{Name: "b", Permissions: []Permission{{Name: "orders.read"}, {Name: "bad"}}},
		}, []string{`permission "orders.read" defined by a and b`, `permission "bad" is not noun.verb`}},
		{"route needs an undefined permission", []Module{{Name: "a", Routes: []web.Route{route("orders.write")}}},
			[]string{`needs permission "orders.write", which no module defines`}},
		{"export section taken", []Module{{Name: "a", Privacy: &Privacy{Section: "profile"}}},
			[]string{`export section "profile" of a is taken by accounts`}},
		{"consumer name no durable name or taken", []Module{
			{Name: "a", Consumers: []inbox.Consumer{{Name: "a.search"}, {Name: "shared"}}},
			{Name: "b", Consumers: []inbox.Consumer{{Name: "shared"}, {Name: "b_ok"}}},
		}, []string{`consumer name "a.search"`, `consumer "shared" defined by a and b`}},
		{"event type malformed or emitted twice", []Module{
			{Name: "a", Events: []event.TypeInfo{{Type: "placed"}, {Type: "order.line.added"}, {Type: "order.placed"}}},
			{Name: "b", Events: []event.TypeInfo{{Type: "order.placed"}}},
		}, []string{`event type "placed"`, `event type "order.line.added"`, `"order.placed" emitted by a and b`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.mods)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check = nil, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check = %q, want it to say %q", err, w)
				}
			}
		})
	}
}

func TestSelect(t *testing.T) {
	mods := []Module{{Name: "accounts"}, {Name: "audit"}, {Name: "syncmon"}}
	tests := []struct {
		names []string
		want  string // names joined, or the error's text
	}{
		{nil, "accounts,audit,syncmon"},
		{[]string{"syncmon", "accounts"}, "accounts,syncmon"}, // in wiring order
		{[]string{"audit", "orders", "x"}, "unknown module orders, x (known: accounts, audit, syncmon)"},
	}
	for _, tc := range tests {
		got, err := Select(mods, tc.names)
		s := strings.Join(Names(got), ",")
		if err != nil {
			s = err.Error()
		}
		if s != tc.want {
			t.Errorf("Select(%q) = %q, want %q", tc.names, s, tc.want)
		}
	}
}
