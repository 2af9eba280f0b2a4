-- On SQLite the server secret, when MERCATO_SECRET is not set, is the file
-- <data-dir>/secret (package secret), not a table: nothing to create.
SELECT 1;
