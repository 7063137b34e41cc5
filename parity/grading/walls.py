"""The walls between a submission's code and everything else, enforced by the kernel.

Every item of a submission runs in a child process of its own, behind one of these walls; the
grader picks the strongest that starts on this machine (``find_wall``), in this order:

``bwrap``
    bubblewrap, run as root: fresh PID, mount, IPC, network and UTS namespaces; a file system
    that holds, read-only, the system's libraries, the interpreter and standard library (every
    site-packages masked), NumPy, the runner and the submission's copy, and two small tmpfs
    mounts to write in; the host-wide ``/proc`` files (keys, locks, load) masked; the child
    runs as a uid of its own (``UidLease``) with every capability dropped.
``bwrap-userns``
    the same wall made by bubblewrap in a user namespace of its own, which needs no
    capability where the container's seccomp profile allows namespaces (Docker's
    ``seccomp=unconfined`` with ``systempaths=unconfined``). As root, bubblewrap itself already
    runs as the child's own uid.
``uid``
    for containers that forbid namespaces (Docker's defaults), as root: the child runs as a uid
    and gid leased to it alone, with no supplementary group, no capability in any set,
    no_new_privs, a umask of 077, a fresh 0700 working directory (also its TMPDIR), and one
    child at a time on the machine. After the item every process of that uid is killed (the
    kill sent as that uid, again until none is left) and every file it owns in its directory
    and the machine's world-writable directories is removed, before the uid is leased again.
    It starts only where nothing that gives the answers (the reference, the harness, torch) is
    readable by such a uid, and names the path otherwise. What it does not hide: ``/proc``
    (every process's command line, but not its environment or memory) and the network's
    existence (sockets are refused by the filter).

Every wall starts its child through ``launcher.py``, which runs as root with libseccomp's
Python bindings, joins a fresh, empty session keyring and puts the seccomp filter on (the
filter and its list are in that file). The runner's rlimits (memory, CPU time, file size, one
process) and audit hooks stay as further layers inside; they are not the wall.

``WallUnavailable`` says, where no wall starts, what to install or enable: what each wall
needs, as measured in Docker's default container and its variations (docs/grading.md).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import random
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity.grading.launcher import processes_of

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
LAUNCHER = HERE / "launcher.py"
NOBODY = 65534
UID_FIRST, UID_COUNT = 610_000, 20_000  # the uids leased to children when grading as root
LEASE_DIR = Path("/run/rnn-parity-grading")
RUNNER_DIR, SUBMISSION_DIR = "/grading-runner", "/grading-submission"
WORK_DIR = "/grading-work"  # the child's working directory, a small tmpfs in the wall
RUNNER_FILES = {"child.py": "_grading_child.py", "protocol.py": "_grading_protocol.py"}
CHILD_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1",
             "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# host-wide /proc files a walled child has no need of: keys and locks of every process,
# the machine's load
PROC_MASKED = ("/proc/keys", "/proc/key-users", "/proc/locks", "/proc/loadavg")
# where a uid with no group can create files on a usual machine; each is searched for the
# child's files after the item (with any world-writable directory below it)
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock", "/dev/mqueue")


@dataclass(frozen=True)
class Limits:
    """What one child may use. Times are wall-clock seconds, measured by the grader."""

    case_seconds: float = 10.0  # one request (one case of an item)
    item_seconds: float = 60.0  # a whole item, cases and shrinking together
    start_seconds: float = 20.0  # starting the child and importing the submission, once
    memory_mb: int = 1024  # address space of the child
    file_mb: int = 16  # largest file the child may write; size of its /work and /tmp

    def __post_init__(self) -> None:
        for name, kind, what in (("case_seconds", (int, float), "number"),
                                 ("item_seconds", (int, float), "number"),
                                 ("start_seconds", (int, float), "number"),
                                 ("memory_mb", int, "int"), ("file_mb", int, "int")):
            value = getattr(self, name)
            if not isinstance(value, kind) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"limits.{name} must be a positive {what}, got {value!r}")


class WallUnavailable(RuntimeError):
    """No wall can be started here; the message says what to install or enable."""


# -- what a child runs ---------------------------------------------------------------------------
def python() -> str:
    """The grader's interpreter, by its real path (a virtual environment's python is a link to
    it; the environment itself stays outside the wall)."""
    return os.path.realpath(sys.executable)


def numpy_dir() -> str:
    return str(Path(np.__file__).resolve().parent)


def readable_by_anyone(path: str | Path, by_name: bool = False) -> bool:
    """Whether a uid with no group of the path's could read ``path``: every directory above
    it searchable by others, and the path itself readable by others (with ``by_name``, a
    directory searchable by others counts too: it opens what it holds by name)."""
    path = os.path.realpath(path)
    parts = Path(path).parts
    try:
        if not all(os.stat(os.path.join(*parts[:depth])).st_mode & stat.S_IXOTH
                   for depth in range(1, len(parts))):
            return False
        mode = os.stat(path).st_mode
    except OSError:
        return False
    searchable = stat.S_IXOTH if by_name and stat.S_ISDIR(mode) else 0
    return bool(mode & (stat.S_IROTH | searchable))


def child_python(unprivileged: bool) -> str | None:
    """The interpreter a child runs: the grader's own, or, where a uid of the child's own
    could not run that one (a Python under /root), the system's of the same version."""
    own = python()
    if not unprivileged or readable_by_anyone(own):
        return own
    version = f"python3.{sys.version_info.minor}"
    for candidate in (f"/usr/local/bin/{version}", f"/usr/bin/{version}"):
        if os.path.isfile(candidate) and readable_by_anyone(candidate):
            return os.path.realpath(candidate)
    return None


