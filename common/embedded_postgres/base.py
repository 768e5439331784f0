from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

from common.postgresql import base

_started: set[str] = set()
_lock = threading.Lock()


def ensure_server(data_dir: str) -> None:
    """Start the embedded server for `data_dir` unless this process already saw it running.

    Only an absolute path names a data directory; any other HOST (a hostname, an address) is a
    server someone else runs, and nothing is started for it.
    """
    if data_dir in _started or not Path(data_dir).is_absolute():
        return
    with _lock:
        if data_dir in _started:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: no XDG_RUNTIME_DIR on servers
            import pgserver

        Path(data_dir).parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: the server outlives this process, so its data and warm start stay.
        pgserver.get_server(data_dir, cleanup_mode=None)
        _started.add(data_dir)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        ensure_server(self.settings_dict["HOST"])
        return super().get_new_connection(conn_params)
