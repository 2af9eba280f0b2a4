package accounts

import (
	"time"

	"mercato/internal/platform/jobs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
)

// Module is the accounts module's declaration for the process.
func (s *Service) Module() module.Module {
	return module.Module{
		Name:        "accounts",
		Doc:         "customers, staff, sessions, roles and permissions, address books, MFA, privacy rights",
		Migrations:  []migrate.Source{Migrations()},
		Permissions: Permissions,
		Routes:      s.Routes(),
		Events:      eventTypes,
		Jobs:        []jobs.Job{{Name: "accounts.prune", Every: time.Hour, Run: s.Prune}},
	}
}

// eventTypes are the events the accounts module emits.
var eventTypes = []module.EventType{
	{Type: "customer.registered", Version: 1, Doc: "a customer registered (contact data stays in accounts)",
		Fields: []module.Field{{Name: "customer_id", Type: "string", Doc: "the customer's user id"}}},
	{Type: "customer.erased", Version: 1, Doc: "a customer's personal data was erased: erase yours",
		Fields: []module.Field{{Name: "customer_id", Type: "string", Doc: "the customer's user id"}}},
}
