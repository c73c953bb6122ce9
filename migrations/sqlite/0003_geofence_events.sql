-- Grid crossings of units (enter / exit), written in the same transaction as the fix that
-- caused them. Ids are assigned by the service's single ingest writer, in order, so a client
-- resumes a feed after the last id it saw. Times are unix milliseconds, like fixes.
CREATE TABLE geofence_events (
    id        INTEGER PRIMARY KEY,
    t         INTEGER NOT NULL,
    unit_id   INTEGER NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('enter', 'exit')),
    grid_code TEXT NOT NULL,
    lon       REAL NOT NULL,
    lat       REAL NOT NULL
);
