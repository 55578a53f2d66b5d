"""Reading a live schema from pg_catalog, diffing it with the stored snapshots."""
