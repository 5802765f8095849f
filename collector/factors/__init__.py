"""User emission factor records: the model and their append-only store."""