@functools.lru_cache(maxsize=4)
def interpreter_files(interpreter: str) -> tuple[tuple[str, ...], str | None, str | None]:
    """(its standard library's directories, its shared libpython's real path and the path it
    is linked by, or None) of an interpreter: what a wall must show for it to start."""
    code = ("import json, os, sysconfig as s; g = s.get_config_var; "
            "lib = os.path.join(g('LIBDIR'), g('INSTSONAME')) if g('Py_ENABLE_SHARED') and "
            "g('LIBDIR') and g('INSTSONAME') else None; "
            "print(json.dumps([[s.get_path('stdlib'), s.get_path('platstdlib')], lib]))")
    said = subprocess.run([interpreter, "-I", "-c", code], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=30).stdout
    stdlibs, linked = json.loads(said)
    paths = tuple(sorted({os.path.realpath(p) for p in stdlibs if p}))
    if linked and os.path.isfile(os.path.realpath(linked)):
        return paths, os.path.realpath(linked), linked
    return paths, None, None


def secrets() -> list[str]:
    """What gives the answers: the reference, the harness, torch and its twins (the rubric and
    its seed lie beside them in the bundle)."""
    import importlib.util

    found = [str(PROJECT / "scratch" / "__init__.py"), str(HERE / "__init__.py"),
             str(PROJECT / "torch_impl" / "__init__.py")]
    for name in ("torch", "torch_impl"):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            found.append(spec.origin)
    return sorted({os.path.realpath(p) for p in found if os.path.exists(p)})


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

    def _add(self, option: str, src: str, dest: str) -> None:
        missing = []
        parent = os.path.dirname(dest)
        while parent not in self.made:
            missing.append(parent)
            parent = os.path.dirname(parent)
        for directory in reversed(missing):
            if not self.inside_bound(directory):
                self.args += ["--dir", directory]
            self.made.add(directory)
        self.args += [option, src, dest]
        self.made.add(dest)

    def bind(self, src: str, dest: str | None = None) -> None:
        self._add("--ro-bind", src, dest or src)
        self.bound.append(dest or src)

    def symlink(self, target: str, dest: str) -> None:
        self._add("--symlink", target, dest)

    def inside_bound(self, path: str) -> bool:
        return any(path == b or path.startswith(b + "/") for b in self.bound)


# -- the walls ----------------------------------------------------------------------------------
KINDS = ("bwrap", "bwrap-userns", "uid", "none")


