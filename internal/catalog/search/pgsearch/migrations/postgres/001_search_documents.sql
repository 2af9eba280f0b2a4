-- pg_trgm matches typos (word similarity). It is created in public when the
-- database has none (CREATE EXTENSION would otherwise put it in the first
-- schema of the search path); the index finds its schema at start-up.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
		CREATE EXTENSION pg_trgm WITH SCHEMA public;
	END IF;
END
$$;

-- One row per sellable product: a projection of the catalog (rebuilt by
-- search.Rebuild), never the record.
CREATE TABLE search_documents (
	id           TEXT COLLATE "C" PRIMARY KEY,
	title_l      TEXT NOT NULL,     -- lower(title): phrase matches, scores
	words        TEXT NOT NULL,     -- lower(title, categories, attributes, SKUs): trigrams (typos)
	grams        TEXT[] NOT NULL,   -- CJK bigrams of all text (plan.Grams)
	tsv          TSVECTOR NOT NULL, -- English: title A, categories/attributes/SKUs B, description C
	skus         TEXT[] NOT NULL,   -- lowercased
	category_ids TEXT[] NOT NULL,
	channels     TEXT[] NOT NULL,
	price_min    BIGINT NOT NULL CHECK (price_min >= 0),
	rating       DOUBLE PRECISION NOT NULL CHECK (rating >= 0 AND rating <= 5),
	rating_count INTEGER NOT NULL CHECK (rating_count >= 0),
	in_stock     BOOLEAN NOT NULL,
	created_at   BIGINT NOT NULL,
	updated_at   BIGINT NOT NULL
);

CREATE INDEX search_documents_tsv ON search_documents USING gin (tsv);
CREATE INDEX search_documents_grams ON search_documents USING gin (grams);
CREATE INDEX search_documents_skus ON search_documents USING gin (skus);
CREATE INDEX search_documents_categories ON search_documents USING gin (category_ids);
CREATE INDEX search_documents_created ON search_documents (created_at DESC, id);
CREATE INDEX search_documents_price ON search_documents (price_min, id);

DO $$
DECLARE s TEXT;
BEGIN
	SELECT n.nspname INTO STRICT s FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
	WHERE e.extname = 'pg_trgm';
	EXECUTE format('CREATE INDEX search_documents_words ON search_documents USING gin (words %I.gin_trgm_ops)', s);
END
$$;
