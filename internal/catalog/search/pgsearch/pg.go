// Package pgsearch is the PostgreSQL search.Index (--search=postgres): one
// table, search_documents, in the catalog's database, so that every replica
// searches one index.
//
// # Matching
//
// The same Query semantics as the Bleve index (see query.go): every word of
// the text must match, or the whole text must be a SKU. A Latin word matches
// the English tsvector (title weight A, category names, attributes and SKUs
// B, description C; PostgreSQL's 'english' stemming and stop words — a stop
// word is dropped, as Bleve drops it) or, when it has five runes or more,
// pg_trgm word similarity (≥ 0.5: looser than Bleve's edit distance —
// "xylophone" finds "microphone"; it also matches a prefix of a word) with
// the lowercased title, category names, attributes and SKUs. A CJK word
// matches when the document's grams (its CJK bigrams, plan.Grams, computed
// at Put) hold at least half the word's: no Chinese dictionary is needed.
// Every condition is one a GIN index answers (tsvector, trigrams, the grams
// and SKU arrays). Scores are computed in SQL on the matches only (ts_rank
// per word, similarity with the title, bigrams in the title, the phrase in
// the title, a SKU) and differ in scale from Bleve's.
//
// Facets are SQL aggregates over the same WHERE, in the same read-only
// REPEATABLE READ transaction as the page and the total, so the three agree.
//
// pg_trgm is created by the migration (in public, when the database has it
// nowhere); New finds the schema it lives in and qualifies its operator, so
// a search_path without that schema still works.
package pgsearch

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"mercato/internal/catalog/search"
	"mercato/internal/catalog/search/internal/plan"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
)

// Name identifies this implementation (in cursors and logs).
const Name = "postgres"

//go:embed migrations
var migrations embed.FS

// Migrations are the index's tables. The SQLite file does nothing (migrate
// wants one per engine); the index itself refuses SQLite.
func Migrations() migrate.Source { return migrate.Embedded("search", migrations) }

// Index is the PostgreSQL search.Index. Safe for concurrent use.
type Index struct {
	w, db *sql.DB // the writer and reader pools (one pool on PostgreSQL)
	// trgm is the quoted schema of pg_trgm ("public").
	trgm string
}

var _ search.Index = (*Index)(nil)

// New returns the index in db, which must be PostgreSQL and migrated with
// Migrations. The index does not own db: Close leaves it open.
func New(ctx context.Context, db *sqldb.DB) (*Index, error) {
	const op = "pgsearch.New"
	if db.Engine() != sqldb.Postgres {
		return nil, errs.E(op, errors.New("the PostgreSQL search index needs a PostgreSQL database (use the Bleve index on SQLite)"))
	}
	var schema string
	err := db.Reader().QueryRowContext(ctx, `SELECT n.nspname FROM pg_extension e
		JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'`).Scan(&schema)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.E(op, errors.New("pg_trgm is not installed: apply pgsearch.Migrations"))
	}
	if err != nil {
		return nil, errs.E(op, err)
	}
	return &Index{w: db.Writer(), db: db.Reader(), trgm: `"` + strings.ReplaceAll(schema, `"`, `""`) + `"`}, nil
}

// row is a document as the upsert reads it (jsonb_to_recordset).
type row struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Categories  string   `json:"categories"`
	Attributes  string   `json:"attributes"`
	SKUs        []string `json:"skus"`
	Grams       []string `json:"grams"`
	CategoryIDs []string `json:"category_ids"`
	Channels    []string `json:"channels"`
	PriceMin    int64    `json:"price_min"`
	Rating      float64  `json:"rating"`
	RatingCount int      `json:"rating_count"`
	InStock     bool     `json:"in_stock"`
	CreatedAt   int64    `json:"created_at"`
	UpdatedAt   int64    `json:"updated_at"`
}

