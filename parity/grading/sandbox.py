"""The wall around a submission's code: each child runs in a sandbox the kernel enforces.

Every item of a submission is graded in a child process of its own, started by bubblewrap
(``bwrap``) in fresh PID, mount, IPC, network and UTS namespaces:

* its file system is empty but for, read-only, the system's shared libraries, this Python's
  interpreter and standard library (every site-packages directory masked), NumPy, the runner
  (``child.py`` and ``protocol.py``) and a copy of the submission's ``.py`` files; it may write
  only to its working directory ``/work`` and a private ``/tmp``, both small tmpfs mounts;
* it sees no process but its own and has no network;
* it never runs as root or as the grader's user: when the grader runs as root the child runs as
  a uid of its own, leased for that child alone (``UidLease``), with every capability dropped;
  otherwise it runs in a user namespace of its own as ``nobody``;
* nothing it starts outlives it: killing the namespace's first process ends every process in it.

The reference, torch, the harness and every other file of the machine are not in the child's
file system at all, so no path trick reaches them. The runner's rlimits (memory, CPU time,
file size, one process) and its audit hooks stay as a second layer: the hooks turn common
mistakes (importing torch, starting a process) into readable feedback, and are not the wall.

Where no sandbox can be started (no bwrap, or a container that forbids namespaces),
``find_wall`` raises ``SandboxUnavailable`` with what to install or enable. ``Wall.unsafe()``
runs children as plain processes under the hooks alone, for a trusted class or a test; the
report then says so on its first line.

The grader talks to the child over two pipes (``protocol``) and executes nothing the child
sends: it reads JSON and ``.npy`` arrays, checks them, and runs the reference itself.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import random
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from parity.grading import protocol

HERE = Path(__file__).resolve().parent
NOBODY = 65534
UID_FIRST, UID_COUNT = 610_000, 20_000  # the uids leased to children when grading as root
LEASE_DIR = Path("/run/rnn-parity-grading")
RUNNER_DIR, SUBMISSION_DIR = "/grading-runner", "/grading-submission"
WORK_DIR = "/grading-work"  # the child's working directory, a small tmpfs
CHILD_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1",
             "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Limits:
    """What one child may use. Times are wall-clock seconds, measured by the grader."""

    case_seconds: float = 10.0  # one request (one case of an item)
    item_seconds: float = 60.0  # a whole item, cases and shrinking together
    start_seconds: float = 20.0  # starting the child and importing the submission, once
    memory_mb: int = 1024  # address space of the child
    file_mb: int = 16  # largest file the child may write; size of its /work and /tmp

    def __post_init__(self) -> None:
        for name in ("case_seconds", "item_seconds", "start_seconds"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"limits.{name} must be a positive number, got {value!r}")
        for name in ("memory_mb", "file_mb"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"limits.{name} must be a positive int, got {value!r}")


class SandboxUnavailable(RuntimeError):
    """No sandbox can be started here; the message says what to install or enable."""


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


# -- the submission ------------------------------------------------------------------------------
def find_submission_package(path: Path) -> Path:
    """The ``scratch`` package inside a submission directory.

    Accepted layouts: SUBMISSION/scratch/__init__.py, or the package's files directly in
    SUBMISSION (SUBMISSION/__init__.py and SUBMISSION/recurrent.py), as an upload of the
    folder's contents gives. A package that is a symbolic link is refused: it could point at
    any directory of the grading machine.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"submission must be a directory, got {str(path)!r}")
    package = path / "scratch"
    if package.is_symlink():
        raise FileNotFoundError(f"{str(package)!r} is a symbolic link; a submission's scratch "
                                "package must be a plain directory of .py files")
    if (package / "__init__.py").is_file():
        return package
    if (path / "__init__.py").is_file() and (path / "recurrent.py").is_file():
        return path
    raise FileNotFoundError(
        f"no scratch package in submission {str(path)!r}: expected {path}/scratch/__init__.py "
        "(or the package's files, __init__.py and recurrent.py, directly in it)"
    )


