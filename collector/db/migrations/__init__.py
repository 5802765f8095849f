"""The collector's schema migrations (Alembic), run by collector.db.migrate.

`env.py` and `versions/` are Alembic's script directory, shipped inside the package so no
alembic.ini is needed; `release_0_1_0.py` describes the schema release 0.1.0 made.
"""
