"""A PostgreSQL database backend that starts an embedded server (the `pgserver` wheel) on demand.

Used only when DATABASE_URL is unset, so `make run` and `make test` need no configuration. The
server lives under HOST (a data directory, which is also where its socket is), starts on the
first connection of any process and keeps running after it, so later runs reuse it and its data.
"""
