-- Where the audit log's hash chain begins, recorded once: a row at or after it without a hash is
-- a break (`safegrid audit-log verify`), so erasing every hash no longer passes as "rows from
-- before the chain". The first sealed row if any, else the next id to be written. The trigger
-- below refuses to change or delete the record, and a missing record is a break too; like the
-- log's own triggers it stops everyone but a database owner, which is why `audit-log verify`
-- prints the start beside the head, to be noted outside the database.
INSERT INTO meta (key, value)
SELECT 'audit_chain_start',
       COALESCE((SELECT MIN(id) FROM audit_log WHERE hash IS NOT NULL),
                (SELECT COALESCE(MAX(id), 0) + 1 FROM audit_log))::text
ON CONFLICT (key) DO NOTHING;
CREATE FUNCTION meta_audit_chain_start_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.key = 'audit_chain_start' THEN
        RAISE EXCEPTION 'the audit chain start is fixed';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER meta_audit_chain_start_fixed BEFORE UPDATE OR DELETE ON meta
    FOR EACH ROW EXECUTE FUNCTION meta_audit_chain_start_fixed();
