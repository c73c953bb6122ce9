-- Position history (the live-positions issue): every stored fix of a tracked subject (0: a
-- responder, 1: a key person; `unit_id` is the item's id in that layer), keyed by subject and
-- the device's time, so a re-sent fix (a tracker retrying after a lost answer) is stored once.
-- Times are unix milliseconds (compact and fast to compare; `datetime(t / 1000, 'unixepoch')`
-- shows them). `flags` says why a stored fix did not move the live position (see
-- services/src/positions/mod.rs: 1 late, 2 jump, 4 inaccurate, 8 marked invalid by the device).
-- WITHOUT ROWID: the primary key is the table, so a trace read is one range scan.
CREATE TABLE fixes (
    subject     INTEGER NOT NULL CHECK (subject IN (0, 1)),
    unit_id     INTEGER NOT NULL,
    t           INTEGER NOT NULL,
    lon         REAL NOT NULL,
    lat         REAL NOT NULL,
    speed_mps   REAL,
    bearing_deg REAL,
    altitude_m  REAL,
    accuracy_m  REAL,
    battery_pct REAL,
    flags       INTEGER NOT NULL,
    attributes  TEXT,      -- JSON object of the tracker's other parameters, or NULL
    received    INTEGER NOT NULL,
    PRIMARY KEY (subject, unit_id, t)
) WITHOUT ROWID;
