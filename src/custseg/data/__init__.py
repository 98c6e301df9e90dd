"""Raw data: generate (retail-org layout), ingest (raw -> bronze), conform (bronze -> silver)."""