MAX_SOURCE_BYTES = 1 << 20  # a .py file larger than this is not a student's source
MAX_SOURCE_FILES = 200
MAX_SKIPPED_NOTES = 20
MAX_SOURCE_ENTRIES = 5000  # files and directories walked in all
TOO_MANY_ENTRIES = "\0too many"  # copy_package's mark for a walk it stopped


def copy_package(source: Path, target: Path) -> list[str]:
    """Copy the .py files of a package tree: regular files of at most 1 MiB, opened without
    following links; links and anything else are skipped. Returns notes on what was skipped.

    The tree is walked through directory file descriptors from one opened without following
    a link (``os.fwalk``), so a link put in place of the package or of any directory in it
    after it was checked, while grading runs, is not followed either."""
    import stat

    skipped: list[str] = []
    copied = 0
    target.mkdir(parents=True)
    try:
        top = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise FileNotFoundError(f"{str(source)!r} is no longer a plain directory (a symbolic "
                                "link?); a submission must not change while it is graded"
                                ) from None
    try:
        entries = 0
        for root, dirs, files, root_fd in os.fwalk(".", dir_fd=top, follow_symlinks=False):
            rel = Path(root)
            entries += len(dirs) + len(files)
            if entries > MAX_SOURCE_ENTRIES:  # a package is tens of files, not a maze
                skipped.append(TOO_MANY_ENTRIES)
                break
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            for d in [d for d in dirs if stat.S_ISLNK(
                    os.stat(d, dir_fd=root_fd, follow_symlinks=False).st_mode)]:
                skipped.append(str(rel / d))
                dirs.remove(d)
            (target / rel).mkdir(parents=True, exist_ok=True)
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                if copied >= MAX_SOURCE_FILES:
                    skipped.append(str(rel / name))
                    continue
                try:
                    # a device node is never opened (opening one can act: a watchdog, a tty)
                    if not stat.S_ISREG(os.stat(name, dir_fd=root_fd,
                                                follow_symlinks=False).st_mode):
                        raise OSError(f"{name} is not a regular file")
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK,
                                 dir_fd=root_fd)
                except OSError:
                    skipped.append(str(rel / name))
                    continue
                with os.fdopen(fd, "rb") as handle:
                    info = os.fstat(handle.fileno())
                    data = (handle.read(MAX_SOURCE_BYTES + 1) if _is_regular(info.st_mode)
                            else None)
                if data is None or len(data) > MAX_SOURCE_BYTES:
                    skipped.append(str(rel / name))
                    continue
                (target / rel / name).write_bytes(data)
                copied += 1
    finally:
        os.close(top)
    return skipped


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


# -- the wall -----------------------------------------------------------------------------------
def python() -> str:
    """The interpreter children run: this one, by its real path (a virtual environment's
    python is a link to it; the environment itself stays outside the sandbox)."""
    return os.path.realpath(sys.executable)


def numpy_dir() -> str:
    return str(Path(np.__file__).resolve().parent)


def _site_dirs() -> set[str]:
    """Every directory of installed packages this Python or the system could hold."""
    version = f"python3.{sys.version_info.minor}"
    found = set(site.getsitepackages()) if hasattr(site, "getsitepackages") else set()
    for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        for key in ("purelib", "platlib"):
            found.add(sysconfig.get_path(key, vars=scheme_vars))
    for prefix in ("/usr/lib", "/usr/local/lib", "/usr/lib64"):
        found |= {f"{prefix}/python3/dist-packages", f"{prefix}/{version}/dist-packages",
                  f"{prefix}/{version}/site-packages"}
    return {os.path.realpath(p) for p in found if p and os.path.isdir(p)}


