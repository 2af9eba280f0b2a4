-- The PostgreSQL search index has no tables on SQLite (the embedded Bleve
-- index serves it); migrate wants a file per engine, so this one does
-- nothing.
SELECT 1;
