// Package migrate applies mercato's schema migrations: numbered SQL files per
// module and per engine, embedded in the module that owns the tables.
//
// A Source's FS holds files named NNN_description.sql: at its top for SQL
// both engines share, and in one directory per engine ("sqlite",
// "postgres") where the SQL differs. Each module's versions are tracked apart
// in schema_migrations(module, version), so modules migrate independently.
// Pending files of a module apply in order, all in one transaction (DDL is
// transactional on both engines); on PostgreSQL the transaction first takes
// an advisory lock so that replicas starting together migrate once.
//
// A small hand-written migrator rather than goose: per-module version rows
// and the shared Tx type are what mercato needs, and they are 150 lines.
package migrate

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"mercato/internal/platform/sqldb"
)

// Source is one module's migrations.
type Source struct {
	Module string
	FS     fs.FS // holds NNN_*.sql (both engines), sqlite/NNN_*.sql and postgres/NNN_*.sql
}

// Embedded is the Source of a module that embeds its migrations as
//
//	//go:embed migrations
//	var migrations embed.FS
//
// (the directory holding sqlite/ and postgres/).
func Embedded(module string, fsys fs.FS) Source {
	sub, err := fs.Sub(fsys, "migrations")
	if err != nil {
		panic(err) // fs.Sub fails only on an invalid path; "migrations" is valid
	}
	return Source{Module: module, FS: sub}
}

// Applied is one migration that Up applied.
type Applied struct {
	Module  string
	Version int
	Name    string
}

// advisory lock key for migrations ("mercato" in ASCII, truncated).
const lockKey = 0x6d657263617461

// Up applies every pending migration of every source, in the order given,
// and reports what it applied. Running it again applies nothing.
func Up(ctx context.Context, db *sqldb.DB, sources ...Source) ([]Applied, error) {
	if err := db.InTx(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			module TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,
			applied_at BIGINT NOT NULL, PRIMARY KEY (module, version))`)
		return err
	}); err != nil && !sqldb.IsUniqueViolation(err) {
		// Two PostgreSQL replicas racing on CREATE TABLE IF NOT EXISTS may see a
		// unique violation on the catalog; the table exists either way.
		return nil, fmt.Errorf("migrate: schema_migrations: %w", err)
	}
	var all []Applied
	for _, src := range sources {
		files, err := list(src, db.Engine())
		if err != nil {
			return all, err
		}
		err = db.InTx(ctx, func(tx *sqldb.Tx) error {
			if tx.Engine() == sqldb.Postgres {
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockKey)); err != nil {
					return err
				}
			}
			done := map[int]bool{}
			rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations WHERE module = $1`, src.Module)
			if err != nil {
				return err
			}
			for rows.Next() {
				var v int
				if err := rows.Scan(&v); err != nil {
					rows.Close()
					return err
				}
				done[v] = true
			}
			if err := rows.Close(); err != nil {
				return err
			}
			for _, f := range files {
				if done[f.version] {
					continue
				}
				body, err := fs.ReadFile(src.FS, f.path)
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, string(body)); err != nil {
					return fmt.Errorf("%s: %w", f.path, err)
				}
				if _, err := tx.ExecContext(ctx,
					`INSERT INTO schema_migrations (module, version, name, applied_at) VALUES ($1, $2, $3, $4)`,
					src.Module, f.version, f.name, sqldb.Micros(tx.Now)); err != nil {
					return err
				}
				all = append(all, Applied{src.Module, f.version, f.name})
			}
			return nil
		})
		if err != nil {
			return all, fmt.Errorf("migrate: module %s: %w", src.Module, err)
		}
	}
	return all, nil
}

type file struct {
	version    int
	name, path string
}

// list returns src's migrations for engine e, ordered by version: the
// files of its engine directory ("sqlite", "postgres") and the files at the
// top of the source, which serve both engines (a migration whose SQL is the
// same on both is one file). Malformed names and a version given twice (in
// one place or both) are refused.
func list(src Source, e sqldb.Engine) ([]file, error) {
	var files []file
	seen := map[int]string{}
	found := false
	for _, dir := range []string{".", string(e)} {
		entries, err := fs.ReadDir(src.FS, dir)
		if err != nil {
			if dir == "." {
				return nil, fmt.Errorf("migrate: module %s: %w", src.Module, err)
			}
			continue // no engine directory: every file is shared
		}
		for _, ent := range entries {
			n := ent.Name()
			if ent.IsDir() || !strings.HasSuffix(n, ".sql") {
				continue
			}
			found = true
			num, _, ok := strings.Cut(n, "_")
			v, err := strconv.Atoi(num)
			if !ok || err != nil || v <= 0 {
				return nil, fmt.Errorf("migrate: module %s: bad migration name %q (want NNN_name.sql)", src.Module, n)
			}
			p := path.Join(dir, n)
			if prev, dup := seen[v]; dup {
				return nil, fmt.Errorf("migrate: module %s: version %d twice (%s, %s)", src.Module, v, prev, p)
			}
			seen[v] = p
			files = append(files, file{v, strings.TrimSuffix(n, ".sql"), p})
		}
	}
	if !found {
		return nil, fmt.Errorf("migrate: module %s has no migrations for %s", src.Module, e)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].version < files[j].version })
	return files, nil
}
