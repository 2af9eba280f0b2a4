package secret_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"mercato/internal/platform/secret"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestParse(t *testing.T) {
	raw := bytes.Repeat([]byte{0xa5, 0x5a, 0x01, 0xfe}, 8) // 32 bytes
	cases := []struct {
		name  string
		value string
		ok    bool
	}{
		{"hex", hex.EncodeToString(raw), true},
		{"upper hex with a newline", strings.ToUpper(hex.EncodeToString(raw)) + "\n", true},
		{"base64", base64.StdEncoding.EncodeToString(raw), true},
		{"raw base64", base64.RawStdEncoding.EncodeToString(raw), true},
		{"url base64", base64.URLEncoding.EncodeToString(raw), true},
		{"raw url base64", base64.RawURLEncoding.EncodeToString(raw), true},
		{"31 bytes of hex", hex.EncodeToString(raw[:31]), false},
		{"short base64", base64.StdEncoding.EncodeToString([]byte("too short")), false},
		{"neither", "not a secret at all, just words!", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := secret.Parse(c.value)
			if c.ok {
				if err != nil || !bytes.Equal(got, raw) {
					t.Errorf("Parse = %x, %v; want %x", got, err, raw)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted %q", c.value)
			}
			if strings.Contains(err.Error(), strings.TrimSpace(c.value)) {
				t.Errorf("the error repeats the value: %v", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		cfg := secret.Config{DataDir: dir, DB: db, Logger: quiet}

		// Concurrent first loads (replicas, or two processes) agree.
		const n = 8
		got := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { got[i], errs[i] = secret.Load(ctx, cfg) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil || len(got[i]) < secret.MinBytes || !bytes.Equal(got[i], got[0]) {
				t.Fatalf("load %d: %x, %v; load 0: %x", i, got[i], errs[i], got[0])
			}
		}
		again, err := secret.Load(ctx, cfg)
		if err != nil || !bytes.Equal(again, got[0]) {
			t.Errorf("a later Load = %x, %v; want the stored %x", again, err, got[0])
		}
		if bytes.Equal(got[0], make([]byte, len(got[0]))) {
			t.Errorf("the generated secret is all zeroes")
		}

		// Where it was kept: a 0600 file on SQLite, a row on PostgreSQL.
		st, statErr := os.Stat(filepath.Join(dir, secret.FileName))
		if db.Engine() == sqldb.SQLite {
			if statErr != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("secret file: %v; want mode 0600", statErr)
			}
		} else {
			if statErr == nil {
				t.Errorf("a secret file was written on PostgreSQL")
			}
			var rows int
			if err := db.Reader().QueryRow(`SELECT count(*) FROM server_secret`).Scan(&rows); err != nil || rows != 1 {
				t.Errorf("%d server_secret rows, %v; want 1", rows, err)
			}
		}

		// A configured value wins and is not stored.
		configured := bytes.Repeat([]byte{9}, 40)
		cfg.Value = hex.EncodeToString(configured)
		if b, err := secret.Load(ctx, cfg); err != nil || !bytes.Equal(b, configured) {
			t.Errorf("configured Load = %x, %v; want %x", b, err, configured)
		}
		cfg.Value = ""
		if b, _ := secret.Load(ctx, cfg); !bytes.Equal(b, got[0]) {
			t.Errorf("the configured value replaced the stored secret")
		}
	}, secret.Migrations())
}

// TestLoadRefusesBadFiles: a secret file that others may read, or that
// does not hold a secret, is an error, not silently replaced.
func TestLoadRefusesBadFiles(t *testing.T) {
	cases := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"readable by others", strings.Repeat("ab", 32), 0o644, "readable by others"},
		{"not hex", strings.Repeat("zz", 32), 0o600, "hex-encoded"},
		{"too short", strings.Repeat("ab", 16), 0o600, "at least 32"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, secret.FileName)
			if err := os.WriteFile(path, []byte(c.content), c.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, c.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			_, err := secret.Load(context.Background(), secret.Config{DataDir: dir, Logger: quiet})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Load = %v, want an error saying %q", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), c.content) {
				t.Errorf("the error repeats the file's content: %v", err)
			}
		})
	}
	if _, err := secret.Load(context.Background(), secret.Config{Logger: quiet}); err == nil {
		t.Errorf("Load with nowhere to keep a secret succeeded")
	}
}

// TestLoadDefaultsToTheDatabaseDirectory: on SQLite without DataDir the
// file sits beside the database file.
func TestLoadDefaultsToTheDatabaseDirectory(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite, secret.Migrations())
	if _, err := secret.Load(context.Background(), secret.Config{DB: db, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(db.Path()), secret.FileName)); err != nil {
		t.Errorf("no secret beside the database: %v", err)
	}
}
