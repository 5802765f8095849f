"""The database: engine, schema and migrations, shared by every capability's store.

`open_database(url)` is the one way in: it returns a `Database` whose schema is the one this
release expects (creating it in an empty database), or says what to run.
"""

from collector.db.engine import Database, DatabaseUrlError
from collector.db.migrate import SchemaError, open_database

__all__ = ["Database", "DatabaseUrlError", "SchemaError", "open_database"]