@dataclass(frozen=True)
class Wall:
    """How children are walled in: one of ``KINDS`` (see the module's docstring)."""

    kind: str
    launcher: str | None = None  # a Python with libseccomp's bindings, run as root
    bwrap: str | None = None
    setpriv: str | None = None
    as_root: bool = False
    interpreter: str | None = None  # what the child runs; the grader's Python by default

    @staticmethod
    def unsafe() -> Wall:
        return Wall("none")

    @property
    def safe(self) -> bool:
        return self.kind != "none"

    @property
    def leases_uid(self) -> bool:
        """Whether each child runs as a uid of its own (grading as root)."""
        return self.safe and self.as_root

    @property
    def python(self) -> str:
        return self.interpreter or python()

    def describe(self) -> str:
        filt = "a seccomp filter (no sockets, keyrings, namespaces, SysV IPC, locks or ptrace)"
        uid = f"a uid of its own ({UID_FIRST}-{UID_FIRST + UID_COUNT - 1}), no capabilities"
        if self.kind == "bwrap":
            return ("wall bwrap: each item runs in a bubblewrap wall (own PID, mount, IPC, "
                    "network and UTS namespaces; read-only Python, NumPy and the submission) "
                    f"as {uid}, under {filt}")
        if self.kind == "bwrap-userns":
            who = uid if self.as_root else "nobody"
            return ("wall bwrap-userns: each item runs in a bubblewrap wall made in a user "
                    "namespace of its own (own PID, mount, IPC, network and UTS namespaces; "
                    f"read-only Python, NumPy and the submission) as {who}, under {filt}")
        if self.kind == "uid":
            return (f"wall uid: each item runs as {uid} or groups, with no_new_privs, under "
                    f"{filt}, in a private 0700 directory, one child at a time; every process "
                    "and file of that uid is removed after it (no namespaces: /proc is visible)")
        return ("UNSAFE: graded without the wall (--unsafe-no-wall): the submission's "
                "code runs as a plain process, contained only by Python's audit hooks")

    def command(self, runner_args: list[str], dirs: ChildDirs, uid: int, limits: Limits,
                info_fd: int) -> list[str]:
        """The argv that runs ``python -I -S -B RUNNER_ARGS`` behind this wall, in ``dirs``."""
        child = [self.python, "-I", "-S", "-B", *runner_args]
        work = str(dirs.work)
        if self.kind == "none":
            return child
        if self.kind == "uid":
            env = {**CHILD_ENV, "TMPDIR": work, "HOME": work}
            return self.launch({"mode": "uid", "uid": uid, "work": work, "argv": child,
                                "env": env, "parent": os.getpid()})
        argv = self._bwrap(child, dirs.runner, dirs.sub, uid, limits, info_fd)
        drop = uid if self.kind == "bwrap-userns" and self.as_root else None
        return self.launch({"mode": "bwrap", "argv": argv, "uid": drop})

    def launch(self, config: dict) -> list[str]:
        """The argv that runs ``launcher.py`` with ``config``, as root."""
        assert self.launcher is not None
        return [self.launcher, "-I", "-B", str(LAUNCHER), json.dumps(config)]

    def _bwrap(self, child: list[str], runner: Path, sub: Path, uid: int, limits: Limits,
               info_fd: int) -> list[str]:
        assert self.bwrap is not None
        argv = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--die-with-parent", "--new-session",
                "--info-fd", str(info_fd), "--hostname", "sandbox", "--clearenv"]
        for key, value in CHILD_ENV.items():
            argv += ["--setenv", key, value]
        if self.kind == "bwrap-userns":
            argv += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
                     "--cap-drop", "ALL"]
        # the writable tmpfs mounts first: what is bound later may lie below one of them
        argv += ["--proc", "/proc", "--dev", "/dev"]
        for writable in ("/tmp", WORK_DIR):
            argv += ["--perms", "1777", "--size", str(limits.file_mb << 20), "--tmpfs", writable]
        for masked in PROC_MASKED:
            if os.path.exists(masked):
                argv += ["--ro-bind", "/dev/null", masked]
        layout = _Layout(("/", "/proc", "/dev", "/tmp", WORK_DIR))
        for lib in ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32"):
            if os.path.islink(lib):
                layout.symlink(os.readlink(lib), lib)
            elif os.path.isdir(lib):
                layout.bind(lib)
        if os.path.isfile("/etc/ld.so.cache"):
            layout.bind("/etc/ld.so.cache")
        python = child[0]
        layout.bind(python)
        if self.kind == "bwrap":
            assert self.setpriv is not None
            layout.bind(self.setpriv)
        stdlibs, library, linked = interpreter_files(python)
        if library and not layout.inside_bound(library):
            layout.bind(library)
            if linked != library:
                layout.bind(library, linked)
        for path in stdlibs:
            if not layout.inside_bound(path):
                layout.bind(path)
        for directory in sorted(_site_dirs()):
            if layout.inside_bound(directory):  # an empty directory over a site-packages
                layout.args += ["--tmpfs", directory]
        numpy = numpy_dir()
        layout.bind(numpy)
        libs = os.path.join(os.path.dirname(numpy), "numpy.libs")
        if os.path.isdir(libs):
            layout.bind(os.path.realpath(libs), libs)
        layout.bind(str(runner), RUNNER_DIR)
        layout.bind(str(sub), SUBMISSION_DIR)
        argv += layout.args + ["--chdir", WORK_DIR, "--"]
        if self.kind == "bwrap":
            argv += [self.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                     "--inh-caps=-all", "--bounding-set=-all", "--"]
        return argv + child


