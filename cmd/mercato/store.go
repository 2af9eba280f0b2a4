package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"log/slog"

	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
)

// storeFlags are the flags of every sub-command that touches the database.
type storeFlags struct {
	dataDir     string
	databaseURL string
}

func (s *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.dataDir, "data-dir", "./data", "directory for the embedded SQLite database and NATS JetStream store")
	fs.StringVar(&s.databaseURL, "database-url", "", "PostgreSQL URL (postgres://…); empty runs on embedded SQLite under --data-dir")
}

// sources lists every migration, in dependency order: the platform's, then
// every module's (a shop built over no database only to list them).
func sources() []migrate.Source {
	s, err := newShop(module.Platform{Logger: slog.Default()}, nil, shopConfig{})
	if err != nil {
		panic(err) // the module list is wired wrong: every test run fails here
	}
	return s.migrations()
}

// open opens the database and applies pending migrations; applied ones are
// reported on log when it is not nil.
func (s *storeFlags) open(ctx context.Context, log io.Writer) (*sqldb.DB, error) {
	db, err := sqldb.Open(ctx, sqldb.Config{URL: s.databaseURL, DataDir: s.dataDir})
	if err != nil {
		return nil, err
	}
	applied, err := migrate.Up(ctx, db, sources()...)
	if err != nil {
		db.Close()
		return nil, err
	}
	if log != nil {
		for _, a := range applied {
			fmt.Fprintf(log, "migrated %s %03d %s\n", a.Module, a.Version, a.Name)
		}
	}
	return db, nil
}

func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate [flags]", "Apply every pending schema migration and exit. Safe while a server runs.")
	var st storeFlags
	st.register(fs)
	if done, err := helpOK(parse(fs, args, getenv, stdout)); done {
		return err
	}
	db, err := st.open(ctx, stdout)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "database is up to date (%s)\n", db.Engine())
	return nil
}
