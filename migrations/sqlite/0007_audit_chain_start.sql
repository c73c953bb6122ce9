-- Where the audit log's hash chain begins, recorded once: a row at or after it without a hash is
-- a break (`safegrid audit-log verify`), so erasing every hash no longer passes as "rows from
-- before the chain". The first sealed row if any, else the next id to be written. Triggers
-- below refuse to change, delete or replace the record, and a missing record is a break too;
-- like the log's own triggers they stop everyone but a database owner, which is why
-- `audit-log verify` prints the start beside the head, to be noted outside the database.
INSERT INTO meta (key, value)
SELECT 'audit_chain_start',
       CAST(COALESCE((SELECT MIN(id) FROM audit_log WHERE hash IS NOT NULL),
                     (SELECT COALESCE(MAX(id), 0) + 1 FROM audit_log)) AS TEXT)
WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'audit_chain_start');
CREATE TRIGGER meta_audit_chain_start_no_update BEFORE UPDATE ON meta
    WHEN OLD.key = 'audit_chain_start'
    BEGIN SELECT RAISE(ABORT, 'the audit chain start is fixed'); END;
CREATE TRIGGER meta_audit_chain_start_no_delete BEFORE DELETE ON meta
    WHEN OLD.key = 'audit_chain_start'
    BEGIN SELECT RAISE(ABORT, 'the audit chain start is fixed'); END;
CREATE TRIGGER meta_audit_chain_start_no_replace BEFORE INSERT ON meta
    WHEN NEW.key = 'audit_chain_start' AND EXISTS (SELECT 1 FROM meta WHERE key = 'audit_chain_start')
    BEGIN SELECT RAISE(ABORT, 'the audit chain start is fixed'); END;
