"""A training run owns its output folder: a lock while it lives, and no silent mixing with an
earlier run.

Without it, a fresh run into a folder of an earlier one rewrites its checkpoints and
results.json while the earlier model.keras stays (a folder describing two runs), and two
processes writing one folder corrupt each other's checkpoints. `claim_run_folder` refuses
both, unless the caller resumes the earlier run or asks to overwrite it.

The lock is a file `.run.lock` holding the writer's pid, host and start time, created with
`O_CREAT | O_EXCL` (atomic on local file systems). A lock whose pid is not alive on this host
is stale (a killed run) and is taken over with a one-line log. Two processes taking over the
same stale lock within microseconds of each other are not told apart.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time

from keras_asanet.training.runner import UsageError

LOCK_NAME = ".run.lock"
#: What the library writes into a run folder (the only entries `overwrite` removes).
LIBRARY_OUTPUTS = (
    "checkpoints",
    "model.keras",
    "model.tmp.keras",
    "results.json",
    "curves.png",
    "cmc.png",
)
#: The entries whose presence means the folder holds an earlier run.
RUN_MARKERS = ("checkpoints", "model.keras", "results.json")
# An unreadable lock younger than this may be one being written right now.
_UNREADABLE_GRACE_S = 10.0


def previous_run(folder):
    """The entries of `RUN_MARKERS` present in `folder` (empty: no earlier run)."""
    return [name for name in RUN_MARKERS if os.path.exists(os.path.join(folder, name))]


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return False
    return True


class RunLock:
    """The lock of one run folder; `release()` removes it only if it is still this one's."""

    def __init__(self, folder, log=print):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_NAME)
        self.log = log
        self.held = False
        self._record = None

    def acquire(self):
        """Takes the lock, or takes over a stale one.

        Raises:
            UsageError: a live process (or one on another host) holds the folder.
        """
        for _ in range(3):
            if self._create():
                return self
            holder = self._read()
            if holder is None:  # released meanwhile: try again
                continue
            stale, why = self._stale(holder)
            if not stale:
                raise UsageError(self._busy_message(holder, why))
            if self._read() == holder:  # unchanged since judged stale
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
                self.log(f"Taking over the stale lock {self.path} ({why}).")
        raise UsageError(f"Could not take the lock {self.path}: another run keeps creating it.")

    def _create(self):
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        self._record, self.held = record, True
        return True

    def _read(self):
        try:
            with open(self.path) as f:
                record = json.load(f)
            return record if isinstance(record, dict) else {}
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def _stale(self, holder):
        """`(stale, reason)` of the lock's current holder record."""
        pid, host = holder.get("pid"), holder.get("host")
        if not isinstance(pid, int) or not isinstance(host, str):
            try:
                age = time.time() - os.path.getmtime(self.path)
            except OSError:
                return True, "it vanished"
            if age > _UNREADABLE_GRACE_S:
                return True, "it is unreadable and older than a few seconds"
            return False, "it is being written"
        if host != socket.gethostname():
            return False, f"host {host} cannot be checked from here"
        if _pid_alive(pid):
            return False, f"pid {pid} is alive"
        return True, f"pid {pid} on {host} is no longer running"

    def _busy_message(self, holder, why):
        holder = holder or {}
        started = holder.get("started")
        since = (
            time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(started))
            if isinstance(started, (int, float))
            else ""
        )
        return (
            f"{self.folder!r} is in use by another run (pid {holder.get('pid')} on host "
            f"{holder.get('host')}{since}; {why}). Wait for it to finish or choose another "
            f"--output; if no such run exists, delete {self.path}."
        )

    def release(self):
        if self.held and self._read() == self._record:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        self.held = False

    def __enter__(self):
        return self.acquire() if not self.held else self

    def __exit__(self, *exc):
        self.release()


class RunFolder:
    """The output folder of one run, claimed by `claim_run_folder` (a context manager that
    releases the lock on exit, also on exceptions)."""

    def __init__(self, folder, lock, overwrite):
        self.folder = folder
        self.lock = lock
        self.overwrite = overwrite

    def clear_previous(self, log=print):
        """With `overwrite`, removes the earlier run's library outputs (`LIBRARY_OUTPUTS`)
        and nothing else. Called once the new run is ready to write, so a run that fails on
        its settings or data never deletes the earlier one."""
        if not self.overwrite:
            return []
        removed = []
        for name in LIBRARY_OUTPUTS:
            path = os.path.join(self.folder, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
            else:
                continue
            removed.append(name)
        if removed:
            log(f"--overwrite: removed the earlier run's {', '.join(removed)} in {self.folder}.")
        return removed

    def release(self):
        self.lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def claim_run_folder(folder, resume=False, overwrite=False, log=print):
    """Creates `folder` if needed, locks it, and refuses a fresh run into an earlier one's.

    Args:
        folder: the run's output folder.
        resume: the run continues the one in `folder` (its files are expected).
        overwrite: a fresh run may replace the earlier one (`RunFolder.clear_previous`).
        log: where the stale-lock takeover is reported.

    Returns:
        The held `RunFolder`; release it (or use it as a context manager) when the run ends.

    Raises:
        UsageError: `resume` with `overwrite`, the folder is in use, or it holds an earlier
            run and neither `resume` nor `overwrite` is set.
    """
    if resume and overwrite:
        raise UsageError(
            "--resume continues the run in --output and --overwrite replaces it: give one."
        )
    os.makedirs(folder, exist_ok=True)
    lock = RunLock(folder, log=log).acquire()
    try:
        found = previous_run(folder)
        if found and not resume and not overwrite:
            raise UsageError(
                f"{folder!r} already holds a run ({', '.join(found)}). Pass --resume "
                "(resume=True) to continue it, or --overwrite (overwrite=True) to replace it "
                f"(removes only the library's files: {', '.join(LIBRARY_OUTPUTS)}), or "
                "choose another --output."
            )
    except BaseException:
        lock.release()
        raise
    return RunFolder(folder, lock, overwrite)
