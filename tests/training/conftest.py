"""The training tests use the session's trained registry (tests/conftest.py: `trained`)."""
