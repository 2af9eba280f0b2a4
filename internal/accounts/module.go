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
		Events:      Events(),
		Jobs:        []jobs.Job{{Name: "accounts.prune", Every: time.Hour, Run: s.Prune}},
	}
}
