package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"mercato/internal/catalog/search"
	"mercato/internal/catalog/search/blevesearch"
	"mercato/internal/catalog/search/pgsearch"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
)

// The search index implementations --search selects.
const (
	searchBleve    = "bleve"    // embedded, files under --data-dir/search (the default)
	searchPostgres = "postgres" // PostgreSQL full-text search + trigrams, shared by replicas
)

// searchFlag registers --search on fs.
func searchFlag(fs *flag.FlagSet) *choiceFlag {
	f := &choiceFlag{value: searchBleve, choices: []string{searchBleve, searchPostgres}}
	fs.Var(f, "search", "product search `index`: bleve (embedded, under --data-dir/search) or postgres\n(full-text search in the database, shared by replicas; needs --database-url)")
	return f
}

// checkSearch refuses a --search the database cannot serve.
func checkSearch(kind string, st storeFlags) error {
	if kind == searchPostgres && st.databaseURL == "" {
		return errors.New("--search=postgres needs --database-url (a PostgreSQL database)")
	}
	return nil
}

// openSearch opens the product search index kind over db.
func openSearch(ctx context.Context, kind string, st storeFlags, db *sqldb.DB) (search.Index, error) {
	if kind == searchPostgres {
		return pgsearch.New(ctx, db)
	}
	return blevesearch.Open(filepath.Join(absDir(st.dataDir), "search"))
}

const searchGroupUsage = `Usage: mercato search <command> [flags]

Commands:
  reindex   rebuild the product search index from the catalogue
`

const reindexSynopsis = `Rebuild the product search index from the catalogue, printing a progress
line. With --search=bleve (the default) the index lives under --data-dir and only
one process may open it: stop the server first (a server also rebuilds an
empty index when it starts). With --search=postgres it runs beside servers.`

func cmdSearch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return textUsage(searchGroupUsage, "search needs a command")
	}
	switch args[0] {
	case "reindex":
		return cmdReindex(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, searchGroupUsage)
		return nil
	}
	return textUsage(searchGroupUsage, "unknown search command %q", args[0])
}

func cmdReindex(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("search reindex [flags]", reindexSynopsis)
	var st storeFlags
	st.register(fs)
	kind := searchFlag(fs)
	if done, err := helpOK(parse(fs, args, getenv, stdout)); done {
		return err
	}
	if err := checkSearch(kind.value, st); err != nil {
		return usagef(fs, "%v", err)
	}
	if kind.value == searchBleve {
		lock, err := lockDataDir(absDir(st.dataDir))
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	db, err := st.open(ctx, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	idx, err := openSearch(ctx, kind.value, st, db)
	if err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	defer idx.Close()
	sh, err := newShop(module.Platform{DB: db, Write: db, Logger: slog.Default()}, nil, shopConfig{searchIndex: idx})
	if err != nil {
		return err
	}
	defer sh.accounts.Close()
	start := time.Now()
	last := time.Time{}
	err = sh.catalog.Indexer().Rebuild(ctx, func(done, total int) {
		// One progress line a second, and the last one.
		if now := time.Now(); done == total || now.Sub(last) >= time.Second {
			last = now
			fmt.Fprintf(stderr, "reindex: %d/%d products\n", done, total)
		}
	})
	if err != nil {
		return err
	}
	n, err := idx.Count(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "search index (%s) rebuilt: %d products in %s\n", kind.value, n, time.Since(start).Round(time.Millisecond))
	return nil
}
