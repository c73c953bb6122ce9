-- Grid crossings of units (enter / exit), written in the same transaction as the fix that
-- caused them. Ids are assigned by the service's single ingest writer, in order, so a client
-- resumes a feed after the last id it saw.
CREATE TABLE geofence_events (
    id        BIGINT PRIMARY KEY,
    t         TIMESTAMPTZ NOT NULL,
    unit_id   BIGINT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('enter', 'exit')),
    grid_code TEXT NOT NULL,
    geom      geometry(Point, 4326) NOT NULL
);
CREATE INDEX geofence_events_unit ON geofence_events (unit_id, t);
