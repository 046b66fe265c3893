import json
import os
import socket
import subprocess
import sys

import pytest

from keras_asanet.tests.test_case import TestCase
from keras_asanet.training.run_folder import LOCK_NAME, RunLock, claim_run_folder
from keras_asanet.training.runner import UsageError

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


def _dead_pid():
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write(path, text="x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


class RunFolderTest(TestCase):
    def setUp(self):
        super().setUp()
        self.folder = os.path.join(self.get_temp_dir(), "run")
        self.lock = os.path.join(self.folder, LOCK_NAME)

    def test_fresh_run_into_an_earlier_run_is_refused(self):
        for marker in ("results.json", "model.keras", "checkpoints/ckpt-000001/state.json"):
            folder = os.path.join(self.get_temp_dir(), "run")
            _write(os.path.join(folder, marker))
            with self.assertRaisesRegex(UsageError, "already holds a run") as ctx:
                claim_run_folder(folder)
            message = str(ctx.exception)
            self.assertIn(repr(folder), message)
            self.assertIn("--resume", message)
            self.assertIn("--overwrite", message)
            self.assertFalse(os.path.exists(os.path.join(folder, LOCK_NAME)))  # released
            claim_run_folder(folder, resume=True).release()
        # A folder with only the user's own files is not a run.
        _write(os.path.join(self.folder, "notes.txt"))
        claim_run_folder(self.folder).release()
        with self.assertRaisesRegex(UsageError, "give one"):
            claim_run_folder(self.folder, resume=True, overwrite=True)

    def test_second_writer_is_refused_while_the_first_lives(self):
        with claim_run_folder(self.folder):
            with open(self.lock) as f:
                record = json.load(f)
            self.assertEqual((record["pid"], record["host"]), (os.getpid(), socket.gethostname()))
            with self.assertRaisesRegex(UsageError, f"in use by another run \\(pid {os.getpid()}"):
                claim_run_folder(self.folder, resume=True)
        self.assertFalse(os.path.exists(self.lock))
        claim_run_folder(self.folder).release()  # free again

    def test_stale_lock_is_taken_over_with_one_line(self):
        pid = _dead_pid()
        os.makedirs(self.folder)
        _write(self.lock, json.dumps({"pid": pid, "host": socket.gethostname(), "started": 0}))
        logs = []
        folder = claim_run_folder(self.folder, log=logs.append)
        self.assertLen(logs, 1)
        self.assertIn(f"Taking over the stale lock {self.lock} (pid {pid}", logs[0])
        with open(self.lock) as f:
            self.assertEqual(json.load(f)["pid"], os.getpid())
        folder.release()
        self.assertFalse(os.path.exists(self.lock))

    def test_lock_of_another_host_is_not_taken_over(self):
        os.makedirs(self.folder)
        _write(self.lock, json.dumps({"pid": 1, "host": "elsewhere", "started": 0}))
        with self.assertRaisesRegex(UsageError, "host elsewhere cannot be checked"):
            claim_run_folder(self.folder)
        self.assertTrue(os.path.exists(self.lock))  # not ours to remove

    def test_release_leaves_a_lock_that_is_not_its_own(self):
        os.makedirs(self.folder)
        lock = RunLock(self.folder).acquire()
        _write(self.lock, json.dumps({"pid": 1, "host": "elsewhere", "started": 0}))
        lock.release()
        self.assertTrue(os.path.exists(self.lock))

    def test_overwrite_removes_only_the_library_files(self):
        library = ("checkpoints/ckpt-000001/state.json", "model.keras", "model.tmp.keras",
                   "results.json", "curves.png", "cmc.png")  # fmt: skip
        user = ("notes.txt", "data/frames.txt", "model_backup.keras")
        for name in library + user:
            _write(os.path.join(self.folder, name))
        logs = []
        with claim_run_folder(self.folder, overwrite=True) as folder:
            # Nothing is removed before the run is ready to write.
            for name in library:
                self.assertTrue(os.path.exists(os.path.join(self.folder, name)), name)
            folder.clear_previous(log=logs.append)
        self.assertEqual(
            sorted(os.listdir(self.folder)), ["data", "model_backup.keras", "notes.txt"]
        )
        self.assertIn("removed the earlier run's checkpoints, model.keras", logs[0])
