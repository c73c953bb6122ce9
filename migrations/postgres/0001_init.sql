-- safegrid production store (PostGIS). Geometry in EPSG:4326 with GiST indexes, so QGIS,
-- ogrinfo and other GIS tools read these tables directly.

CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE grid_units (
    code          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    level         TEXT NOT NULL CHECK (level IN ('district', 'street', 'community', 'grid')),
    parent_code   TEXT,
    manager_name  TEXT,
    manager_phone TEXT,
    geom          geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX grid_units_geom ON grid_units USING GIST (geom);
CREATE INDEX grid_units_parent ON grid_units (parent_code);

CREATE TABLE incidents (
    id BIGINT PRIMARY KEY, geom geometry(Point, 4326) NOT NULL, grid_code TEXT,
    kind TEXT NOT NULL, status TEXT NOT NULL, observed_at TIMESTAMPTZ, props JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE rental_housing (LIKE incidents INCLUDING ALL);
CREATE TABLE posts (LIKE incidents INCLUDING ALL);
CREATE TABLE responders (LIKE incidents INCLUDING ALL);
CREATE TABLE key_personnel (LIKE incidents INCLUDING ALL);
CREATE INDEX incidents_geom ON incidents USING GIST (geom);
CREATE INDEX rental_housing_geom ON rental_housing USING GIST (geom);
CREATE INDEX posts_geom ON posts USING GIST (geom);
CREATE INDEX responders_geom ON responders USING GIST (geom);
CREATE INDEX key_personnel_geom ON key_personnel USING GIST (geom);
CREATE INDEX incidents_grid ON incidents (grid_code);
CREATE INDEX incidents_time ON incidents (observed_at);
CREATE INDEX rental_housing_grid ON rental_housing (grid_code);
CREATE INDEX posts_grid ON posts (grid_code);
CREATE INDEX responders_grid ON responders (grid_code);
CREATE INDEX key_personnel_grid ON key_personnel (grid_code);

CREATE TABLE audit_log (
    -- ALWAYS: ids come from the sequence only, so no row can take (or pre-empt) another's id.
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    actor        TEXT NOT NULL,
    role         TEXT NOT NULL,
    action       TEXT NOT NULL,
    request      TEXT NOT NULL,
    result_count BIGINT NOT NULL
);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE api_tokens (
    token_sha256 TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    grid_scope   JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
