// Package module is the contract between mercato's modules and the process
// that runs them. A module exports one value, a Module, that says everything
// the process needs of it: its name, migrations, HTTP routes (each with the
// permission it needs), event consumers, periodic jobs, the permissions it
// defines, the event types it emits, and how it exports and erases a
// customer's personal data. cmd/mercato lists the modules once; adding a
// module touches its own package and one line there (docs/modules.md).
//
// A module is built by its own constructor from a Platform (the shared
// technical parts) and whatever small exported APIs of other modules it
// calls. Its use cases are exported methods that take the unit's *sqldb.Tx,
// so that one unit of the write path can compose several modules, plus a
// convenience that runs them through the write path; HTTP handlers decode,
// call and encode.
package module

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/notify"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// Platform is what the process gives every module's constructor.
type Platform struct {
	// DB is the database: DB.Reader() for reads outside a unit.
	DB *sqldb.DB
	// Write is the write path: every state change is a unit run through it
	// (the group-commit batcher in a server, *sqldb.DB in tools and tests).
	Write sqldb.Committer
	// Idem makes the modules' POST routes idempotent.
	Idem *web.Idempotency
	// Logger and Registerer receive the module's logs and metrics.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Notify is the process's one listener for what other replicas change
	// (PostgreSQL LISTEN): the caches of every module hear their
	// invalidations through it, and the process runs it. Nil in tools and
	// tests; see Hub.
	Notify *notify.Hub
}

// Hub returns the process's notify hub and false, or — when the platform
// has none — a hub of the module's own and true: the module then runs it
// itself (its RunInvalidations), over a connection of its own.
func (p Platform) Hub() (hub *notify.Hub, own bool) {
	if p.Notify != nil || p.DB == nil {
		return p.Notify, false
	}
	return notify.New(p.DB), true
}

// Module is one module's declaration. Name is required; every other part
// may be empty.
type Module struct {
	// Name identifies the module: `serve --modules` names, migration rows.
	Name string
	// Doc is one line saying what the module owns.
	Doc string
	// Migrations are the module's schema (applied whether or not the module
	// runs in this process: every process shares one database).
	Migrations []migrate.Source
	// Permissions are the permissions the module defines (and its routes
	// use). Names are "<noun>.<verb>".
	Permissions []Permission
	// Routes are the module's HTTP endpoints.
	Routes []web.Route
	// Consumers are the module's durable event consumers.
	Consumers []inbox.Consumer
	// Jobs are the module's periodic jobs (run once per period across
	// replicas by the job runner).
	Jobs []jobs.Job
	// Events lists the event types the module emits (docs/events.md is
	// generated from every module's list).
	Events []event.TypeInfo
	// Privacy exports and erases the module's personal data of a customer.
	Privacy *Privacy
}

// Permission is one permission a module defines, with the staff roles that
// hold it besides admin (who holds every permission).
type Permission struct {
	Name  string
	Doc   string
	Roles []string
}

// Privacy is a module's part of the personal-data rights (PIPL / GDPR).
type Privacy struct {
	// Section names the module's part of an export (a top-level key).
	Section string
	// Export returns the module's personal data of the customer userID.
	Export func(ctx context.Context, userID string) (any, error)
	// Erase removes or anonymises the module's personal data of userID
	// inside tx, the erasure's one unit.
	Erase func(ctx context.Context, tx *sqldb.Tx, userID string) error
}

var (
	nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	permRE = regexp.MustCompile(`^[a-z][a-z_]*\.[a-z][a-z_]*$`)
)

