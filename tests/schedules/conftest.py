from tests.logs.fixtures import pg_database, sqlite_url, store, store_url  # noqa: F401  (fixtures)