class _Layout:
    """bwrap arguments that build the child's file system, parents before children."""

    def __init__(self, made=("/",)) -> None:
        self.args: list[str] = []
        self.made: set[str] = set(made)
        self.bound: list[str] = []

    def _parents(self, dest: str) -> None:
        missing = []
        parent = os.path.dirname(dest)
        while parent not in self.made:
            missing.append(parent)
            parent = os.path.dirname(parent)
        for directory in reversed(missing):
            if not any(directory.startswith(b + "/") or directory == b for b in self.bound):
                self.args += ["--dir", directory]
            self.made.add(directory)

    def bind(self, src: str, dest: str | None = None) -> None:
        dest = dest or src
        self._parents(dest)
        self.args += ["--ro-bind", src, dest]
        self.made.add(dest)
        self.bound.append(dest)

    def symlink(self, target: str, dest: str) -> None:
        self._parents(dest)
        self.args += ["--symlink", target, dest]
        self.made.add(dest)

    def mask(self, dest: str) -> None:
        """An empty directory over dest (a site-packages inside a bound tree)."""
        self.args += ["--tmpfs", dest]

    def inside_bound(self, path: str) -> bool:
        return any(path == b or path.startswith(b + "/") for b in self.bound)


@dataclass(frozen=True)
class Wall:
    """How children are walled in: ``"bwrap"`` (the kernel's namespaces) or ``"none"``."""

    kind: str
    bwrap: str | None = None
    setpriv: str | None = None
    as_root: bool = False

    @staticmethod
    def unsafe() -> Wall:
        return Wall("none")

    @property
    def safe(self) -> bool:
        return self.kind == "bwrap"

    def describe(self) -> str:
        if not self.safe:
            return ("UNSAFE: graded without the sandbox (--unsafe-no-sandbox): the submission's "
                    "code runs as a plain process, contained only by Python's audit hooks")
        who = (f"a uid of its own ({UID_FIRST}-{UID_FIRST + UID_COUNT - 1}), no capabilities"
               if self.as_root else "nobody, in a user namespace of its own")
        return ("each item runs in a bubblewrap sandbox (own PID, mount, IPC, network and UTS "
                f"namespaces; read-only Python, NumPy and the submission) as {who}")

    def command(self, python: str, runner_args: list[str], sub_dir: Path, uid: int,
                limits: Limits, info_fd: int) -> list[str]:
        """The argv that runs the child runner in its sandbox."""
        if not self.safe:
            return [python, "-I", "-S", "-B", *runner_args]
        assert self.bwrap is not None
        size = str(limits.file_mb << 20)
        argv = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--die-with-parent", "--new-session",
                "--info-fd", str(info_fd), "--hostname", "sandbox", "--clearenv"]
        for key, value in CHILD_ENV.items():
            argv += ["--setenv", key, value]
        if not self.as_root:
            argv += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
                     "--cap-drop", "ALL"]
        # the writable tmpfs mounts first: what is bound later may lie below one of them
        argv += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "1777", "--size", size, "--tmpfs", "/tmp",
                 "--perms", "1777", "--size", size, "--tmpfs", WORK_DIR]
        layout = _Layout(("/", "/proc", "/dev", "/tmp", WORK_DIR))
        for lib in ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32"):
            if os.path.islink(lib):
                layout.symlink(os.readlink(lib), lib)
            elif os.path.isdir(lib):
                layout.bind(lib)
        if os.path.isfile("/etc/ld.so.cache"):
            layout.bind("/etc/ld.so.cache")
        layout.bind(python)
        if self.as_root:
            assert self.setpriv is not None
            layout.bind(self.setpriv)
        libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var(
            "INSTSONAME")
        if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir and soname:
            library = os.path.realpath(os.path.join(libdir, soname))
            if os.path.isfile(library) and not layout.inside_bound(library):
                layout.bind(library)
                layout.bind(library, os.path.join(libdir, soname))
        for key in ("stdlib", "platstdlib"):
            path = os.path.realpath(sysconfig.get_path(key))
            if not layout.inside_bound(path):
                layout.bind(path)
        for directory in sorted(_site_dirs()):
            if layout.inside_bound(directory):
                layout.mask(directory)
        numpy = numpy_dir()
        layout.bind(numpy)
        libs = os.path.join(os.path.dirname(numpy), "numpy.libs")
        if os.path.isdir(libs):
            layout.bind(os.path.realpath(libs), libs)
        layout.bind(str(HERE / "child.py"), f"{RUNNER_DIR}/_grading_child.py")
        layout.bind(str(HERE / "protocol.py"), f"{RUNNER_DIR}/_grading_protocol.py")
        layout.bind(str(sub_dir), SUBMISSION_DIR)
        argv += layout.args + ["--chdir", WORK_DIR, "--"]
        if self.as_root:
            assert self.setpriv is not None
            argv += [self.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                     "--inh-caps=-all", "--bounding-set=-all", "--"]
        return argv + [python, "-I", "-S", "-B", *runner_args]