class ChildDirs:
    """A child's directories on the grader's side: ``runner`` (a copy of the runner's files),
    ``sub`` (where the submission's copy goes) and ``work``, under a fresh ``root``; ``seen``,
    where the child sees the three (the bwrap walls show the first two at RUNNER_DIR and
    SUBMISSION_DIR, and give it a tmpfs at WORK_DIR).

    Behind a wall that runs the child as a uid of its own, ``root`` can be passed through but
    not listed, the runner and the submission are readable and not writable, and ``work`` is
    the uid's own, mode 0700."""

    def __init__(self, wall: Wall, uid: int | None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="grading-"))
        self.runner, self.sub, self.work = (self.root / "runner", self.root / "sub",
                                            self.root / "work")
        self.seen = ((RUNNER_DIR, SUBMISSION_DIR, WORK_DIR)
                     if wall.kind in ("bwrap", "bwrap-userns")
                     else (str(self.runner), str(self.sub), str(self.work)))
        self.runner.mkdir()
        for source, name in RUNNER_FILES.items():
            shutil.copyfile(HERE / source, self.runner / name)
            (self.runner / name).chmod(0o644)
        self.runner.chmod(0o755)
        self.work.mkdir(mode=0o700)
        if wall.leases_uid and uid is not None:
            self.root.chmod(0o711)
            os.chown(self.work, uid, uid)

    def publish(self) -> None:
        """Make the submission's copy readable (and not writable) by the child."""
        for path in [self.sub, *self.sub.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# -- the uid's lease, and what it leaves -------------------------------------------------------
class _Lock:
    """An exclusive lock on a file of the root-only lease directory, held while ``fd`` is
    open: released when it closes, also if the grader dies."""

    fd: int | None = None

    def _take(self, name: str, wait: bool) -> bool:
        fd = os.open(LEASE_DIR / name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as error:
            os.close(fd)
            if not wait and error.errno in (errno.EAGAIN, errno.EACCES):
                return False  # another holds it
            raise
        self.fd = fd
        return True

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class UidLease(_Lock):
    """A uid no other child of any grader on this machine holds while this one runs.

    Grading as root, each child runs as its own uid from UID_FIRST..UID_FIRST+UID_COUNT-1,
    leased through its lock. Not as root, the uid is the user namespace's ``nobody``.
    """

    def __init__(self, as_root: bool) -> None:
        self.as_root = as_root
        self.uid = NOBODY

    def __enter__(self) -> int:
        if not self.as_root:
            return self.uid
        _lease_dir()
        start = random.randrange(UID_COUNT)
        for offset in range(UID_COUNT):
            uid = UID_FIRST + (start + offset) % UID_COUNT
            if not (LEASE_DIR / f"{uid}.tainted").exists() and self._take(str(uid), wait=False):
                self.uid = uid
                return uid
        raise WallUnavailable(f"all {UID_COUNT} grading uids are in use")


def _lease_dir() -> Path:
    LEASE_DIR.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(LEASE_DIR)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o077:
        raise WallUnavailable(f"{LEASE_DIR} must be a directory of root's, mode 0700")
    return LEASE_DIR


class OneAtATime(_Lock):
    """The uid wall's machine-wide turn: children behind it share /proc, /tmp and the
    machine, so no two run at once."""

    def __enter__(self) -> OneAtATime:
        _lease_dir()
        self._take("uid-wall.turn", wait=True)
        return self


def clear(wall: Wall, uid: int) -> None:
    """Leave nothing of ``uid``: no process, no file in the shared writable directories.
    Run after each child, and before a uid is used (a grader that died mid-item left its
    child's files; the child itself died with it). A uid that cannot be cleared is tainted:
    never leased again."""
    if processes_of(uid) and not reap(wall, uid) or not remove_files_of(uid):
        # something of it may be left: the uid is never leased again on this machine
        (_lease_dir() / f"{uid}.tainted").touch(mode=0o600)


def reap(wall: Wall, uid: int) -> bool:
    """Kill every process of ``uid``, the kill sent as that uid until none is left."""
    try:
        done = subprocess.run(wall.launch({"mode": "reap", "uid": uid, "seconds": 10}),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


MAX_SWEPT = 200_000  # entries looked at in one shared directory


def remove_files_of(uid: int, directories=SHARED_WRITABLE) -> bool:
    """Remove what ``uid`` owns in the shared writable directories and the world-writable
    directories below them (not following links): the clean-up behind the filter, which lets
    the uid wall's child make no file at all. False where a directory held more than
    MAX_SWEPT entries and was not searched to the end."""
    complete = True
    for top in directories:
        seen = 0
        try:
            stack = [top] if stat.S_ISDIR(os.lstat(top).st_mode) else []
        except OSError:
            continue
        while stack:
            directory = stack.pop()
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            seen += len(entries)
            if seen > MAX_SWEPT:
                complete = False
                break
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if info.st_uid == uid:
                    if stat.S_ISDIR(info.st_mode):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)
                elif stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_IWOTH:
                    stack.append(entry.path)  # where else could a groupless uid write?
    return complete


# -- choosing the wall ---------------------------------------------------------------------------
_WALL: Wall | None = None

ADVICE = (
    "What starts where (measured in Docker): with Docker's defaults, run the grader as root "
    "with python3-seccomp installed: the uid wall needs no namespace (and the reference, the "
    "harness and torch must be unreadable to other uids, as the bundle's setup.sh makes them). "
    "With --security-opt seccomp=unconfined --security-opt systempaths=unconfined, bubblewrap "
    "starts in a user namespace of its own with no added capability. Bubblewrap as root needs "
    "--security-opt seccomp=unconfined --cap-add SYS_ADMIN --cap-add NET_ADMIN (or "
    "--privileged). As a user other than root, enable unprivileged user namespaces (sysctl "
    "kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0). Otherwise grade with "
    "--unsafe-no-wall, which is not safe against a hostile submission.")
INSTALL_HINT = ("install bubblewrap and libseccomp's Python bindings (Debian/Ubuntu: apt-get "
                "update && apt-get install -y bubblewrap python3-seccomp util-linux), or grade "
                "with --unsafe-no-wall, which runs submissions without the wall and is "
                "not safe against a hostile submission")


def seccomp_python() -> str | None:
    """A Python that can import libseccomp's bindings: the grader's own, or the system's."""
    for candidate in (python(), shutil.which("python3", path="/usr/bin:/bin")):
        if candidate is None:
            continue
        try:
            done = subprocess.run([candidate, "-I", "-c", "import seccomp"],
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return candidate
    return None


def candidates(as_root: bool | None = None) -> tuple[list[Wall], list[str]]:
    """The walls this machine could start, strongest first, and why others cannot."""
    as_root = os.geteuid() == 0 if as_root is None else as_root
    launcher = seccomp_python()
    if launcher is None:
        return [], ["libseccomp's Python bindings are not installed (every wall puts a seccomp "
                    f"filter on its children): {INSTALL_HINT}"]
    walls: list[Wall] = []
    why: list[str] = []
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        why.append(f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}")
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if bwrap and as_root:
        if setpriv:
            walls.append(Wall("bwrap", launcher, bwrap, setpriv, True))
        else:
            why.append("bwrap as root needs setpriv (util-linux): apt-get install util-linux")
    unprivileged = child_python(unprivileged=as_root)
    if bwrap:
        if unprivileged is None:
            why.append(f"bwrap-userns: no interpreter of Python 3.{sys.version_info.minor} is "
                       "readable by an unprivileged uid")
        else:
            walls.append(Wall("bwrap-userns", launcher, bwrap, None, as_root, unprivileged))
    if as_root:
        if unprivileged is None:
            why.append(f"uid: the interpreter {python()} is not readable by an unprivileged "
                       f"uid, and no other Python 3.{sys.version_info.minor} is")
        else:
            walls.append(Wall("uid", launcher, None, None, True, unprivileged))
    else:
        why.append("uid: the uid wall needs the grader to run as root")
    return walls, why


def check_secrets(wall: Wall) -> None:
    """The uid wall hides the answers by file permissions alone: refuse where they show."""
    if wall.kind != "uid":
        return
    readable = [path for path in secrets() if readable_by_anyone(path)]
    if readable:
        raise WallUnavailable(
            "the uid wall cannot start: what gives the answers is readable by any uid: "
            + ", ".join(readable[:4]) + ". Make it readable by root only (chmod -R go-rwx on "
            "the directory that holds it, as the Gradescope bundle's setup.sh does), or "
            "install torch where other users cannot read it")


def check_hidden(wall: Wall, paths=(), seed_on_command_line: bool = False) -> None:
    """The uid wall shows a child every process's command line: what the grader names there
    (a rubric and its seed, a directory of other students' submissions) must be root's alone,
    and no seed may be given on it. Other walls show the child no process but its own."""
    if wall.kind != "uid":
        return
    if seed_on_command_line:
        raise WallUnavailable(
            "the uid wall shows every process's command line to the submissions: give the "
            "course seed in a rubric file readable by root alone, not with --seed")
    shown = [str(p) for p in paths if p is not None and readable_by_anyone(p, by_name=True)]
    if shown:
        raise WallUnavailable(
            "the uid wall shows every process's command line to the submissions, and these "
            "paths on it are open to any uid: " + ", ".join(shown[:4]) + ". Make them root's "
            "alone (chmod 700 for a directory, 600 for a file)")


def find_wall() -> Wall:
    """The strongest wall this machine can start, checked once per process by starting it.

    Raises WallUnavailable, saying what to install or enable, where there is none.
    """
    global _WALL
    if _WALL is not None:
        return _WALL
    walls, why = candidates()
    for wall in walls:
        try:
            check_secrets(wall)
            probe(wall)
        except WallUnavailable as error:
            why.append(f"{wall.kind}: {error}")
            continue
        _WALL = wall
        return wall
    raise WallUnavailable("no grading wall starts here. " + " ".join(why) + " " + ADVICE)


def probe(wall: Wall) -> None:
    """Start ``wall`` once, as a child would, with the runner's files and NumPy. Anything the
    machine refuses on the way (a root without capabilities cannot hand a directory to the
    child's uid) means that this wall does not start here."""
    try:
        with UidLease(wall.leases_uid) as uid:
            dirs = ChildDirs(wall, uid if wall.leases_uid else None)
            read_info, write_info = os.pipe()
            try:
                dirs.sub.mkdir()
                dirs.publish()
                runner = dirs.seen[0] + "/" + RUNNER_FILES["child.py"]
                code = (f"import sys; sys.path.append({os.path.dirname(numpy_dir())!r}); "
                        f"import numpy; open({runner!r}).read()")
                argv = wall.command(["-c", code], dirs, uid, Limits(), write_info)
                done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                      timeout=60, pass_fds=(write_info,), cwd="/")
            except (OSError, subprocess.SubprocessError) as error:
                raise WallUnavailable(f"it could not be run: {error}") from None
            finally:
                os.close(read_info)
                os.close(write_info)
                if wall.kind == "uid":
                    clear(wall, uid)
                dirs.remove()
    except OSError as error:
        raise WallUnavailable(f"the machine refused what it needs: {error}") from None
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()[-300:]
        raise WallUnavailable(f"it did not start ({said})")
