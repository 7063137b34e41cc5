"""The grader's side of a submission's child process: where it runs, with what, for how long.

Each child gets a fresh directory holding

    sub/       a copy of the submission's ``scratch/`` package (plain files only)
    work/      its working directory, the only place it may write

and runs the runner (``child.py``) under ``python -I -S -B`` (no user site, no site-packages,
no environment variables of Python's), with a private directory of links to NumPy: it can
import the standard library, NumPy and the submission, nothing else. Children are forked by a
zygote, a process of the same kind that has imported NumPy once (a child then starts in
milliseconds, not the tenth of a second an interpreter and NumPy's import take); where that
cannot work, each child is a fresh interpreter. When the grader runs as root and an
unprivileged user can run this Python, zygote and children run as that user (uid 65534).
Each child starts a new process group, which the grader kills at the end whatever happened;
the runner sets its own memory, CPU and file-size limits before the submission runs.

The grader talks to the child over two pipes (``protocol``) and never executes anything the
child sends: it reads JSON and ``.npy`` arrays, and runs the reference itself."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from parity.grading import protocol

UNPRIVILEGED_UID = 65534
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Limits:
    """What one child may use. Times are wall-clock seconds, measured by the grader."""

    case_seconds: float = 10.0  # one request (one case of an item)
    item_seconds: float = 60.0  # a whole item, cases and shrinking together
    start_seconds: float = 20.0  # starting the child and importing the submission
    memory_mb: int = 1024  # address space of the child
    file_mb: int = 16  # largest file the child may write

    def __post_init__(self) -> None:
        for name in ("case_seconds", "item_seconds", "start_seconds"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"limits.{name} must be a positive number, got {value!r}")
        for name in ("memory_mb", "file_mb"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"limits.{name} must be a positive int, got {value!r}")


class ChildFailure(Exception):
    """The child stopped answering: it exited, was killed, ran out of time or broke the
    protocol. ``reason`` says so in words for the student."""

    def __init__(self, reason: str, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


@dataclass
class Answer:
    """A child's answer to one request."""

    ok: bool
    value: object
    error: dict | None
    notes: list[str] = field(default_factory=list)


def find_submission_package(path: Path) -> Path:
    """The ``scratch`` package inside a submission directory.

    Accepted layouts: SUBMISSION/scratch/__init__.py, or the package's files directly in
    SUBMISSION (SUBMISSION/__init__.py and SUBMISSION/recurrent.py), as an upload of the
    folder's contents gives.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"submission must be a directory, got {str(path)!r}")
    if (path / "scratch" / "__init__.py").is_file():
        return path / "scratch"
    if (path / "__init__.py").is_file() and (path / "recurrent.py").is_file():
        return path
    raise FileNotFoundError(
        f"no scratch package in submission {str(path)!r}: expected {path}/scratch/__init__.py "
        "(or the package's files, __init__.py and recurrent.py, directly in it)"
    )


MAX_SOURCE_BYTES = 1 << 20  # a .py file larger than this is not a student's source


def copy_package(source: Path, target: Path) -> list[str]:
    """Copy the .py files of a package tree (plain files of at most 1 MiB; links are skipped).

    Returns notes on what was skipped.
    """
    skipped = []
    target.mkdir(parents=True)
    for root, dirs, files in os.walk(source, followlinks=False):
        rel = Path(root).relative_to(source)
        dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".")]
        for d in dirs:
            if (Path(root) / d).is_symlink():
                skipped.append(str(rel / d))
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            src = Path(root) / name
            if not name.endswith(".py"):
                continue
            if src.is_symlink() or not src.is_file() or src.stat().st_size > MAX_SOURCE_BYTES:
                skipped.append(str(rel / name))
                continue
            shutil.copyfile(src, target / rel / name)
    return skipped


def numpy_dirs() -> list[str]:
    """NumPy's package directory and the directory of its bundled libraries, if any."""
    package = Path(np.__file__).resolve().parent
    dirs = [str(package)]
    libs = package.parent / "numpy.libs"
    if libs.is_dir():
        dirs.append(str(libs.resolve()))
    return dirs


