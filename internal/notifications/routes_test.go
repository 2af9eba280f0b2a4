package notifications

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web/webtest"
)

// Preferences through the real HTTP server: defaults, a change that picks
// the language of the next mail, and the problems of bad input.
func TestPreferencesHTTP(t *testing.T) {
	var d *smtpd
	forEachEngine(t, func() Config {
		d = startSMTPD(t, nil, "", "")
		return Config{SMTP: relay(d, TLSAuto, nil)}
	}, func(t *testing.T, e *env) {
		c := e.serve()
		me := c.WithToken("c-1:customer")
		r := me.Do("GET", "/api/v1/me/notification-preferences", nil)
		r.WantStatus(t, http.StatusOK)
		if r.Field("locale") != "en" || r.Field("marketing") != false {
			t.Fatalf("defaults: %s", r.Body)
		}
		r = me.Do("PUT", "/api/v1/me/notification-preferences", map[string]any{"locale": "zh-CN", "marketing": true})
		r.WantStatus(t, http.StatusOK)
		r = me.Do("GET", "/api/v1/me/notification-preferences", nil)
		if r.Field("locale") != "zh-CN" || r.Field("marketing") != true {
			t.Fatalf("after PUT: %s", r.Body)
		}
		if ok, err := e.svc.MayMarket(context.Background(), "c-1"); !ok || err != nil {
			t.Errorf("MayMarket after opting in: %v %v", ok, err)
		}
		// Another customer's preferences are their own.
		if r := c.WithToken("c-2:customer").Do("GET", "/api/v1/me/notification-preferences", nil); r.Field("locale") != "en" {
			t.Errorf("c-2 sees %s", r.Body)
		}
		bad := []struct {
			body   any
			status int
			code   string
			field  string
		}{
			{map[string]any{"locale": "fr", "marketing": false}, 422, "validation_failed", "locale"},
			{map[string]any{"locale": "en"}, 422, "validation_failed", "marketing"},
			{map[string]any{"locale": "en", "marketing": false, "sms": true}, 400, "", ""},
			{map[string]any{"locale": string(make([]byte, 100)), "marketing": false}, 0, "", ""},
		}
		for _, b := range bad {
			r := me.Do("PUT", "/api/v1/me/notification-preferences", b.body)
			if b.status == 0 { // over maxlen: refused as a client's mistake
				if r.Status < 400 || r.Status >= 500 {
					t.Errorf("%v: status %d", b.body, r.Status)
				}
				continue
			}
			if b.code == "" {
				if r.Status != b.status {
					t.Errorf("%v: status %d, want %d", b.body, r.Status, b.status)
				}
				continue
			}
			p := webtest.AssertProblem(t, r, b.status, b.code)
			webtest.AssertFieldError(t, p, b.field)
		}
		if r := c.Do("GET", "/api/v1/me/notification-preferences", nil); r.Status != http.StatusUnauthorized {
			t.Errorf("anonymous: %d", r.Status)
		}
		// The next mail is in Chinese.
		e.shop.addOrder("o-1", "M-1", "c-1", "李雷", 100)
		e.deliver(e.eventFor(KindOrderPaid, "o-1"))
		e.send()
		if got := d.received(); len(got) != 1 || parseMail(t, got[0].data).subject != "订单 M-1 已付款" {
			t.Fatalf("received %d", len(got))
		}
	})
}

