package promotions

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"mercato/internal/accounts"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web/webtest"
	"mercato/internal/pricing"
)

// The life of a promotion through the staff API: access, creation (evented,
// audited, versioned), reads, a change (a new version), deactivation.
func TestPromotionScenario(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		spec := webtest.CheckOpenAPI(t, e.router)
		opID, op := e.staff("op@example.com", accounts.RoleOperator)
		_, cs := e.staff("cs@example.com", accounts.RoleCustomerService)
		_, ann := e.customer("ann@example.com")
		const base = "/api/v1/admin/promotions"
		body := map[string]any{
			"name": "Spring sale", "kind": "percentage", "percent_bp": 1500, "priority": 2,
			"conditions": map[string]any{"min_subtotal": map[string]any{"amount": 5000, "currency": "EUR"}, "channels": []string{"web"}},
			"window":     map[string]any{"starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-02-01T00:00:00Z"},
			"limits":     map[string]any{"total_uses": 100, "per_customer": 1, "budget": map[string]any{"amount": 100000, "currency": "EUR"}},
			"codes":      []string{"spring26", " Spring-B "},
		}

		// Access: anonymous 401, a customer and staff without the permission 403.
		webtest.AssertProblem(t, e.c.Do("POST", base, body), http.StatusUnauthorized, "unauthorized")
		webtest.AssertProblem(t, ann.Do("POST", base, body), http.StatusForbidden, "forbidden")
		webtest.AssertProblem(t, ann.Do("GET", base, nil), http.StatusForbidden, "forbidden")
		webtest.AssertProblem(t, cs.Do("POST", base, body), http.StatusForbidden, "forbidden")
		if n := e.count("promotions_promotions", ""); n != 0 {
			t.Fatalf("%d promotions after refusals", n)
		}

		r := op.Do("POST", base, body)
		r.WantStatus(t, http.StatusCreated)
		spec.ValidateResponse(t, "POST", base, r)
		var p Promotion
		r.Decode(t, &p)
		if p.ID == "" || p.Version != 1 || p.Status != StatusActive || p.Name != "Spring sale" || p.PercentBP != 1500 ||
			strings.Join(p.Codes, ",") != "SPRING26,SPRING-B" || p.Usage.Uses != 0 || p.Usage.Spent.Amount() != 0 ||
			!p.CreatedAt.Equal(e.clock.Now()) || *p.Limits.TotalUses != 100 {
			t.Errorf("created %+v", p)
		}
		// Codes are unique case-insensitively.
		dup := map[string]any{"name": "Copy", "kind": "free_shipping", "codes": []string{"SPRING-b"}}
		pr := webtest.AssertProblem(t, op.Do("POST", base, dup), http.StatusConflict, string(CodeCodeTaken))
		webtest.AssertFieldError(t, pr, "codes")

		// Reads.
		r = op.Do("GET", base+"/"+p.ID, nil)
		r.WantStatus(t, http.StatusOK)
		spec.ValidateResponse(t, "GET", base+"/{id}", r)
		var got Promotion
		r.Decode(t, &got)
		if got.ID != p.ID || got.Version != 1 || strings.Join(got.Codes, ",") != "SPRING26,SPRING-B" {
			t.Errorf("read %+v", got)
		}
		webtest.AssertProblem(t, op.Do("GET", base+"/nope", nil), http.StatusNotFound, "not_found")
		auto := e.create(Rule{Name: "Automatic", Kind: pricing.FreeShipping})
		r = op.Do("GET", base+"?limit=1", nil)
		r.WantStatus(t, http.StatusOK)
		spec.ValidateResponse(t, "GET", base, r)
		if r.Field("items.0.id") != auto.ID || r.Field("next_cursor") == nil {
			t.Errorf("first page: %s", r.Body)
		}
		r = op.Do("GET", base+"?limit=1&cursor="+r.Field("next_cursor").(string), nil)
		if r.Field("items.0.id") != p.ID || r.Field("next_cursor") != nil {
			t.Errorf("second page: %s", r.Body)
		}
		webtest.AssertProblem(t, op.Do("GET", base+"?status=gone", nil), http.StatusUnprocessableEntity, "validation_failed")

		// A change: version 2, one code replaced, the rest kept.
		e.clock.Advance(60e9)
		r = op.Do("PATCH", base+"/"+p.ID, map[string]any{"percent_bp": 2000, "codes": []string{"SPRING26", "SPRING-C"}})
		r.WantStatus(t, http.StatusOK)
		spec.ValidateResponse(t, "PATCH", base+"/{id}", r)
		var v2 Promotion
		r.Decode(t, &v2)
		if v2.Version != 2 || v2.PercentBP != 2000 || v2.Name != "Spring sale" || v2.Conditions.MinSubtotal.Amount() != 5000 ||
			strings.Join(v2.Codes, ",") != "SPRING26,SPRING-C" || !v2.UpdatedAt.Equal(e.clock.Now()) {
			t.Errorf("patched %+v", v2)
		}
		// The freed code can be taken; the kept one cannot.
		webtest.AssertProblem(t, op.Do("POST", base, map[string]any{"name": "B", "kind": "free_shipping", "codes": []string{"spring26"}}),
			http.StatusConflict, string(CodeCodeTaken))
		r = op.Do("POST", base, map[string]any{"name": "B", "kind": "free_shipping", "codes": []string{"spring-b"}})
		r.WantStatus(t, http.StatusCreated)
		other := r.Field("id").(string)
		// Taking another promotion's code in a change: 409, no version made.
		pr = webtest.AssertProblem(t, op.Do("PATCH", base+"/"+p.ID, map[string]any{"codes": []string{"Spring-B"}}),
			http.StatusConflict, string(CodeCodeTaken))
		webtest.AssertFieldError(t, pr, "codes")

		// Deactivation: version 3; a second one is 409.
		r = op.Do("POST", base+"/"+p.ID+"/deactivate", nil)
		r.WantStatus(t, http.StatusOK)
		spec.ValidateResponse(t, "POST", base+"/{id}/deactivate", r)
		if r.Field("status") != StatusInactive || r.Field("version") != float64(3) {
			t.Errorf("deactivated: %s", r.Body)
		}
		webtest.AssertProblem(t, op.Do("POST", base+"/"+p.ID+"/deactivate", nil), http.StatusConflict, "invalid_transition")
		webtest.AssertProblem(t, op.Do("PATCH", base+"/nope", map[string]any{"name": "x"}), http.StatusNotFound, "not_found")
		if ps := e.active([]string{"spring26"}, "c"); len(ps) != 1 || ps[0].ID != auto.ID {
			t.Errorf("an inactive promotion is active: %+v", ps)
		}

		// Events, audit entries and versions: one per change, in order.
		var evs []string
		for _, ev := range e.events() {
			evs = append(evs, ev.Type+" "+ev.AggregateID+" v"+itoa(ev.Data.Version)+" "+ev.Data.Status)
		}
		want := []string{"promotion.created " + p.ID + " v1 active", "promotion.created " + auto.ID + " v1 active",
			"promotion.updated " + p.ID + " v2 active", "promotion.created " + other + " v1 active", "promotion.updated " + p.ID + " v3 inactive"}
		if strings.Join(evs, "\n") != strings.Join(want, "\n") {
			t.Errorf("events:\n%s\nwant:\n%s", strings.Join(evs, "\n"), strings.Join(want, "\n"))
		}
		var acts []string
		for _, a := range e.audits() {
			if a.TargetID == p.ID {
				acts = append(acts, a.Actor+" "+a.Action)
				if a.After == "" || (a.Action != "promotion.created") == (a.Before == "") {
					t.Errorf("audit %s: before %q after %q", a.Action, a.Before, a.After)
				}
			}
		}
		if strings.Join(acts, ",") != opID+" promotion.created,"+opID+" promotion.updated,"+opID+" promotion.deactivated" {
			t.Errorf("audit entries %v", acts)
		}
		if n := e.count("promotions_versions", "promotion_id = $1", p.ID); n != 3 {
			t.Errorf("%d versions, want 3", n)
		}
	})
}

