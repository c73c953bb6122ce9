-- Grid crossings of tracked subjects (0: a responder, 1: a key person) — enter / exit — and
-- key persons' zone alerts (zone_breach / zone_return, with the person's assigned grid),
-- written in the same transaction as the fix that caused them. Ids are assigned by the
-- service's single ingest writer, in order, so a client resumes a feed after the last id it saw.
-- Times are unix milliseconds, like fixes.
CREATE TABLE geofence_events (
    id        INTEGER PRIMARY KEY,
    t         INTEGER NOT NULL,
    subject   INTEGER NOT NULL CHECK (subject IN (0, 1)),
    unit_id   INTEGER NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('enter', 'exit', 'zone_breach', 'zone_return')),
    grid_code TEXT NOT NULL,
    lon       REAL NOT NULL,
    lat       REAL NOT NULL
);
