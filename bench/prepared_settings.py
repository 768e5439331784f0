"""The project's settings with server-side binding and prepared statements (psycopg 3), for
`BENCH_PREPARED=1 python -m bench checkout` to measure them; the settings are not changed."""

from config.settings import *  # noqa: F403
from config.settings import DATABASES

DATABASES["default"]["OPTIONS"] = {
    **DATABASES["default"].get("OPTIONS", {}),
    "server_side_binding": True,
    "prepare_threshold": 2,
}
