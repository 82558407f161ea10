"""A process in its own session, found again through its pid file by a later command (stop, status)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

_POLL_S = 0.2
_KILL_GRACE_S = 10.0


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Held by one process at a time (an flock on `path`): for work two processes must not do at once."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def private_directory(path: Path) -> None:
    """Create `path` if needed and let only its owner in: a server's data holds every tenant's."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


class ProcessSurvived(RuntimeError):
    """The process was still alive after SIGKILL."""


class DetachedProcess:
    """The process recorded in `pid_file`, recognised by the `markers` among its arguments and, if given,
    its working directory `cwd` (a pid file outlives reboots, and the pid may since be another process's)."""

    def __init__(self, pid_file: Path, markers: Sequence[str], cwd: Path | None = None) -> None:
        self.pid_file = pid_file
        self.markers = tuple(marker.encode() for marker in markers)
        self.cwd = cwd
        self._child: subprocess.Popen[bytes] | None = None

    def spawn(
        self, command: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None, log: IO[bytes]
    ) -> int:
        """Start `command` in a new session (it keeps running after this process exits or gets Ctrl-C) and
        record its pid."""
        self._child = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid_file.write_text(f"{self._child.pid}\n")
        return self._child.pid

    def running_pid(self) -> int | None:
        """The recorded pid, if that process is alive and is ours."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if self.alive(pid) and self._is_ours(pid) else None

    def alive(self, pid: int) -> bool:
        if self._child is not None and self._child.pid == pid:
            return self._child.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not _is_zombie(pid)

    def stop(self, timeout: float) -> None:
        """SIGTERM, SIGKILL if still alive after `timeout` seconds; forget the pid."""
        pid = self.running_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not self.wait_for_exit(pid, timeout):
                self.kill(pid)
        self.forget()

    def kill(self, pid: int) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not self.wait_for_exit(pid, _KILL_GRACE_S):
            raise ProcessSurvived(f"process {pid} survived SIGKILL")

    def forget(self) -> None:
        self.pid_file.unlink(missing_ok=True)
        self._child = None

    def wait_for_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive(pid):
                return True
            time.sleep(_POLL_S)
        return not self.alive(pid)

    def _is_ours(self, pid: int) -> bool:
        if self._child is not None and self._child.pid == pid:
            return True  # just spawned: /proc may not show the new program for a moment
        if not Path("/proc/self").exists():
            return True  # no procfs: trust the pid file
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            cwd = Path(f"/proc/{pid}/cwd").resolve() if self.cwd is not None else None
        except OSError:
            return False
        return all(marker in args for marker in self.markers) and cwd == self.cwd


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may itself contain spaces.
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"
