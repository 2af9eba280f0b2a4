package migrate

import (
	"strings"
	"testing"
	"testing/fstest"

	"mercato/internal/platform/sqldb"
)

func TestList(t *testing.T) {
	sql := &fstest.MapFile{Data: []byte("SELECT 1")}
	tests := []struct {
		name  string
		fs    fstest.MapFS
		want  string // the paths for SQLite, or the error's text
		wantP string // the paths for PostgreSQL ("" when as for SQLite)
	}{
		{"per engine", fstest.MapFS{"sqlite/001_a.sql": sql, "postgres/001_a.sql": sql}, "sqlite/001_a.sql", "postgres/001_a.sql"},
		{"shared and per engine, in version order", fstest.MapFS{"001_a.sql": sql, "sqlite/002_b.sql": sql,
			"postgres/002_b.sql": sql, "003_c.sql": sql}, "001_a.sql sqlite/002_b.sql 003_c.sql", "001_a.sql postgres/002_b.sql 003_c.sql"},
		{"shared only", fstest.MapFS{"001_a.sql": sql, "README": sql}, "001_a.sql", ""},
		{"a version shared and per engine", fstest.MapFS{"001_a.sql": sql, "sqlite/001_a.sql": sql}, "version 1 twice", "001_a.sql"},
		{"a bad name", fstest.MapFS{"1a.sql": sql}, `bad migration name "1a.sql"`, ""},
		{"nothing", fstest.MapFS{"postgres/001_a.sql": sql}, "has no migrations for sqlite", "postgres/001_a.sql"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, e := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
				want := tc.want
				if e == sqldb.Postgres && tc.wantP != "" {
					want = tc.wantP
				}
				files, err := list(Source{Module: "m", FS: tc.fs}, e)
				got := ""
				if err != nil {
					got = err.Error()
				} else {
					var paths []string
					for _, f := range files {
						paths = append(paths, f.path)
					}
					got = strings.Join(paths, " ")
				}
				if !strings.Contains(got, want) || err == nil && got != want {
					t.Errorf("%s: list = %q, want %q", e, got, want)
				}
			}
		})
	}
}
