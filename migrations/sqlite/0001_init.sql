-- safegrid embedded store (SQLite). Coordinates are WGS-84 degrees.

CREATE TABLE grid_units (
    code          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    level         TEXT NOT NULL CHECK (level IN ('district', 'street', 'community', 'grid')),
    parent_code   TEXT,
    manager_name  TEXT,
    manager_phone TEXT,
    geometry      TEXT NOT NULL  -- GeoJSON MultiPolygon
);
CREATE INDEX grid_units_parent ON grid_units (parent_code);

-- The five point layers share one shape: typed properties live in `props` (JSON, checked by the
-- service); `kind`, `status` and `observed_at` are copies kept for SQL users and filters.
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY, lon REAL NOT NULL, lat REAL NOT NULL, grid_code TEXT,
    kind TEXT NOT NULL, status TEXT NOT NULL, observed_at TEXT, props TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE rental_housing (
    id INTEGER PRIMARY KEY, lon REAL NOT NULL, lat REAL NOT NULL, grid_code TEXT,
    kind TEXT NOT NULL, status TEXT NOT NULL, observed_at TEXT, props TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE posts (
    id INTEGER PRIMARY KEY, lon REAL NOT NULL, lat REAL NOT NULL, grid_code TEXT,
    kind TEXT NOT NULL, status TEXT NOT NULL, observed_at TEXT, props TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE responders (
    id INTEGER PRIMARY KEY, lon REAL NOT NULL, lat REAL NOT NULL, grid_code TEXT,
    kind TEXT NOT NULL, status TEXT NOT NULL, observed_at TEXT, props TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE key_personnel (
    id INTEGER PRIMARY KEY, lon REAL NOT NULL, lat REAL NOT NULL, grid_code TEXT,
    kind TEXT NOT NULL, status TEXT NOT NULL, observed_at TEXT, props TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
-- No secondary indexes: the service answers every query from its in-memory indexes and reads
-- these tables only whole, at start-up; each index would slow bulk import by about a third
-- (measured: 116k vs 297k rows/s for raw SQLite inserts on the CI machine). SQL users who query
-- the file directly can add their own.

-- Append-only: every read of key personnel leaves a row here, and no one can change it.
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    role         TEXT NOT NULL,
    action       TEXT NOT NULL,
    request      TEXT NOT NULL,
    result_count INTEGER NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
-- INSERT OR REPLACE deletes without firing delete triggers: refuse any insert of an existing id.
CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE api_tokens (
    token_sha256 TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    grid_scope   TEXT NOT NULL,  -- JSON array of unit codes
    created_at   TEXT NOT NULL
);

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
