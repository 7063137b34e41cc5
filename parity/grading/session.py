"""One child process behind the wall: its start, the session of requests with it, its end.

Every item of a submission is graded in a child process of its own, behind the strongest wall
this machine starts (``walls``: bubblewrap's namespaces, or a uid of the child's own, each
under a seccomp filter put on by ``launcher``). The child sees a copy of the submission's
``.py`` files (``submission``), the runner (``child.py`` and ``protocol.py``, copied for it),
the standard library and NumPy.

The grader talks to the child over two pipes (``protocol``) and executes nothing the child
sends: it reads JSON and ``.npy`` arrays, checks them, and runs the reference itself.
``Wall.unsafe()`` runs children as plain processes under the audit hooks alone, for a trusted
class or a test; the report then says so on its first line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from parity.grading import protocol
from parity.grading.submission import (  # noqa: F401  (as callers know them)
    MAX_SKIPPED_NOTES,
    MAX_SOURCE_ENTRIES,
    TOO_MANY_ENTRIES,
    copy_package,
    find_submission_package,
)
from parity.grading.walls import (  # noqa: F401  (the walls' names, as callers know them)
    CHILD_ENV,
    RUNNER_FILES,
    ChildDirs,
    Limits,
    OneAtATime,
    UidLease,
    Wall,
    WallUnavailable,
    clear,
    find_wall,
    numpy_dir,
    python,
)


class ChildFailure(Exception):
    """The child stopped answering: it exited, was killed, ran out of time or broke the
    protocol. ``reason`` says so in words for the student."""

    def __init__(self, reason: str, timed_out: bool = False, grader_fault: bool = False
                 ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out
        self.grader_fault = grader_fault  # before the runner said it was ready


RUNNER_DID_NOT_START = ("the grading runner did not start behind the wall (its Python, NumPy "
                        "or the runner itself out of the child's reach, or the wall refused "
                        "to start it)")


@dataclass
class Answer:
    """A child's answer to one request."""

    ok: bool
    value: object
    error: dict | None
    notes: list[str] = field(default_factory=list)


