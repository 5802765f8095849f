"""The central collector: ingest, verify, store and serve."""
