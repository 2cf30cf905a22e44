"""Several hosts on one database: this host's heartbeat, the orphans of hosts that died, kills asked elsewhere.

A thread beats every `tasks.HEARTBEAT_S`. On each beat it also claims (SKIP LOCKED) the running
tasks of hosts that stopped beating and marks them "missing", and ends the processes of its own
tasks that another host marked "killed". Launching stays local: the host a task was launched on
runs it, so a launch returns once its process has imported the code, as with one host.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from anvil_dev.services.tasks import HEARTBEAT_S, Tasks

log = logging.getLogger("anvil_dev")


class HostRegistry:
    """This host's presence in `anvil_hosts`, kept fresh by a thread until `stop()`."""

    def __init__(self, tasks: Tasks) -> None:
        self.tasks = tasks
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.tasks.beat()
        self._thread = threading.Thread(target=self._run, name="anvil-dev-hosts", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.tasks.beat()
                self.tasks.mark_orphans_missing()
                for pid in self.tasks.kills_for():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            except Exception as e:  # noqa: BLE001 - a database hiccup must not end the heartbeat
                log.warning("anvil-dev: host heartbeat failed: %s", e)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.tasks.leave()
        except Exception as e:  # noqa: BLE001 - stopping goes on
            log.warning("anvil-dev: could not remove this host from the database: %s", e)
