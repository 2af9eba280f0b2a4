CREATE TABLE stock (sku TEXT PRIMARY KEY, available INTEGER NOT NULL CHECK (available >= 0));
INSERT INTO stock (sku, available) VALUES ('hot', 100);
