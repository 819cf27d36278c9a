from tests.ingest.conftest import inbox  # noqa: F401  (the private inbox fixture)