# -- one child ----------------------------------------------------------------------------------
class Child:
    """One child process running a copy of a submission behind the wall.

    ``request`` sends one request and waits for its answer, serving the oracle calls the
    child makes meanwhile with ``oracles`` (name -> function of the decoded payload).
    Everything the child sends is bounded (``protocol.Budget``) and checked before use.
    """

    def __init__(self, package: Path, limits: Limits,
                 oracles: dict[str, Callable[[dict], object]] | None = None,
                 resolve=None, wall: Wall | None = None, audit_hooks: bool = True,
                 parameters: Callable[[str, dict], list] | None = None) -> None:
        self.limits = limits
        self.oracles = oracles or {}
        self.resolve = resolve
        self.parameters = parameters  # the weights an oracle call carries (oracles.py)
        self.case: frozenset = frozenset()  # fingerprints of the arrays of the request now
        self.wall = wall or find_wall()
        self.audit_hooks = audit_hooks
        self.notes: list[str] = []
        self.budget = protocol.Budget()
        self.process: subprocess.Popen | None = None
        self.inner_pid: int | None = None
        self.waited = 0.0  # seconds spent waiting for the uid wall's turn
        self.dirs: ChildDirs | None = None
        self._fds: list[int] = []
        self._ends = contextlib.ExitStack()  # what close() undoes, last first
        try:
            if self.wall.kind == "uid":
                began = time.monotonic()
                self._hold(OneAtATime())
                self.waited = time.monotonic() - began
            self.uid = self._hold(UidLease(self.wall.leases_uid))
            self._ends.callback(self._remove_dirs)
            if self.wall.kind == "uid":
                # cleared before it is used, and again at the end, before the dirs go: the uid
                # is leased again only once nothing of this child is left
                self._ends.callback(clear, self.wall, self.uid)
                clear(self.wall, self.uid)
            self.dirs = ChildDirs(self.wall, self.uid if self.wall.leases_uid else None)
            self._prepare(package)
            self._start()
        except BaseException:
            self.close()
            raise

    def _prepare(self, package: Path) -> None:
        assert self.dirs is not None
        skipped = copy_package(package, self.dirs.sub / "scratch")
        if TOO_MANY_ENTRIES in skipped:  # said to the student: only this explains what is gone
            skipped.remove(TOO_MANY_ENTRIES)
            self.notes.append(f"the package holds more than {MAX_SOURCE_ENTRIES} files and "
                              "directories: the rest were not copied")
        self.notes += [f"skipped {p} (not a plain .py file of at most 1 MiB)"
                       for p in skipped[:MAX_SKIPPED_NOTES]]
        if len(skipped) > MAX_SKIPPED_NOTES:  # one note for the rest, however many there are
            self.notes.append(f"skipped {len(skipped) - MAX_SKIPPED_NOTES} more files")
        self.dirs.publish()

    def _start(self) -> None:
        assert self.dirs is not None
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        info_r, info_w = os.pipe()
        self._fds = [to_child_w, from_child_r]
        self.stderr_path = self.dirs.root / "stderr.txt"
        runner, sub, work = self.dirs.seen
        config = json.dumps({
            "read_fd": to_child_r, "write_fd": from_child_w, "runner_dir": runner,
            "submission_dir": sub, "work_dir": work,
            "numpy_parent": os.path.dirname(numpy_dir()), "audit_hooks": self.audit_hooks,
            "memory_bytes": self.limits.memory_mb << 20, "file_bytes": self.limits.file_mb << 20,
            "cpu_seconds": int(self.limits.item_seconds + self.limits.start_seconds) + 5,
        })
        argv = self.wall.command([f"{runner}/{RUNNER_FILES['child.py']}", config], self.dirs,
                                 self.uid, self.limits, info_w)
        try:
            with open(self.stderr_path, "wb") as stderr:
                self.process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                    cwd=str(self.dirs.work) if self.wall.kind == "none" else "/",
                    env=CHILD_ENV, pass_fds=(to_child_r, from_child_w, info_w),
                    start_new_session=True)
        finally:
            for fd in (to_child_r, from_child_w, info_w):
                os.close(fd)
        try:
            if self.wall.kind in ("bwrap", "bwrap-userns"):
                self.inner_pid = _read_child_pid(info_r, self.limits.start_seconds)
        finally:
            os.close(info_r)
        os.set_blocking(to_child_w, False)  # a child that stops reading cannot hold us
        self.channel = protocol.Channel(from_child_r, to_child_w, self.budget)
        self._wait_ready()

    def _wait_ready(self) -> None:
        """The runner's first message, sent before anything of the submission runs."""
        try:
            message, _ = self.channel.recv_value(time.monotonic() + self.limits.start_seconds)
        except protocol.ProtocolError:  # closed, late or garbled: nothing of the student's ran
            message = None
        if not isinstance(message, dict) or message.get("op") != "ready":
            self.close_process()
            raise ChildFailure(RUNNER_DID_NOT_START, grader_fault=True)

    def close(self) -> None:
        """Kill every process of the child, reap it, remove what it left, end the lease."""
        self.close_process(grace=0.0)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
        self._ends.close()

    def _hold(self, lock):
        """Take a lock (the uid wall's turn, the uid's lease) until close(). A clean-up step
        that raises on the way keeps both: this grader then never hands the uid, or the
        turn, to another child, as nothing says the uid holds nothing any more."""
        taken = lock.__enter__()

        def release(exc_type, exc, tb) -> bool:
            if exc_type is None:
                lock.__exit__(None, None, None)
            return False  # never swallows the clean-up's error

        self._ends.push(release)
        return taken

    def _remove_dirs(self) -> None:
        if self.dirs is not None:
            self.dirs.remove()
            self.dirs = None

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests ----------------------------------------------------------------------------
    def request(self, op: str, value, seconds: float, oracles=()) -> Answer:
        """Send one request; serve oracle calls until the answer comes, within ``seconds``.

        oracles: the names of the functions whose reference the child may ask for while it
        answers this request (none of them a function the request grades).
        """
        deadline = time.monotonic() + seconds
        allowed = frozenset(oracles)
        self.case = frozenset(_fingerprint(a) for a in protocol.arrays_in(value)
                              if isinstance(a, np.ndarray))
        try:
            self.channel.send_value({"op": op, "oracles": sorted(allowed)}, value, deadline)
            while True:
                message, answer = self.channel.recv_value(deadline, self.resolve)
                op = message.get("op")
                if op == "oracle":
                    self._serve_oracle(message, answer, allowed, deadline)
                    continue
                if op != "answer" or not isinstance(message.get("ok"), bool):
                    raise protocol.ProtocolError("a message that is not an answer")
                notes = protocol.clean_notes(message.get("notes"))
                for note in notes:  # kept for the item's report, whichever case it came in
                    if note not in self.notes and len(self.notes) < protocol.MAX_NOTES:
                        self.notes.append(note)
                return Answer(message["ok"], answer, protocol.clean_error(message.get("error")),
                              notes)
        except protocol.ChannelClosed as exc:
            raise self._failure(seconds, exc.timed_out) from None
        except protocol.ProtocolError as exc:
            self.close_process()
            raise ChildFailure(f"the submission's process broke the grading protocol ({exc}); "
                               "a submission must not write to the grader's pipes") from None

    def _serve_oracle(self, message: dict, payload, allowed: frozenset,
                      deadline: float) -> None:
        name = message.get("name")
        oracle = self.oracles.get(name) if isinstance(name, str) and name in allowed else None
        result, error = None, None
        if oracle is None:
            error = "no reference is served for that function here"
        elif not self._of_this_case(name, payload):
            # a stand-in answers for the case being graded, never for arrays from elsewhere
            # (another child's case, relayed to have the grader compute it)
            error = ("the reference stands in only for this case's own weights: the weights "
                     "and biases passed are not the ones this case gave")
        else:
            try:
                result = oracle(payload if isinstance(payload, dict) else {})
            except Exception as exc:  # the arguments the submission passed did not fit
                error = (f"the reference {name.rpartition(':')[2]} could not run on the "
                         f"arguments the submission passed: {type(exc).__name__}: "
                         f"{str(exc)[:300]}")
        header = {"op": "oracle_answer", "ok": error is None}
        if error is not None:
            header["error"] = error
        self.channel.send_value(header, result, deadline)

    def _of_this_case(self, name: str, payload) -> bool:
        if self.parameters is None:
            return True
        params = self.parameters(name, payload if isinstance(payload, dict) else {})
        return all(isinstance(p, np.ndarray) and _fingerprint(p) in self.case for p in params)

    def _failure(self, seconds: float, timed_out: bool) -> ChildFailure:
        if timed_out:
            self.close_process()
            return ChildFailure(f"did not answer within the time limit of {seconds:g} s "
                                "(an endless loop, or far too slow)", timed_out=True)
        code = self.close_process()
        if code is None:
            return ChildFailure("the submission's process stopped answering")
        if code < 0 or code >= 128:
            sig = -code if code < 0 else code - 128
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig
            why = {signal.SIGKILL: " (killed: over the memory or CPU-time limit?)",
                   signal.SIGXCPU: " (over the CPU-time limit)",
                   signal.SIGSEGV: " (a crash inside native code, often out of memory)"}.get(
                       sig, "")
            return ChildFailure(f"the submission's process was ended by signal {name}{why}")
        return ChildFailure(f"the submission's process exited with status {code} before "
                            "answering (a submission must not exit the process: no sys.exit, "
                            "no os._exit)")

    def close_process(self, grace: float = 0.2) -> int | None:
        """End every process of the child and return the child's exit status if it ended by
        itself within ``grace`` seconds (None if it did not, or is unknown).

        In the wall, the namespace's first process is killed: the kernel then kills every
        process in the namespace, whatever session or group it made for itself."""
        process, self.process = self.process, None
        if process is None:
            return None
        code = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = process.wait(timeout=grace) if grace > 0 else process.poll()
        if self.inner_pid is not None:
            # bwrap exits once the namespace's first process has ended, and that one ends
            # only after the kernel has ended every other process of the namespace
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.inner_pid, signal.SIGKILL)
            self.inner_pid = None
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        return code

    def stderr_tail(self, size: int = 2000) -> str:
        try:
            with open(self.stderr_path, "rb") as handle:
                handle.seek(max(0, os.fstat(handle.fileno()).st_size - size))
                data = handle.read(size)
        except OSError:
            return ""
        return data.decode(errors="replace")


def _fingerprint(array: np.ndarray) -> tuple:
    data = np.ascontiguousarray(array)
    return (data.dtype.str, data.shape, hashlib.sha256(data.tobytes()).digest())


def _read_child_pid(fd: int, seconds: float) -> int | None:
    """The pid (in the grader's namespace) of the wall's first process, from bwrap's
    --info-fd; None if bwrap ended before saying."""
    data = b""
    deadline = time.monotonic() + seconds
    while b"}" not in data and len(data) < 4096:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    try:
        pid = json.loads(data[:data.index(b"}") + 1])["child-pid"]
    except (ValueError, KeyError, TypeError):
        return None
    return pid if isinstance(pid, int) and pid > 1 else None
