// Package secret provides the server secret: at least 32 random bytes from
// which the platform derives the keys that protect what it keeps at rest
// (idempotency records: package idem; partners' signing keys: Sealer).
//
// Where it comes from, first match wins:
//  1. Config.Value (MERCATO_SECRET), hex or base64 — what production sets,
//     so that a copy of the database (or of the data directory) alone holds
//     nothing the secret protects;
//  2. on SQLite, the file <data-dir>/secret, created once with mode 0600;
//  3. on PostgreSQL, the row of the server_secret table (Migrations()),
//     created once by the first replica, so that every replica shares it.
//
// In cases 2 and 3 the secret lives beside the data it protects; Load logs
// a warning saying so.
package secret

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
)

// MinBytes is the shortest secret accepted; a generated one has this length.
const MinBytes = 32

// FileName is the secret's file in the data directory (SQLite).
const FileName = "secret"

//go:embed migrations
var migrations embed.FS

// Migrations is the schema of the server_secret table (module "secret"; a
// table on PostgreSQL only).
func Migrations() migrate.Source { return migrate.Embedded("secret", migrations) }

// Config says where the secret comes from.
type Config struct {
	// Value is the configured secret (MERCATO_SECRET): hex, or standard or
	// URL-safe base64 (padded or not), of at least MinBytes bytes. It wins.
	Value string
	// DataDir holds the secret file on SQLite (default: the directory of
	// DB's file).
	DataDir string
	// DB selects the store when Value is empty: PostgreSQL keeps the secret
	// in its server_secret table; SQLite (or nil) in DataDir.
	DB *sqldb.DB
	// Logger receives the warning that no secret is configured (nil: slog.Default).
	Logger *slog.Logger
}

// Load returns the server secret (see the package doc), creating and
// storing it on first use when none is configured. Concurrent first calls
// (two processes, two replicas) all get the one secret that was stored.
// Errors never include the secret.
func Load(ctx context.Context, cfg Config) ([]byte, error) {
	if cfg.Value != "" {
		return Parse(cfg.Value)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.DB != nil && cfg.DB.Engine() == sqldb.Postgres {
		b, err := fromDB(ctx, cfg.DB)
		if err == nil {
			log.WarnContext(ctx, "MERCATO_SECRET is not set: the server secret is kept in the database, so a copy of "+
				"the database holds it; set MERCATO_SECRET in production")
		}
		return b, err
	}
	dir := cfg.DataDir
	if dir == "" && cfg.DB != nil {
		dir = filepath.Dir(cfg.DB.Path())
	}
	if dir == "" {
		return nil, errors.New("secret: no MERCATO_SECRET, database or data directory to keep one in")
	}
	b, err := fromFile(filepath.Join(dir, FileName))
	if err == nil {
		log.WarnContext(ctx, "MERCATO_SECRET is not set: the server secret is kept in the data directory, so a copy "+
			"of the directory holds it; set MERCATO_SECRET in production", "file", filepath.Join(dir, FileName))
	}
	return b, err
}

// Parse decodes a configured secret: hex, or standard or URL-safe base64,
// padded or not, of at least MinBytes bytes.
func Parse(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	decoders := []func(string) ([]byte, error){
		hex.DecodeString,
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	}
	for _, dec := range decoders {
		b, err := dec(v)
		if err != nil {
			continue
		}
		if len(b) < MinBytes {
			return nil, fmt.Errorf("secret: MERCATO_SECRET decodes to %d bytes, want at least %d (e.g. openssl rand -hex 32)", len(b), MinBytes)
		}
		return b, nil
	}
	return nil, errors.New("secret: MERCATO_SECRET is neither hex nor base64 (e.g. openssl rand -hex 32)")
}

// fromFile reads the secret file at path, first creating it when it does
// not exist: written to a temporary file (0600) and linked into place, so
// that a reader never sees a partial file and of two processes racing, one
// creates and both read its secret.
func fromFile(path string) ([]byte, error) {
	if b, err := readFile(path); !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("secret: data dir: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), FileName+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("secret: create: %w", err)
	}
	defer os.Remove(tmp.Name())
	secret := make([]byte, MinBytes)
	rand.Read(secret) // never fails (crypto/rand)
	_, err = tmp.WriteString(hex.EncodeToString(secret) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600) // CreateTemp's mode already; said again as the contract
	}
	if err != nil {
		return nil, fmt.Errorf("secret: write: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("secret: create %s: %w", FileName, err)
	}
	return readFile(path)
}

func readFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret: %s is readable by others (mode %v); chmod 600 it", FileName, st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret: read %s: %w", FileName, err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(b) < MinBytes {
		return nil, fmt.Errorf("secret: %s does not hold at least %d hex-encoded bytes", FileName, MinBytes)
	}
	return b, nil
}

// fromDB reads the secret row, first inserting a fresh one if there is
// none (ON CONFLICT DO NOTHING: of replicas racing, one inserts).
func fromDB(ctx context.Context, db *sqldb.DB) ([]byte, error) {
	var b []byte
	err := db.InTx(ctx, func(tx *sqldb.Tx) error {
		fresh := make([]byte, MinBytes)
		rand.Read(fresh)
		if _, err := tx.ExecContext(ctx, `INSERT INTO server_secret (name, value, created_at) VALUES ('server', $1, $2)
			ON CONFLICT (name) DO NOTHING`, fresh, sqldb.Micros(tx.Now)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM server_secret WHERE name = 'server'`).Scan(&b)
	})
	if errors.Is(err, sql.ErrNoRows) || err == nil && len(b) < MinBytes {
		return nil, fmt.Errorf("secret: the server_secret row holds %d bytes, want at least %d", len(b), MinBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("secret: database: %w", err)
	}
	return b, nil
}
