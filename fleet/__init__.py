"""Central fleet monitor: ingest, allocator, dashboard, reports."""
