-- The audit log becomes readable and tamper-evident (services/src/audit_log.rs):
--   layer     the layer the act concerned, when one
--   subjects  JSON array of the ids of the persons/units concerned (filtered with json_each)
--   kind      read | write
--   outcome   ok | forbidden | not_found | invalid | failed (writes are logged refused too)
--   repeats   how many identical acts the row stands for (identical reads collapse per window)
--   last_at   for a row of collapsed reads, the last of them (at is the first)
--   prev_hash, hash  the chain: hash = SHA-256 over prev_hash and every field of the row.
-- Rows written before this migration keep NULL hashes: `safegrid audit-log verify` reports them
-- as before the chain. ADD COLUMN fires no UPDATE trigger; the table stays append-only.
-- From now on the service assigns ids (one more than the last), so the chain has no gaps.
ALTER TABLE audit_log ADD COLUMN layer TEXT;
ALTER TABLE audit_log ADD COLUMN subjects TEXT NOT NULL DEFAULT '[]';
ALTER TABLE audit_log ADD COLUMN kind TEXT NOT NULL DEFAULT 'read';
ALTER TABLE audit_log ADD COLUMN outcome TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE audit_log ADD COLUMN repeats INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN last_at TEXT;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
-- The auditor's filters: by person and by time (ids order the rest).
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_at ON audit_log (at);
