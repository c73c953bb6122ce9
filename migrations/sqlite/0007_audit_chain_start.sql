-- Where the audit log's hash chain begins, recorded once: a row at or after it without a hash is
-- a break (`safegrid audit-log verify`), so erasing every hash no longer passes as "rows from
-- before the chain". The first sealed row if any, else the next id to be written. The record
-- itself cannot be changed or deleted (triggers below), and a missing record is a break too.
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
