"""The engine fixtures (standalone cluster, Spark Connect server) live in tests/engine_servers.py,
loaded for the whole suite by tests/conftest.py, so the cluster tests can use them too."""