_WALL: Wall | None = None

INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: apt-get update && apt-get install -y "
                "bubblewrap), or grade with --unsafe-no-sandbox, which runs submissions without "
                "the sandbox and is not safe against a hostile submission")


def find_wall() -> Wall:
    """The sandbox this machine can start, checked once per process by starting one.

    Raises SandboxUnavailable, saying what to install or enable, where there is none.
    """
    global _WALL
    if _WALL is not None:
        return _WALL
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(f"the grading sandbox needs bubblewrap (bwrap), which is not "
                                 f"installed: {INSTALL_HINT}")
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if as_root and setpriv is None:
        raise SandboxUnavailable("grading as root needs setpriv (util-linux) to run each child "
                                 "as an unprivileged uid: apt-get install util-linux")
    wall = Wall("bwrap", bwrap, setpriv, as_root)
    with tempfile.TemporaryDirectory(prefix="grading-probe-") as tmp:
        sub = Path(tmp) / "scratch"
        sub.mkdir()
        sub.chmod(0o755)
        read_info, write_info = os.pipe()
        try:
            with UidLease(as_root) as uid:
                code = (f"import sys; sys.path.append({os.path.dirname(numpy_dir())!r}); "
                        "import numpy")
                argv = wall.command(python(), ["-c", code], sub, uid, Limits(), write_info)
                probe = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                       timeout=60, pass_fds=(write_info,), cwd="/")
        except (OSError, subprocess.SubprocessError) as error:
            raise SandboxUnavailable(f"bubblewrap could not be run: {error}; "
                                     f"{INSTALL_HINT}") from None
        finally:
            os.close(read_info)
            os.close(write_info)
    if probe.returncode != 0:
        said = probe.stderr.decode(errors="replace").strip()[-400:]
        raise SandboxUnavailable(
            f"bubblewrap is installed but could not start the grading sandbox here ({said}). "
            "In a Docker container, the default seccomp profile forbids the namespaces it "
            "needs: run the container with --security-opt seccomp=unconfined --cap-add "
            "SYS_ADMIN (or --privileged). As a user other than root, enable unprivileged user "
            "namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces "
            "> 0). Otherwise grade with --unsafe-no-sandbox, which is not safe against a "
            "hostile submission.")
    _WALL = wall
    return wall


