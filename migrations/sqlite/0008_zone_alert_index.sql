-- A key person's zone alerts by person: before a key person is deleted, the service asks
-- whether any alert refers to them (an alert's history keeps its subject). Partial: grid
-- crossings, the bulk of the table, are not in it and cost ingest nothing.
CREATE INDEX geofence_events_zone_alerts ON geofence_events (subject, unit_id)
    WHERE kind IN ('zone_breach', 'zone_return');