// Check reports every wiring mistake in mods: an empty or malformed name,
// two modules of one name, a consumer name that is no lower_snake_case
// durable name or that two modules use, a permission defined twice or malformed, a route
// whose permission no module defines, two privacy sections of one name, and
// a malformed event type or one that two modules emit.
func Check(mods []Module) error {
	var problems []string
	names := map[string]bool{}
	perms := map[string]string{}
	events := map[string]string{}
	consumers := map[string]string{}
	sections := map[string]string{"profile": "accounts", "addresses": "accounts", "login_addresses": "accounts", "exported_at": "accounts"}
	for _, m := range mods {
		if !nameRE.MatchString(m.Name) {
			problems = append(problems, fmt.Sprintf("module name %q is not lower_snake_case", m.Name))
		}
		if names[m.Name] {
			problems = append(problems, fmt.Sprintf("two modules named %q", m.Name))
		}
		names[m.Name] = true
		for _, p := range m.Permissions {
			if !permRE.MatchString(p.Name) {
				problems = append(problems, fmt.Sprintf("%s: permission %q is not noun.verb", m.Name, p.Name))
			}
			if by, dup := perms[p.Name]; dup {
				problems = append(problems, fmt.Sprintf("permission %q defined by %s and %s", p.Name, by, m.Name))
			}
			perms[p.Name] = m.Name
		}
		if m.Privacy != nil && m.Privacy.Section != "" {
			if by, dup := sections[m.Privacy.Section]; dup && by != m.Name {
				problems = append(problems, fmt.Sprintf("export section %q of %s is taken by %s", m.Privacy.Section, m.Name, by))
			}
			sections[m.Privacy.Section] = m.Name
		}
		for _, c := range m.Consumers {
			// The name is the bus's durable name: NATS refuses dots and
			// wildcards in it.
			if !nameRE.MatchString(c.Name) {
				problems = append(problems, fmt.Sprintf("%s: consumer name %q is not lower_snake_case", m.Name, c.Name))
			}
			if by, dup := consumers[c.Name]; dup {
				problems = append(problems, fmt.Sprintf("consumer %q defined by %s and %s", c.Name, by, m.Name))
			}
			consumers[c.Name] = m.Name
		}
		for _, e := range m.Events {
			if err := event.CheckType(e.Type); err != nil {
				problems = append(problems, fmt.Sprintf("%s: event type %q: %v", m.Name, e.Type, err))
			}
			if by, dup := events[e.Type]; dup {
				problems = append(problems, fmt.Sprintf("event type %q emitted by %s and %s", e.Type, by, m.Name))
			}
			events[e.Type] = m.Name
		}
	}
	for _, m := range mods {
		for _, r := range m.Routes {
			if p := r.Access.Perm(); p != "" && perms[p] == "" {
				problems = append(problems, fmt.Sprintf("%s: route %s needs permission %q, which no module defines", m.Name, r.Pattern(), p))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("module wiring: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Select returns the modules named in names (all of mods when names is
// empty), in mods' order, or an error naming the unknown ones.
func Select(mods []Module, names []string) ([]Module, error) {
	if len(names) == 0 {
		return mods, nil
	}
	var unknown []string
	for _, n := range names {
		if !slices.ContainsFunc(mods, func(m Module) bool { return m.Name == n }) {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown module %s (known: %s)", strings.Join(unknown, ", "), strings.Join(Names(mods), ", "))
	}
	var out []Module
	for _, m := range mods {
		if slices.Contains(names, m.Name) {
			out = append(out, m)
		}
	}
	return out, nil
}

// Names lists the modules' names in order.
func Names(mods []Module) []string {
	out := make([]string, len(mods))
	for i, m := range mods {
		out[i] = m.Name
	}
	return out
}

// Migrations lists every module's migration sources, in module order.
func Migrations(mods []Module) []migrate.Source {
	var out []migrate.Source
	for _, m := range mods {
		out = append(out, m.Migrations...)
	}
	return out
}

// Permissions lists every permission the modules define, sorted by name.
func Permissions(mods []Module) []Permission {
	var out []Permission
	for _, m := range mods {
		out = append(out, m.Permissions...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Events lists every event type the modules emit, sorted by type.
func Events(mods []Module) []event.TypeInfo {
	var out []event.TypeInfo
	for _, m := range mods {
		out = append(out, m.Events...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// Privacies lists the modules' privacy parts, in module order.
func Privacies(mods []Module) []Privacy {
	var out []Privacy
	for _, m := range mods {
		if m.Privacy != nil {
			out = append(out, *m.Privacy)
		}
	}
	return out
}
