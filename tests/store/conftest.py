"""The store fixtures (store_url on SQLite and PostgreSQL, store, pg_database) come from tests/stores.py."""
