-- Position history (the live-positions issue): every stored fix of a tracked subject (0: a
-- responder, 1: a key person; `unit_id` is the item's id in that layer), keyed by subject and
-- the device's time, so a re-sent fix is stored once. Partitioned by day: the service creates
-- each day's partition before it writes there, and retention drops whole partitions.
-- `flags` says why a stored fix did not move the live position (services/src/positions/mod.rs:
-- 1 late, 2 jump, 4 inaccurate, 8 marked invalid by the device).
-- No GiST index on geom: traces are read by unit and time (the primary key); an index per
-- partition would cost every insert for queries nobody makes yet.
CREATE TABLE fixes (
    subject     SMALLINT NOT NULL CHECK (subject IN (0, 1)),
    unit_id     BIGINT NOT NULL,
    t           TIMESTAMPTZ NOT NULL,
    geom        geometry(Point, 4326) NOT NULL,
    speed_mps   REAL,
    bearing_deg REAL,
    altitude_m  REAL,
    accuracy_m  REAL,
    battery_pct REAL,
    flags       SMALLINT NOT NULL,
    attributes  JSONB,
    received    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (subject, unit_id, t)
) PARTITION BY RANGE (t);