_UNPRIVILEGED: dict[str, bool] = {}


def can_drop_privileges(python: str) -> bool:
    """Whether the child can run as an unprivileged user (only tried when running as root):
    whether that user can run this Python and import this NumPy."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return False
    if python not in _UNPRIVILEGED:
        site = str(Path(numpy_dirs()[0]).parent)
        code = (f"import sys; assert sys.version_info[:2] == {tuple(sys.version_info[:2])}; "
                f"sys.path.insert(0, {site!r}); import numpy")
        try:
            probe = subprocess.run(
                [python, "-I", "-S", "-c", code], user=UNPRIVILEGED_UID,
                group=UNPRIVILEGED_UID, extra_groups=[], capture_output=True, timeout=20,
                cwd="/",
            )
            _UNPRIVILEGED[python] = probe.returncode == 0
        except (OSError, subprocess.SubprocessError):
            _UNPRIVILEGED[python] = False
    return _UNPRIVILEGED[python]


def child_python() -> str:
    """The Python a child runs: this one, unless running as root and only another Python of
    the same version can run this NumPy as an unprivileged user (a Python installed under
    /root cannot), which then is preferred for the privilege drop."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0) or can_drop_privileges(sys.executable):
        return sys.executable
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate) and can_drop_privileges(candidate):
            return candidate
    return sys.executable


def isolation_summary(python: str | None = None) -> str:
    """How children run on this machine, in one sentence (for the instructor's report)."""
    python = python or child_python()
    if can_drop_privileges(python):
        return (f"children run {python} as uid {UNPRIVILEGED_UID} under the sandbox's hooks "
                "and limits")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return (f"children run as root: uid {UNPRIVILEGED_UID} cannot run {python} with its "
                "NumPy; they are contained by the sandbox's hooks and limits")
    return "children run as the grader's user, contained by the sandbox's hooks and limits"


def _private_dir(root: Path) -> Path:
    """root/private: links to NumPy and its libraries, and the runner's two files."""
    private = root / "private"
    private.mkdir()
    for directory in numpy_dirs():
        os.symlink(directory, private / Path(directory).name)
    shutil.copyfile(HERE / "child.py", private / "_grading_child.py")
    shutil.copyfile(HERE / "protocol.py", private / "_grading_protocol.py")
    return private