// Staff read the log with notifications.read, filtered by customer and
// status, page by page; customers may not.
func TestAdminLogHTTP(t *testing.T) {
	forEachEngine(t, func() Config { return Config{} }, func(t *testing.T, e *env) {
		for _, o := range []struct{ id, cust string }{{"o-1", "c-1"}, {"o-2", "c-1"}, {"o-3", "c-2"}} {
			e.shop.addOrder(o.id, "M-"+o.id, o.cust, "N", 100)
			e.deliver(e.eventFor(KindOrderPlaced, o.id))
		}
		c := e.serve()
		if r := c.WithToken("c-1:customer").Do("GET", "/api/v1/admin/notifications", nil); r.Status != http.StatusForbidden {
			t.Errorf("customer: %d", r.Status)
		}
		tests := []struct {
			role, query string
			want        []string // order ids, newest first
		}{
			{"customer_service", "?customer_id=c-1", []string{"o-2", "o-1"}},
			{"operator", "?status=skipped", []string{"o-3", "o-2", "o-1"}},
			{"operator", "?status=sent", nil},
			{"admin", "?customer_id=c-2&status=skipped", []string{"o-3"}},
		}
		for _, tc := range tests {
			r := c.WithToken("s-1:"+tc.role).Do("GET", "/api/v1/admin/notifications"+tc.query, nil)
			r.WantStatus(t, http.StatusOK)
			var page struct {
				Items []Message `json:"items"`
			}
			r.Decode(t, &page)
			var got []string
			for _, m := range page.Items {
				got = append(got, m.OrderID)
			}
			if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Errorf("%s%s: %v, want %v", tc.role, tc.query, got, tc.want)
			}
		}
		// Paging: one per page, three pages.
		staff := c.WithToken("s-1:operator")
		var seen []string
		path := "/api/v1/admin/notifications?limit=1"
		for range 4 {
			r := staff.Do("GET", path, nil)
			r.WantStatus(t, http.StatusOK)
			var page struct {
				Items      []Message `json:"items"`
				NextCursor string    `json:"next_cursor"`
			}
			r.Decode(t, &page)
			for _, m := range page.Items {
				seen = append(seen, m.OrderID)
			}
			if page.NextCursor == "" {
				break
			}
			path = "/api/v1/admin/notifications?limit=1&cursor=" + page.NextCursor
		}
		if len(seen) != 3 {
			t.Errorf("pages gave %v", seen)
		}
		p := webtest.AssertProblem(t, staff.Do("GET", "/api/v1/admin/notifications?status=lost", nil), 422, "validation_failed")
		webtest.AssertFieldError(t, p, "status")
	})
}

// The export lists the customer's messages without bodies; erasure deletes
// them and the preferences, and nobody else's.
func TestPrivacy(t *testing.T) {
	var d *smtpd
	forEachEngine(t, func() Config {
		d = startSMTPD(t, nil, "", "")
		return Config{SMTP: relay(d, TLSAuto, nil)}
	}, func(t *testing.T, e *env) {
		e.shop.addOrder("o-1", "M-1", "c-1", "Secret Name", 100)
		e.shop.addOrder("o-2", "M-2", "c-2", "Other", 100)
		e.setLocale("c-1", LocaleZH)
		e.deliver(e.eventFor(KindOrderPlaced, "o-1"))
		e.deliver(e.eventFor(KindOrderPlaced, "o-2"))
		ctx := context.Background()
		mod := e.svc.Module()
		x, err := mod.Privacy.Export(ctx, "c-1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(x)
		var got struct {
			Preferences Preferences       `json:"preferences"`
			Messages    []json.RawMessage `json:"messages"`
		}
		if err := json.Unmarshal(b, &got); err != nil || got.Preferences.Locale != LocaleZH || len(got.Messages) != 1 {
			t.Fatalf("export %s (%v)", b, err)
		}
		var m map[string]any
		_ = json.Unmarshal(got.Messages[0], &m)
		if m["kind"] != KindOrderPlaced || m["status"] != StatusQueued || m["order_id"] != "o-1" || len(m) != 4 {
			t.Errorf("exported message %v, want kind, order_id, status, created_at only", m)
		}
		if err := e.db.Do(ctx, func(tx *sqldb.Tx) error { return mod.Privacy.Erase(ctx, tx, "c-1") }); err != nil {
			t.Fatal(err)
		}
		if n := len(e.messages("c-1")); n != 0 {
			t.Errorf("%d messages left after erasure", n)
		}
		if p, _ := e.svc.Preferences(ctx, "c-1"); p.Locale != LocaleEN {
			t.Errorf("preferences left: %+v", p)
		}
		if n := len(e.messages("c-2")); n != 1 {
			t.Errorf("c-2 has %d messages", n)
		}
		// The erased customer's queued mail is gone: only c-2's goes.
		e.send()
		if got := d.received(); len(got) != 1 || got[0].to != "c-2@example.com" {
			t.Errorf("received %v", got)
		}
	})
}