// upsert writes every document of $1 (a JSON array of rows) in one
// statement, in id order (so two concurrent Puts lock rows in one order).
const upsert = `
INSERT INTO search_documents (id, title_l, words, grams, tsv, skus, category_ids, channels,
	price_min, rating, rating_count, in_stock, created_at, updated_at)
SELECT d.id, lower(d.title),
	lower(concat_ws(' ', d.title, d.categories, d.attributes, array_to_string(d.skus, ' '))), d.grams,
	setweight(to_tsvector('english', d.title), 'A') ||
	setweight(to_tsvector('english', concat_ws(' ', d.categories, d.attributes, array_to_string(d.skus, ' '))), 'B') ||
	setweight(to_tsvector('english', d.description), 'C'),
	d.skus, d.category_ids, d.channels, d.price_min, d.rating, d.rating_count, d.in_stock, d.created_at, d.updated_at
FROM jsonb_to_recordset($1::jsonb) AS d(id TEXT, title TEXT, description TEXT, categories TEXT,
	attributes TEXT, skus TEXT[], grams TEXT[], category_ids TEXT[], channels TEXT[], price_min BIGINT,
	rating DOUBLE PRECISION, rating_count INTEGER, in_stock BOOLEAN, created_at BIGINT, updated_at BIGINT)
ORDER BY d.id
ON CONFLICT (id) DO UPDATE SET title_l = EXCLUDED.title_l, words = EXCLUDED.words, grams = EXCLUDED.grams, tsv = EXCLUDED.tsv,
	skus = EXCLUDED.skus, category_ids = EXCLUDED.category_ids, channels = EXCLUDED.channels,
	price_min = EXCLUDED.price_min, rating = EXCLUDED.rating, rating_count = EXCLUDED.rating_count,
	in_stock = EXCLUDED.in_stock, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at`

// Put adds or replaces docs in one statement.
func (x *Index) Put(ctx context.Context, docs []search.Document) error {
	const op = "pgsearch.Put"
	docs, err := plan.CleanDocs(docs)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return ctx.Err()
	}
	rows := make([]row, len(docs))
	for i, d := range docs {
		skus := make([]string, len(d.SKUs))
		for j, s := range d.SKUs {
			skus[j] = strings.ToLower(s)
		}
		rows[i] = row{
			ID: d.ID, Title: d.Title, Description: d.Description,
			Categories: strings.Join(d.CategoryNames, " "), Attributes: strings.Join(d.Attributes, " "),
			SKUs: skus, CategoryIDs: d.CategoryIDs, Channels: d.Channels,
			Grams:    plan.Grams(slices.Concat([]string{d.Title, d.Description}, d.CategoryNames, d.Attributes)...),
			PriceMin: d.PriceMin, Rating: d.Rating, RatingCount: d.RatingCount, InStock: d.InStock,
			CreatedAt: sqldb.Micros(d.CreatedAt), UpdatedAt: sqldb.Micros(d.UpdatedAt),
		}
	}
	body, err := json.Marshal(rows)
	if err != nil {
		return errs.E(op, err)
	}
	if _, err := x.w.ExecContext(ctx, upsert, string(body)); err != nil {
		return errs.E(op, err)
	}
	return nil
}

// Delete removes ids in one statement.
func (x *Index) Delete(ctx context.Context, ids []string) error {
	ids = plan.CleanIDs(ids)
	if len(ids) == 0 {
		return ctx.Err()
	}
	body, _ := json.Marshal(ids) // strings always marshal
	if _, err := x.w.ExecContext(ctx, `DELETE FROM search_documents
		WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))`, string(body)); err != nil {
		return errs.E("pgsearch.Delete", err)
	}
	return nil
}

// Count is the number of documents.
func (x *Index) Count(ctx context.Context) (int, error) {
	var n int
	if err := x.db.QueryRowContext(ctx, `SELECT count(*) FROM search_documents`).Scan(&n); err != nil {
		return 0, errs.E("pgsearch.Count", err)
	}
	return n, nil
}

// IDs returns the id of every document (search.Rebuild uses it to find the
// documents the source no longer has).
func (x *Index) IDs(ctx context.Context) ([]string, error) {
	const op = "pgsearch.IDs"
	rows, err := x.db.QueryContext(ctx, `SELECT id FROM search_documents ORDER BY id`)
	if err != nil {
		return nil, errs.E(op, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, errs.E(op, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, err)
	}
	return ids, nil
}

// Close does nothing: the database belongs to the caller.
func (x *Index) Close() error { return nil }