def _open_to_nobody(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


CHILD_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1",
             "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class Zygote:
    """A process that has imported NumPy and forks one child per item (``child.zygote``).

    No submission code ever runs in it: it only forks, and the fork becomes the child (limits,
    hooks, the submission) before importing anything of the submission. It runs as the
    children do (uid 65534 when the grader can drop privileges), in its own process group, and
    is killed when the grader exits.
    """

    def __init__(self, python: str, drop: bool) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="grading-zygote-"))
        self.private = _private_dir(self.root)
        if drop:
            _open_to_nobody(self.root)
        ours, theirs = socket.socketpair()
        config = {"fd": theirs.fileno(), "private_dir": str(self.private)}
        kwargs = {}
        if drop:
            kwargs = dict(user=UNPRIVILEGED_UID, group=UNPRIVILEGED_UID, extra_groups=[])
        try:
            self.process = subprocess.Popen(
                [python, "-I", "-S", "-B", str(self.private / "_grading_child.py"),
                 "--zygote", json.dumps(config)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd=str(self.root), env=CHILD_ENV,
                pass_fds=(theirs.fileno(),), start_new_session=True, **kwargs)
        finally:
            theirs.close()
        ours.settimeout(30)
        self.socket = ours
        self.reader = ours.makefile("rb")

    def alive(self) -> bool:
        return self.process.poll() is None

    def _ask(self, request: dict, fds=()) -> dict:
        socket.send_fds(self.socket, [json.dumps(request).encode()], list(fds))
        line = self.reader.readline()
        if not line:
            raise OSError("the zygote process ended")
        return json.loads(line)

    def spawn(self, config: dict, fds: list[int]) -> int:
        """Fork a child running ``config``; fds = its read pipe, write pipe and stderr."""
        return int(self._ask({"op": "spawn", "config": config}, fds)["pid"])

    def wait(self, pid: int, seconds: float) -> int | None:
        """The child's exit status once it has ended (within seconds), else None."""
        try:
            return self._ask({"op": "wait", "pid": pid, "seconds": seconds})["status"]
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.reader.close()
        self.socket.close()
        shutil.rmtree(self.root, ignore_errors=True)


_ZYGOTES: dict[tuple[str, bool], Zygote] = {}


def zygote_for(python: str, drop: bool) -> Zygote:
    """This process's zygote for that Python (started, or restarted if it died)."""
    key = (python, drop)
    zygote = _ZYGOTES.get(key)
    if zygote is None or not zygote.alive():
        if zygote is not None:
            zygote.close()
        zygote = _ZYGOTES[key] = Zygote(python, drop)
    return zygote


@atexit.register
def _close_zygotes() -> None:
    for zygote in _ZYGOTES.values():
        zygote.close()
    _ZYGOTES.clear()


class Child:
    """One child process running a copy of a submission.

    ``request`` sends one request and waits for its answer, serving the oracle calls the
    child makes meanwhile with ``oracles`` (name -> function of the decoded payload).
    """

    def __init__(self, package: Path, limits: Limits,
                 oracles: dict[str, Callable[[dict], object]] | None = None,
                 resolve=None, python: str | None = None) -> None:
        self.limits = limits
        self.oracles = oracles or {}
        self.resolve = resolve
        self.python = python or child_python()
        self.notes: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="grading-"))
        self.pid: int | None = None
        self.process: subprocess.Popen | None = None  # when started without the zygote
        self.zygote: Zygote | None = None
        self._fds: list[int] = []
        try:
            self._prepare(package)
            self._start()
        except BaseException:
            self.close()
            raise

    # -- start and stop --------------------------------------------------------------------
    def _prepare(self, package: Path) -> None:
        self.notes += [f"skipped {p} (not a plain .py file of at most 1 MiB)"
                       for p in copy_package(package, self.root / "sub" / "scratch")]
        (self.root / "work").mkdir()
        self.drop = can_drop_privileges(self.python)
        if self.drop:
            _open_to_nobody(self.root)
            os.chown(self.root / "work", UNPRIVILEGED_UID, UNPRIVILEGED_UID)

    def _config(self, private: Path) -> dict:
        return {
            "work_dir": str(self.root / "work"), "private_dir": str(private),
            "submission_dir": str(self.root / "sub"), "numpy_dirs": numpy_dirs(),
            "memory_bytes": self.limits.memory_mb << 20, "file_bytes": self.limits.file_mb << 20,
            "cpu_seconds": int(self.limits.item_seconds + self.limits.start_seconds) + 5,
        }

    def _start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self._fds = [to_child_w, from_child_r]
        self.stderr_path = self.root / "stderr.txt"
        try:
            with open(self.stderr_path, "wb") as stderr:
                try:
                    self.zygote = zygote_for(self.python, self.drop)
                    self.pid = self.zygote.spawn(self._config(self.zygote.private),
                                                 [to_child_r, from_child_w, stderr.fileno()])
                except OSError:  # no zygote here: a fresh interpreter for this child
                    self.zygote = None
                    self._start_fresh(to_child_r, from_child_w, stderr)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.channel = protocol.Channel(from_child_r, to_child_w)

    def _start_fresh(self, read_fd: int, write_fd: int, stderr) -> None:
        private = _private_dir(self.root)
        if self.drop:
            _open_to_nobody(private)
        config = dict(self._config(private), read_fd=read_fd, write_fd=write_fd)
        kwargs = {}
        if self.drop:
            kwargs = dict(user=UNPRIVILEGED_UID, group=UNPRIVILEGED_UID, extra_groups=[])
        self.process = subprocess.Popen(
            [self.python, "-I", "-S", "-B", str(private / "_grading_child.py"),
             json.dumps(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            cwd=str(self.root / "work"), env=CHILD_ENV, pass_fds=(read_fd, write_fd),
            start_new_session=True, **kwargs,
        )
        self.pid = self.process.pid

    def close(self) -> None:
        """Kill the child's whole process group, reap it, remove its directory."""
        self.close_process(grace=0.0)
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------------------
    def request(self, op: str, value, seconds: float, oracles=()) -> Answer:
        """Send one request; serve oracle calls until the answer comes, within ``seconds``.

        oracles: the names of the functions whose reference the child may ask for while it
        answers this request (none of them a function the request grades).
        """
        deadline = time.monotonic() + seconds
        allowed = frozenset(oracles)
        try:
            self.channel.send_value({"op": op, "oracles": sorted(allowed)}, value)
            while True:
                message, answer = self.channel.recv_value(deadline, self.resolve)
                if message.get("op") == "oracle":
                    self._serve_oracle(message, answer, allowed)
                    continue
                if message.get("op") != "answer":
                    raise protocol.ProtocolError(f"unexpected message {message.get('op')!r}")
                notes = message.get("notes") or []
                notes = [str(n)[:300] for n in notes if isinstance(n, str)][:50]
                for note in notes:  # kept for the item's report, whichever case it came in
                    if note not in self.notes and len(self.notes) < 50:
                        self.notes.append(note)
                error = message.get("error")
                return Answer(bool(message.get("ok")), answer,
                              error if isinstance(error, dict) else None, notes)
        except protocol.ChannelClosed as exc:
            raise self._failure(seconds, exc.timed_out) from None
        except protocol.ProtocolError as exc:
            raise ChildFailure(f"the submission's process broke the grading protocol ({exc}); "
                               "a submission must not write to the grader's pipes") from None

    def _serve_oracle(self, message: dict, payload, allowed: frozenset) -> None:
        name = message.get("name")
        oracle = self.oracles.get(name) if name in allowed else None
        if oracle is None:
            self.channel.send_value({"op": "oracle_answer", "ok": False,
                                     "error": f"no reference is served for {name!r} here"},
                                    None)
            return
        try:
            result = oracle(payload if isinstance(payload, dict) else {})
        except Exception as exc:  # the arguments the submission passed did not fit
            self.channel.send_value(
                {"op": "oracle_answer", "ok": False,
                 "error": f"the reference {name.rpartition(':')[2]} could not run on the "
                          f"arguments the submission passed: {type(exc).__name__}: {exc}"},
                None)
            return
        self.channel.send_value({"op": "oracle_answer", "ok": True}, result)

    def _failure(self, seconds: float, timed_out: bool) -> ChildFailure:
        if timed_out:
            self.close_process()
            return ChildFailure(f"did not answer within the time limit of {seconds:g} s "
                                "(an endless loop, or far too slow)", timed_out=True)
        code = self.close_process()
        if code is None:
            return ChildFailure("the submission's process stopped answering")
        if code < 0:
            sig = -code
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
        """Kill the process group and return the child's exit status if it ended by itself
        within ``grace`` seconds (None if it did not, or is unknown)."""
        if self.pid is None:
            return None
        pid, self.pid = self.pid, None
        if self.zygote is not None:
            code = self.zygote.wait(pid, grace)
        else:
            assert self.process is not None
            try:
                code = self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                code = None
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if code is None:  # reap it
            if self.zygote is not None:
                self.zygote.wait(pid, 10)
            else:
                assert self.process is not None
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        return code

    def stderr_tail(self, size: int = 2000) -> str:
        try:
            data = self.stderr_path.read_bytes()
        except OSError:
            return ""
        return data[-size:].decode(errors="replace")
