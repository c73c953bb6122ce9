-- The audit log becomes readable and tamper-evident (see the SQLite migration and
-- services/src/audit_log.rs). subjects is a JSONB array of ids, filtered with @>.
-- Rows written before this migration keep NULL hashes ("before the chain"); ADD COLUMN fires
-- no row trigger, and the table stays append-only. From now on the service assigns ids (one
-- more than the last, inserted with OVERRIDING SYSTEM VALUE), so the chain has no gaps; the
-- primary key still refuses a second row with a taken id.
ALTER TABLE audit_log ADD COLUMN layer TEXT;
ALTER TABLE audit_log ADD COLUMN subjects JSONB NOT NULL DEFAULT '[]';
ALTER TABLE audit_log ADD COLUMN kind TEXT NOT NULL DEFAULT 'read';
ALTER TABLE audit_log ADD COLUMN outcome TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE audit_log ADD COLUMN repeats BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN last_at TIMESTAMPTZ;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_subjects ON audit_log USING GIN (subjects jsonb_path_ops);
