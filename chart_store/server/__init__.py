"""The shared chart server (``loopjam serve``): FastAPI over SQLite or PostgreSQL.

- :mod:`chart_store.server.app` — the HTTP API (``create_app(db_url)``), its OpenAPI document
  is the contract;
- :mod:`chart_store.server.storage` — what the server keeps (charts, tokens) on top of the
  shared :class:`~chart_store.catalog.Catalog` schema.

Importing this package imports neither FastAPI nor a database driver.
"""
