-- The dispatch lifecycle as an append-only log (see the SQLite migration for the meaning).
CREATE TABLE dispatch_events (
    id          BIGINT PRIMARY KEY,
    dispatch_id BIGINT NOT NULL,
    incident_id BIGINT NOT NULL,
    unit_id     BIGINT,
    post_id     BIGINT,
    kind        TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    actor       TEXT NOT NULL,
    detail      JSONB
);
CREATE INDEX dispatch_events_incident ON dispatch_events (incident_id, id);
CREATE FUNCTION dispatch_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'dispatch_events is append-only'; END $$;
CREATE TRIGGER dispatch_events_no_change BEFORE UPDATE OR DELETE ON dispatch_events
    FOR EACH ROW EXECUTE FUNCTION dispatch_events_append_only();
