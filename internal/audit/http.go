package audit

import (
	"errors"
	"net/http"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/web"
)

// PermRead is the permission that reading the audit log needs.
const PermRead = "audit.read"

// Module is the audit module's declaration: its table, its permission and
// its one route. Other modules write the log with Record in their units.
func (l *Log) Module() module.Module {
	return module.Module{
		Name:        "audit",
		Doc:         "the audit log of staff actions",
		Migrations:  []migrate.Source{Migrations()},
		Permissions: []module.Permission{{Name: PermRead, Doc: "read the audit log of staff actions"}},
		Routes:      Routes(l),
	}
}

// Routes returns the audit module's HTTP routes:
//
//	GET /api/v1/admin/audit?actor=&action=&target_type=&target_id=&since=&until=&limit=&cursor=
//
// answers a Page (API.md "Lists"). since and until are RFC 3339 times
// (since inclusive, until exclusive); limit is 1–100 (larger is capped),
// 20 when absent. A malformed parameter is 422 validation_failed naming it.
func Routes(l *Log) []web.Route {
	return []web.Route{{
		Method:   http.MethodGet,
		Path:     "/api/v1/admin/audit",
		Summary:  "List the audit log of staff actions, newest first",
		Tag:      "audit",
		Access:   web.Permission(PermRead),
		Response: Page{},
		Query:    []string{"actor", "action", "target_type", "target_id", "since", "until", "limit", "cursor"},
		Handler:  l.handleList,
	}}
}

func (l *Log) handleList(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	page, err := l.List(r.Context(), f)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, page)
}

// parseFilter reads the list's query parameters; every malformed one is
// reported, by name, in one Invalid error. An empty parameter is absent (a
// filter form sends its empty fields).
func parseFilter(r *http.Request) (Filter, error) {
	q := r.URL.Query()
	f := Filter{
		ActorID:    q.Get("actor"),
		Action:     q.Get("action"),
		TargetType: q.Get("target_type"),
		TargetID:   q.Get("target_id"),
	}
	var v errs.Validation
	page, err := web.PageParams(r)
	var perr *errs.Error
	switch {
	case errors.As(err, &perr) && len(perr.Fields) > 0:
		for _, fe := range perr.Fields { // reported with the other fields
			v.Add(fe.Field, fe.Message)
		}
	case err != nil:
		return Filter{}, err
	}
	f.Page = page
	f.Since = parseTime(&v, q.Get("since"), "since")
	f.Until = parseTime(&v, q.Get("until"), "until")
	return f, v.Err("audit.List")
}

func parseTime(v *errs.Validation, s, field string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		v.Add(field, "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
		return time.Time{}
	}
	return t
}
