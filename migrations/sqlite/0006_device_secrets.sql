-- A tracker's secret (it proves the fixes sent under its device id): only its SHA-256 is kept.
-- One row per device id; minting again replaces the hash (rotation), revoking sets revoked_at.
CREATE TABLE device_secrets (
    device_id     TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT
);
