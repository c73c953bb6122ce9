-- The dispatch lifecycle as an append-only log: every creation, assignment, status change,
-- notification and deadline alarm, with its time and who did it. The service folds it into
-- the current state at start-up; an incident's timeline is its rows in order.
CREATE TABLE dispatch_events (
    id          INTEGER PRIMARY KEY,
    dispatch_id INTEGER NOT NULL,
    incident_id INTEGER NOT NULL,
    unit_id     INTEGER,
    post_id     INTEGER,
    kind        TEXT NOT NULL,
    at          INTEGER NOT NULL,  -- unix milliseconds
    actor       TEXT NOT NULL,
    detail      TEXT               -- JSON, or NULL
);
CREATE INDEX dispatch_events_incident ON dispatch_events (incident_id, id);
CREATE TRIGGER dispatch_events_no_update BEFORE UPDATE ON dispatch_events
BEGIN SELECT RAISE(ABORT, 'dispatch_events is append-only'); END;
CREATE TRIGGER dispatch_events_no_delete BEFORE DELETE ON dispatch_events
BEGIN SELECT RAISE(ABORT, 'dispatch_events is append-only'); END;