class UidLease:
    """A uid no other child of any grader on this machine holds while this one runs.

    Grading as root, each child runs as its own uid from UID_FIRST..UID_FIRST+UID_COUNT-1,
    leased through an exclusive lock on a file in a root-only directory (released when the
    lease's file descriptor closes, also if the grader dies). Not as root, the uid is the
    user namespace's ``nobody``.
    """

    def __init__(self, as_root: bool) -> None:
        self.as_root = as_root
        self.fd: int | None = None
        self.uid = NOBODY

    def __enter__(self) -> int:
        if not self.as_root:
            return self.uid
        LEASE_DIR.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(LEASE_DIR)
        if not os.path.isdir(LEASE_DIR) or os.path.islink(LEASE_DIR) or info.st_uid != 0 \
                or info.st_mode & 0o077:
            raise SandboxUnavailable(f"{LEASE_DIR} must be a directory of root's, mode 0700")
        start = random.randrange(UID_COUNT)
        for offset in range(UID_COUNT):
            uid = UID_FIRST + (start + offset) % UID_COUNT
            fd = os.open(LEASE_DIR / str(uid), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno in (errno.EAGAIN, errno.EACCES):
                    continue
                raise
            self.fd, self.uid = fd, uid
            return uid
        raise SandboxUnavailable(f"all {UID_COUNT} grading uids are in use")

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def describe_wall(wall: Wall | None = None) -> str:
    """How children run on this machine, in one sentence (for the instructor's report)."""
    try:
        wall = wall or find_wall()
    except SandboxUnavailable as error:
        return f"no sandbox: {error}"
    return wall.describe()


# -- one child ----------------------------------------------------------------------------------
class Child:
    """One child process running a copy of a submission behind the wall.

    ``request`` sends one request and waits for its answer, serving the oracle calls the
    child makes meanwhile with ``oracles`` (name -> function of the decoded payload).
    Everything the child sends is bounded (``protocol.Budget``) and checked before use.
    """

    def __init__(self, package: Path, limits: Limits,
                 oracles: dict[str, Callable[[dict], object]] | None = None,
                 resolve=None, wall: Wall | None = None, audit_hooks: bool = True) -> None:
        self.limits = limits
        self.oracles = oracles or {}
        self.resolve = resolve
        self.wall = wall or find_wall()
        self.audit_hooks = audit_hooks
        self.notes: list[str] = []
        self.budget = protocol.Budget()
        self.root = Path(tempfile.mkdtemp(prefix="grading-"))
        self.process: subprocess.Popen | None = None
        self.inner_pid: int | None = None
        self.lease = UidLease(self.wall.safe and self.wall.as_root)
        self._fds: list[int] = []
        try:
            self._prepare(package)
            self._start()
        except BaseException:
            self.close()
            raise

    def _prepare(self, package: Path) -> None:
        sub = self.root / "sub" / "scratch"
        skipped = copy_package(package, sub)
        if TOO_MANY_ENTRIES in skipped:  # said to the student: only this explains what is gone
            skipped.remove(TOO_MANY_ENTRIES)
            self.notes.append(f"the package holds more than {MAX_SOURCE_ENTRIES} files and "
                              "directories: the rest were not copied")
        self.notes += [f"skipped {p} (not a plain .py file of at most 1 MiB)"
                       for p in skipped[:MAX_SKIPPED_NOTES]]
        if len(skipped) > MAX_SKIPPED_NOTES:  # one note for the rest, however many there are
            self.notes.append(f"skipped {len(skipped) - MAX_SKIPPED_NOTES} more files")
        for path in [self.root / "sub", *(self.root / "sub").rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if not self.wall.safe:
            (self.root / "work").mkdir()
            (self.root / "runner").mkdir()
            shutil.copyfile(HERE / "child.py", self.root / "runner" / "_grading_child.py")
            shutil.copyfile(HERE / "protocol.py", self.root / "runner" / "_grading_protocol.py")

    def _config(self, read_fd: int, write_fd: int) -> dict:
        if self.wall.safe:
            runner, sub, work = RUNNER_DIR, SUBMISSION_DIR, WORK_DIR
        else:
            runner, sub, work = (str(self.root / "runner"), str(self.root / "sub"),
                                 str(self.root / "work"))
        return {
            "read_fd": read_fd, "write_fd": write_fd, "runner_dir": runner,
            "submission_dir": sub, "work_dir": work,
            "numpy_parent": os.path.dirname(numpy_dir()), "audit_hooks": self.audit_hooks,
            "memory_bytes": self.limits.memory_mb << 20, "file_bytes": self.limits.file_mb << 20,
            "cpu_seconds": int(self.limits.item_seconds + self.limits.start_seconds) + 5,
        }

    def _start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        info_r, info_w = os.pipe()
        self._fds = [to_child_w, from_child_r]
        self.stderr_path = self.root / "stderr.txt"
        uid = self.lease.__enter__()
        config = json.dumps(self._config(to_child_r, from_child_w))
        runner = (f"{RUNNER_DIR}/_grading_child.py" if self.wall.safe
                  else str(self.root / "runner" / "_grading_child.py"))
        argv = self.wall.command(python(), [runner, config], self.root / "sub", uid,
                                 self.limits, info_w)
        try:
            with open(self.stderr_path, "wb") as stderr:
                self.process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                    cwd=str(self.root / "work") if not self.wall.safe else "/",
                    env=CHILD_ENV, pass_fds=(to_child_r, from_child_w, info_w),
                    start_new_session=True)
        finally:
            for fd in (to_child_r, from_child_w, info_w):
                os.close(fd)
        try:
            if self.wall.safe:
                self.inner_pid = _read_child_pid(info_r, self.limits.start_seconds)
        finally:
            os.close(info_r)
        os.set_blocking(to_child_w, False)  # a child that stops reading cannot hold us
        self.channel = protocol.Channel(from_child_r, to_child_w, self.budget)

    def close(self) -> None:
        """Kill every process of the child, reap it, remove its directory, end the lease."""
        self.close_process(grace=0.0)
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
        self.lease.__exit__()
        shutil.rmtree(self.root, ignore_errors=True)

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
        try:
            self.channel.send_value({"op": op, "oracles": sorted(allowed)}, value, deadline)
            while True:
                message, answer = self.channel.recv_value(deadline, self.resolve)
                kind = message.get("op")
                if kind == "oracle":
                    self._serve_oracle(message, answer, allowed, deadline)
                    continue
                if kind != "answer" or not isinstance(message.get("ok"), bool):
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
        if oracle is None:
            self.channel.send_value({"op": "oracle_answer", "ok": False,
                                     "error": "no reference is served for that function here"},
                                    None, deadline)
            return
        try:
            result = oracle(payload if isinstance(payload, dict) else {})
        except Exception as exc:  # the arguments the submission passed did not fit
            self.channel.send_value(
                {"op": "oracle_answer", "ok": False,
                 "error": f"the reference {name.rpartition(':')[2]} could not run on the "
                          f"arguments the submission passed: {type(exc).__name__}: "
                          f"{str(exc)[:300]}"},
                None, deadline)
            return
        self.channel.send_value({"op": "oracle_answer", "ok": True}, result, deadline)

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

        In the sandbox, the namespace's first process is killed: the kernel then kills every
        process in the namespace, whatever session or group it made for itself."""
        process, self.process = self.process, None
        if process is None:
            return None
        code = None
        try:
            code = process.wait(timeout=grace) if grace > 0 else process.poll()
        except subprocess.TimeoutExpired:
            pass
        if self.inner_pid is not None:
            # bwrap exits once the namespace's first process has ended, and that one ends
            # only after the kernel has ended every other process of the namespace
            _kill(self.inner_pid)
            self.inner_pid = None
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        return code

    def stderr_tail(self, size: int = 2000) -> str:
        try:
            with open(self.stderr_path, "rb") as handle:
                handle.seek(max(0, os.fstat(handle.fileno()).st_size - size))
                data = handle.read(size)
        except OSError:
            return ""
        return data.decode(errors="replace")


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_child_pid(fd: int, seconds: float) -> int | None:
    """The pid (in the grader's namespace) of the sandbox's first process, from bwrap's
    --info-fd; None if bwrap ended before saying."""
    import select

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