// Bad input is a 4xx naming the field, and writes nothing.
func TestBadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		_, op := e.staff("op@example.com", accounts.RoleOperator)
		const base = "/api/v1/admin/promotions"
		r := op.Do("POST", base, map[string]any{"name": "Taken", "kind": "percentage", "percent_bp": 100, "codes": []string{"TAKEN"},
			"limits": map[string]any{"total_uses": 2}})
		r.WantStatus(t, http.StatusCreated)
		id := r.Field("id").(string)
		long := strings.Repeat("x", MaxNameLen+1)
		cases := []struct {
			name   string
			body   any
			status int
			code   string
			field  string
		}{
			{"negative percentage", map[string]any{"name": "n", "kind": "percentage", "percent_bp": -5}, 422, "validation_failed", "percent_bp"},
			{"over 100 %", map[string]any{"name": "n", "kind": "percentage", "percent_bp": 10001}, 422, "validation_failed", "percent_bp"},
			{"negative fixed", map[string]any{"name": "n", "kind": "fixed", "amount": map[string]any{"amount": -1, "currency": "EUR"}}, 422, "validation_failed", "amount"},
			{"unknown kind", map[string]any{"name": "n", "kind": "half_off"}, 422, "validation_failed", "kind"},
			{"end before start", map[string]any{"name": "n", "kind": "free_shipping",
				"window": map[string]any{"starts_at": "2030-02-01T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}}, 422, "validation_failed", "window.ends_at"},
			{"no name", map[string]any{"kind": "free_shipping"}, 422, "validation_failed", "name"},
			{"long name", map[string]any{"name": long, "kind": "free_shipping"}, 422, "validation_failed", "name"},
			{"long code", map[string]any{"name": "n", "kind": "free_shipping", "codes": []string{strings.Repeat("A", MaxCodeLen+1)}}, 422, "validation_failed", "codes.0"},
			{"bad code", map[string]any{"name": "n", "kind": "free_shipping", "codes": []string{"TEN OFF"}}, 422, "validation_failed", "codes.0"},
			{"code twice", map[string]any{"name": "n", "kind": "free_shipping", "codes": []string{"AB", "ab"}}, 422, "validation_failed", "codes.1"},
			{"zero uses", map[string]any{"name": "n", "kind": "free_shipping", "limits": map[string]any{"total_uses": 0}}, 422, "validation_failed", "limits.total_uses"},
			{"negative budget", map[string]any{"name": "n", "kind": "free_shipping",
				"limits": map[string]any{"budget": map[string]any{"amount": -100, "currency": "EUR"}}}, 422, "validation_failed", "limits.budget"},
			{"bxgy without rule", map[string]any{"name": "n", "kind": "bxgy", "percent_bp": 10000}, 422, "validation_failed", "bxgy"},
			{"code taken", map[string]any{"name": "n", "kind": "free_shipping", "codes": []string{"taken"}}, 409, string(CodeCodeTaken), "codes"},
			{"unknown field", map[string]any{"name": "n", "kind": "free_shipping", "discount": 5}, 400, "malformed_request", ""},
			{"not JSON", "{", 400, "malformed_request", ""},
		}
		for _, tc := range cases {
			pr := webtest.AssertProblem(t, op.Do("POST", base, tc.body), tc.status, tc.code)
			if tc.field != "" {
				webtest.AssertFieldError(t, pr, tc.field)
			}
		}
		patches := []struct {
			name  string
			body  any
			field string
		}{
			{"over 100 %", map[string]any{"percent_bp": 20000}, "percent_bp"},
			{"long name", map[string]any{"name": long}, "name"},
			{"long code", map[string]any{"codes": []string{strings.Repeat("B", MaxCodeLen+1)}}, "codes.0"},
			{"unknown kind", map[string]any{"kind": "bogof"}, "kind"},
			{"fixed without amount", map[string]any{"kind": "fixed"}, "amount"},
			{"zero per customer", map[string]any{"limits": map[string]any{"per_customer": 0}}, "limits.per_customer"},
			{"end before start", map[string]any{"window": map[string]any{"starts_at": "2030-02-01T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}}, "window.ends_at"},
		}
		for _, tc := range patches {
			pr := webtest.AssertProblem(t, op.Do("PATCH", base+"/"+id, tc.body), 422, "validation_failed")
			webtest.AssertFieldError(t, pr, tc.field)
		}
		// A limit below what was used already.
		ctx := context.Background()
		p, err := e.svc.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range []string{"o-1", "o-2"} {
			if err := e.svc.Redeem(ctx, o, "ann", []pricing.AppliedPromotion{applied(p, 10)}); err != nil {
				t.Fatal(err)
			}
		}
		pr := webtest.AssertProblem(t, op.Do("PATCH", base+"/"+id, map[string]any{"limits": map[string]any{"total_uses": 1}}), 422, "validation_failed")
		webtest.AssertFieldError(t, pr, "limits")
		// Nothing of any refusal was written.
		if n := e.count("promotions_promotions", ""); n != 1 {
			t.Errorf("%d promotions, want 1", n)
		}
		if n := e.count("promotions_versions", ""); n != 1 {
			t.Errorf("%d versions, want 1", n)
		}
		if n := len(e.events()); n != 1 {
			t.Errorf("%d events, want 1", n)
		}
		if n := len(e.audits()); n != 1 {
			t.Errorf("%d audit entries, want 1", n)
		}
		if n := e.count("promotions_codes", ""); n != 1 {
			t.Errorf("%d codes, want 1", n)
		}
		// Raising the limit is a new version.
		r = op.Do("PATCH", base+"/"+id, map[string]any{"limits": map[string]any{"total_uses": 3}})
		r.WantStatus(t, http.StatusOK)
		if r.Field("version") != float64(2) || r.Field("usage.uses") != float64(2) {
			t.Errorf("raised: %s", r.Body)
		}
	})
}

// A customer's redemptions are exported and, on erasure, anonymised: the
// promotion's counts stay, the customer's counters go.
func TestPrivacy(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := e.create(coupon("MINE", Limits{PerCustomer: ptr[int64](1)}))
		annID, ann := e.customer("ann@example.com")
		if err := e.svc.Redeem(ctx, "o-1", annID, []pricing.AppliedPromotion{applied(p, 250)}); err != nil {
			t.Fatal(err)
		}
		r := ann.Do("GET", "/api/v1/me/export", nil)
		r.WantStatus(t, http.StatusOK)
		if r.Field("promotions.0.order_ref") != "o-1" || r.Field("promotions.0.code") != "MINE" ||
			r.Field("promotions.0.discount.amount") != float64(250) {
			t.Errorf("export: %s", r.Body)
		}
		if err := e.db.Do(ctx, func(tx *sqldb.Tx) error { return e.svc.EraseTx(ctx, tx, annID) }); err != nil {
			t.Fatal(err)
		}
		if n := e.count("promotions_redemptions", "customer_id = $1", annID); n != 0 {
			t.Errorf("%d redemptions still name the customer", n)
		}
		if n := e.count("promotions_customer_uses", "customer_id = $1", annID); n != 0 {
			t.Errorf("%d counters still name the customer", n)
		}
		if uses, spent := e.counter(p.ID); uses != 1 || spent != 250 {
			t.Errorf("counter (%d, %d) after erasure", uses, spent)
		}
		out, err := e.svc.Export(ctx, annID)
		if err != nil || len(out.([]ExportedRedemption)) != 0 {
			t.Errorf("export after erasure: %v, %v", out, err)
		}
		// The erased customer's order is still released.
		if err := e.svc.Release(ctx, "o-1"); err != nil {
			t.Fatal(err)
		}
		if uses, spent := e.counter(p.ID); uses != 0 || spent != 0 {
			t.Errorf("counter (%d, %d) after release", uses, spent)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
