"""Each wall, as the kernel enforces it: the seccomp filter, the keyrings, the uid wall's
clean-up and its refusal to start where the answers are readable.

Every test here that grades runs once behind each wall this machine starts (``wall``), the
child's audit hook off, so that what holds is the kernel's.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import stat
from pathlib import Path

import pytest
from test_grading_hostile import make_submission, wall_processes

from parity.grading import walls
from parity.grading.grade import grade_submission
from parity.grading.rubric import rubric_from_dict

FAST = rubric_from_dict({"max_examples": 3, "limits": {"memory_mb": 512}})
HOSTILE, HONEST = "rnn_forward", "gru_backward"


def available() -> dict[str, walls.Wall]:
    found, _ = walls.candidates()
    started = {}
    for wall in found:
        try:
            walls.probe(wall)
        except walls.WallUnavailable:
            continue
        started[wall.kind] = wall
    return started


WALLS = available() if os.geteuid() == 0 else {}


@pytest.fixture(params=["bwrap", "bwrap-userns", "uid"])
def wall(request) -> walls.Wall:
    if request.param not in WALLS:
        pytest.skip(f"the {request.param} wall does not start here (grading as root needed)")
    return WALLS[request.param]


def grade_two(path: Path, wall: walls.Wall):
    result = grade_submission(path, FAST, items=[HOSTILE, HONEST], wall=wall,
                              audit_hooks=False)
    by_id = {item.id: item for item in result.items}
    assert by_id[HONEST].passed, by_id[HONEST].failure  # the honest item keeps its points
    hostile = by_id[HOSTILE]
    assert not hostile.passed and hostile.score == 0
    return hostile.failure.problem + " " + " ".join(hostile.notes)


def said(text: str, mark: str) -> dict[str, int]:
    """name=errno pairs the submission put after ``mark`` in its error message."""
    words = text.split(mark, 1)[1].split()
    return {w.split("=")[0]: int(w.split("=")[1]) for w in words if w.count("=") == 1
            and w.split("=")[1].lstrip("-").isdigit()}


# -- the seccomp filter ------------------------------------------------------------------------
FILTER_PROBE = """
import ctypes, errno, os, platform
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
X86 = platform.machine() == "x86_64"
NR = dict(socket=41, socketpair=53, ptrace=101, add_key=248, keyctl=250, request_key=249,
          unshare=272, setns=308, mount=165, shmget=29, semget=64, msgget=68, mq_open=240,
          flock=73, fcntl=72, bpf=321, perf_event_open=298, userfaultfd=323,
          io_uring_setup=425, process_vm_readv=310, clone=56, clone3=435, inotify_init1=294,
          mincore=27) if X86 else dict(
          socket=198, socketpair=199, ptrace=117, add_key=217, keyctl=219, request_key=218,
          unshare=97, setns=268, mount=40, shmget=194, semget=190, msgget=186, mq_open=180,
          flock=32, fcntl=25, bpf=280, perf_event_open=241, userfaultfd=282,
          io_uring_setup=425, process_vm_readv=270, clone=220, clone3=435, inotify_init1=26,
          mincore=232)
fd = os.open("/proc/self/stat", os.O_RDONLY)
CALLS = dict(
    socket=(1, 1, 0), socketpair=(1, 1, 0, 0), ptrace=(0, 0, 0, 0),
    add_key=(b"user", b"k", b"v", 1, -3), keyctl=(0, -3, 0), request_key=(b"user", b"k", 0, 0),
    unshare=(0x10000000,), setns=(fd, 0), mount=(b"none", b"/tmp", b"tmpfs", 0, 0),
    shmget=(0, 4096, 0o1600), semget=(0, 1, 0o1600), msgget=(0, 0o1600),
    mq_open=(b"q", 0o100 | 2, 0o600, 0), flock=(fd, 1), fcntl=(fd, 37, 0), bpf=(5, 0, 0),
    fcntl_high=(fd, 37 | 1 << 32, 0), fcntl_getlk=(fd, 36 | 1 << 32, 0), inotify_init1=(0,),
    mincore=(0, 4096, 0),
    perf_event_open=(0, 0, -1, -1, 0), userfaultfd=(0,), io_uring_setup=(1, 0),
    process_vm_readv=(os.getpid(), 0, 0, 0, 0, 0), clone=(0x10000000 | 17, 0, 0, 0, 0),
    clone3=(0, 0),
)
seen = []
for name, args in CALLS.items():
    ctypes.set_errno(0)
    result = libc.syscall(NR[name.partition("_")[0] if name.startswith("fcntl") else name],
                          *(ctypes.c_long(a) if isinstance(a, int) else a for a in args))
    if result == 0 and name in ("clone", "ptrace"):
        if name == "clone":
            os._exit(0)
    seen.append(f"{name}={ctypes.get_errno() if result < 0 else 0}")
raise RuntimeError("filter: " + " ".join(seen))
"""
REFUSED = ("socket", "socketpair", "ptrace", "add_key", "keyctl", "request_key", "unshare",
           "setns", "mount", "shmget", "semget", "msgget", "mq_open", "flock", "fcntl", "bpf",
           "perf_event_open", "userfaultfd", "io_uring_setup", "process_vm_readv", "clone",
           "fcntl_high", "fcntl_getlk", "inotify_init1", "mincore")


def test_the_filter_refuses_each_listed_call(tmp_path, wall):
    seen = said(grade_two(make_submission(tmp_path, FILTER_PROBE), wall), "filter:")
    assert set(seen) >= set(REFUSED) | {"clone3"}, seen
    for name in REFUSED:
        assert seen[name] == 1, f"{name} was not refused with EPERM: errno {seen[name]}"
    assert seen["clone3"] == 38  # ENOSYS: the C library falls back to clone, which is read


def test_the_filter_lists_what_the_launcher_documents():
    import subprocess

    launcher = walls.seccomp_python()
    if launcher is None:
        pytest.skip("libseccomp's Python bindings are not installed")
    pfc = subprocess.run([launcher, "-I", "-B", str(walls.LAUNCHER),
                          '{"mode": "print-filter"}'], capture_output=True, text=True,
                         check=True).stdout
    listed = tuple(n for n in REFUSED if not n.startswith("fcntl_"))  # fcntl_*: fcntl's arguments
    for name in listed + ("clone3", "io_uring_enter", "shmat", "semop", "msgsnd",
                          "pidfd_getfd", "kcmp", "open_tree", "fsopen", "inotify_init1",
                          "inotify_add_watch", "fanotify_init", "mincore", "fadvise64"):
        assert f'"{name}"' in pfc, name


# -- the keyrings ------------------------------------------------------------------------------
def test_a_child_starts_with_an_empty_session_keyring(tmp_path, wall):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    x86 = os.uname().machine == "x86_64"
    add_key, keyctl = (248, 250) if x86 else (217, 219)
    secret = f"rnn-parity-instructor-{os.getpid()}".encode()
    key = libc.syscall(add_key, b"user", secret, b"login", 5, -3)  # the session keyring's
    if key < 0:
        pytest.skip(f"this machine refuses add_key (errno {ctypes.get_errno()})")
    try:
        body = """
        try:
            keys = open("/proc/keys").read()
        except OSError as error:
            keys = type(error).__name__
        raise RuntimeError("keys: " + keys.replace("\\n", " | ")[:400])
        """
        text = grade_two(make_submission(tmp_path, body), wall)
        assert "keys:" in text and secret.decode() not in text
    finally:
        libc.syscall(keyctl, 3, key)  # KEYCTL_REVOKE
        libc.syscall(keyctl, 9, key, -3)  # KEYCTL_UNLINK from the session keyring


# -- the uid wall ------------------------------------------------------------------------------
def test_a_child_makes_no_file_and_leaves_no_process(tmp_path, leased, wall):
    """Behind every wall: nothing made on a file system outlives the item, and no tmpfs inode
    or file holds memory that the address-space limit does not count."""
    marker = f"rnn-parity-left-{os.getpid()}"
    body = f"""
    import os
    made = []
    work = os.environ.get("TMPDIR", os.getcwd())  # its own directory (tempfile finds none)
    for path in ("/tmp/{marker}", "/dev/shm/{marker}", "/var/tmp/{marker}",
                 work + "/{marker}"):
        try:
            with open(path, "w") as handle:
                handle.write("left")
            made.append("made")
        except OSError as error:
            made.append(type(error).__name__)
    for make in (lambda: os.mkdir("/tmp/{marker}-dir"),
                 lambda: os.symlink("/etc", "/tmp/{marker}-link"),
                 lambda: os.mkfifo("/tmp/{marker}-fifo")):
        try:
            make()
            made.append("made")
        except OSError as error:
            made.append(type(error).__name__)
    mode = oct(os.stat(work).st_mode & 0o777)
    raise RuntimeError(f"made {{made}} work={{work}} mode={{mode}} uid={{os.getuid()}}")
    """
    text = grade_two(make_submission(tmp_path, body), wall)
    assert "made ['PermissionError'" in text and "'made'" not in text, text
    assert "uid=0" not in text
    if wall.kind == "uid":
        assert "mode=0o700" in text
    for left in (f"/tmp/{marker}", f"/dev/shm/{marker}", f"/var/tmp/{marker}",
                 f"/tmp/{marker}-dir", f"/tmp/{marker}-link", f"/tmp/{marker}-fifo"):
        assert not os.path.lexists(left), left
    assert leased and wall_processes(leased) == []


def test_what_a_uid_owns_in_the_shared_directories_is_removed_and_nothing_else(tmp_path):
    """The clean-up behind the filter: every entry of the uid's in the shared writable
    directories and the world-writable ones below them goes; no one else's does."""
    import tempfile

    uid = walls.UID_FIRST + walls.UID_COUNT - 1  # never leased while this runs: see below
    top = Path(tempfile.mkdtemp(prefix="rnn-parity-shared-", dir="/tmp"))
    try:
        top.chmod(0o1777)
        nested = top / "open"
        nested.mkdir()
        nested.chmod(0o1777)
        mine = [top / "a", nested / "b", top / "dir"]
        mine[0].write_text("x")
        mine[1].write_text("x")
        mine[2].mkdir()
        (mine[2] / "inner").write_text("x")
        theirs = top / "root-owned"
        theirs.write_text("x")
        for path in [*mine, mine[2] / "inner"]:
            os.chown(path, uid, uid, follow_symlinks=False)
        assert walls.remove_files_of(uid, (str(top),))
        assert [p for p in mine if os.path.lexists(p)] == []
        assert theirs.exists() and nested.exists()
    finally:
        import shutil

        shutil.rmtree(top)


def test_the_uid_wall_refuses_where_the_answers_are_readable(monkeypatch):
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="rnn-parity-answers-", dir="/tmp"))  # not pytest's 0700
    try:
        answers = top / "reference.py"
        answers.write_text("ANSWERS = 42\n")
        top.chmod(0o755)
        answers.chmod(0o644)
        monkeypatch.setattr(walls, "secrets", lambda: [str(answers)])
        uid_wall = walls.Wall("uid", "/usr/bin/python3", as_root=True)
        with pytest.raises(walls.WallUnavailable, match=str(answers)):
            walls.check_secrets(uid_wall)
        top.chmod(0o700)  # as the bundle's setup.sh leaves the source: root's alone
        walls.check_secrets(uid_wall)
        assert not top.stat().st_mode & stat.S_IXOTH
        walls.check_secrets(walls.Wall("bwrap", "/usr/bin/python3"))  # namespaces hide it
    finally:
        shutil.rmtree(top)


def test_the_answers_are_among_what_the_uid_wall_hides():
    hidden = walls.secrets()
    assert any(p.endswith(os.path.join("scratch", "__init__.py")) for p in hidden)
    assert any(os.path.join("torch", "__init__.py") in p for p in hidden)
    assert any(os.path.join("grading", "__init__.py") in p for p in hidden)


# -- two submissions of grade-all --------------------------------------------------------------
RELAY = "/tmp/rnn-parity-relay", "/dev/shm/rnn-parity-relay", "/var/tmp/rnn-parity-relay"
PUBLISH = f"""
import os, time
for path in {RELAY!r}:
    try:
        with open(path, "w") as handle:
            handle.write("answers")
        os.chmod(path, 0o666)
    except OSError:
        pass
time.sleep(1.5)  # long enough for the other submission's child to look
"""
LISTEN = f"""
import os, time
found = []
for attempt in range(30):
    for path in {RELAY!r}:
        try:
            found.append(path + ":" + open(path).read())
        except OSError:
            pass
    if found:
        break
    time.sleep(0.1)
raise RuntimeError("relay: " + (" ".join(found) or "nothing"))
"""


def test_two_submissions_in_grade_all_reach_nothing_of_each_other(tmp_path, wall):
    from parity.grading.batch import grade_all

    books = tmp_path / "submissions"
    books.mkdir()
    for name, at_import, body in (("helper", PUBLISH, ""), ("cheat", "", LISTEN)):
        (tmp_path / name).mkdir()
        make_submission(tmp_path / name, body, at_import=at_import).rename(books / name)
    rubric = rubric_from_dict({"max_examples": 2, "limits": {"memory_mb": 512},
                               "items": {item: {"weight": 0} for item in _items()
                                         if item != HOSTILE}})
    book = grade_all(books, rubric, jobs=2, wall=wall, audit_hooks=False)
    rows = {Path(row.submission).name: row for row in book.rows}
    (cheat,) = rows["cheat"].items
    assert cheat.failure is not None and "relay: nothing" in cheat.failure.problem, \
        cheat.failure
    assert rows["helper"].score == rows["helper"].max_score
    for path in RELAY:
        assert not os.path.exists(path)


def _items() -> list[str]:
    from parity.grading.items import ITEMS

    return [item.spec.id for item in ITEMS]


# -- whose fault a dead child is ---------------------------------------------------------------
def test_a_child_dead_before_its_runner_is_ready_is_the_graders_fault(tmp_path):
    """Nothing of the submission runs before the runner says it is ready: a child that dies
    earlier (its Python missing, the wall refusing it) is the grader's fault, and the student
    is told so; one that dies at the import is the submission's."""
    honest = make_submission(tmp_path / "honest", "")
    broken = walls.Wall("none", interpreter="/bin/false")  # exits before any runner line
    result = grade_submission(honest, FAST, items=[HOSTILE], wall=broken)
    (item,) = result.items
    assert item.failure.cause == "grader" and result.grader_fault
    assert "not of your submission" in item.failure.problem
    assert "must not exit" not in item.failure.problem

    exits = make_submission(tmp_path / "exits", "", at_import="import os\nos._exit(3)\n")
    result = grade_submission(exits, FAST, items=[HOSTILE], wall=walls.Wall.unsafe())
    (item,) = result.items
    assert item.failure.cause == "import" and not result.grader_fault
    assert "must not exit the process" in item.failure.problem


def test_a_uid_wall_child_dies_with_its_grader(tmp_path):
    """No namespace ends the uid wall's child with the grader: the kernel's parent-death
    signal does, so a grader killed mid-item leaves no process behind."""
    import signal
    import subprocess
    import sys
    import time

    from test_grading_hostile import command_line, processes

    if "uid" not in WALLS:
        pytest.skip("the uid wall does not start here (grading as root needed)")
    sub = make_submission(tmp_path, "", at_import="import time\ntime.sleep(60)\n")
    script = ("import sys; from test_grading_walls import WALLS, FAST, grade_submission; "
              f"grade_submission({str(sub)!r}, FAST, items=['rnn_forward'], "
              "wall=WALLS['uid'], audit_hooks=False)")
    grader = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parent,
                              env=dict(os.environ, PYTHONPATH=str(Path(__file__).parent)))
    try:
        deadline = time.monotonic() + 60
        uids: set[int] = set()
        while not uids and time.monotonic() < deadline:  # its runner (not its probes)
            uids = {uid for pid, (ppid, uid) in processes().items()
                    if ppid == str(grader.pid) and walls.UID_FIRST <= uid
                    and any(arg.endswith(b"/_grading_child.py")
                            for arg in command_line(pid).split(b"\0"))}
            time.sleep(0.05)
        assert uids, "the grader never started its child"
        time.sleep(0.5)  # the child is in the submission's import now
    finally:
        grader.send_signal(signal.SIGKILL)
        grader.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and wall_processes(uids):
        time.sleep(0.05)
    assert wall_processes(uids) == []


# -- the stand-ins answer for this case alone ------------------------------------------------------
RELAYED_STEP = '''

_direction_forward = direction_forward


def direction_forward(mode, x_proj, h0, c0, weights, valid=None, reverse=False):
    import scratch.functional.rnn_cell as rc

    if mode.startswith("RNN"):
        outcome = []
        for label, W_hh in (("own", weights.W_hh), ("foreign", weights.W_hh + 1.0)):
            try:
                rc.rnn_step_forward(x_proj[0], h0, W_hh, weights.b_hh, mode[4:].lower())
                outcome.append(label + "=served")
            except Exception as error:
                outcome.append(label + "=refused(" + str(error)[:80] + ")")
        raise RuntimeError("stand-in: " + " ".join(outcome))
    return _direction_forward(mode, x_proj, h0, c0, weights, valid, reverse)
'''


def test_a_stand_in_serves_only_the_weights_of_the_case_being_graded(tmp_path):
    """Two children graded at once could relay one's case to the other's stand-ins, having
    the grader compute answers for a submission that implements nothing: a stand-in answers
    only for weights that the request it serves gave."""
    sub = make_submission(tmp_path, "")
    with open(sub / "scratch" / "sequence.py", "a") as handle:
        handle.write(RELAYED_STEP)
    result = grade_submission(sub, FAST, items=["sequence_forward"], wall=walls.Wall.unsafe(),
                              audit_hooks=False)
    (item,) = result.items
    text = item.failure.problem
    assert "stand-in: own=served foreign=refused(" in text, text
    assert "this case's own weights" in text


def test_the_uid_wall_refuses_a_seed_or_an_open_path_on_the_graders_command_line(monkeypatch):
    """Behind the uid wall a child reads every process's command line: a --seed there, or a
    rubric or a directory of other students' submissions that any uid can open, is refused."""
    import shutil
    import tempfile

    uid_wall = walls.Wall("uid", "/usr/bin/python3", as_root=True)
    top = Path(tempfile.mkdtemp(prefix="rnn-parity-open-", dir="/tmp"))  # not pytest's 0700
    try:
        rubric, submissions = top / "rubric.json", top / "submissions"
        rubric.write_text("{}")
        submissions.mkdir()
        top.chmod(0o755)
        rubric.chmod(0o644)
        submissions.chmod(0o711)  # not listable, but open to a name read off /proc
        with pytest.raises(walls.WallUnavailable, match="not with --seed"):
            walls.check_hidden(uid_wall, [], seed_on_command_line=True)
        for path in (rubric, submissions):
            with pytest.raises(walls.WallUnavailable, match=str(path)):
                walls.check_hidden(uid_wall, [path])
        rubric.chmod(0o600)
        submissions.chmod(0o700)
        walls.check_hidden(uid_wall, [rubric, submissions, None])
        bwrap = walls.Wall("bwrap", "/usr/bin/python3")  # shows no other process's command line
        top.chmod(0o755)
        walls.check_hidden(bwrap, [top], seed_on_command_line=True)
    finally:
        shutil.rmtree(top)


def test_a_wall_the_machine_refuses_on_the_way_does_not_start(monkeypatch):
    """A root without capabilities (docker run --cap-drop ALL) cannot hand the child its
    directory: the wall does not start, and grading says so, instead of crashing."""
    def refused(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(walls.os, "chown", refused)
    uid_wall = walls.Wall("uid", walls.seccomp_python() or "/usr/bin/python3", as_root=True,
                          interpreter=walls.child_python(True))
    if os.geteuid() != 0:
        pytest.skip("handing a directory to another uid needs root")
    with pytest.raises(walls.WallUnavailable, match="refused what it needs"):
        walls.probe(uid_wall)


def test_a_uid_whose_clean_up_fails_is_not_handed_on(monkeypatch, leased):
    """Where clearing the uid raises as a child ends, the error reaches the grader and the
    grader keeps the uid's lease and the uid wall's turn: no other child runs as that uid, or
    beside what it may have left. The grader's own directories are removed all the same."""
    if "uid" not in WALLS:
        pytest.skip("the uid wall does not start here (grading as root needed)")
    from parity.grading import session

    real_clear = session.clear
    calls: list[int] = []

    def clear(wall, uid):  # the first clear is before the child runs, the second after it
        calls.append(uid)
        if len(calls) == 2:
            raise OSError("the clean-up failed")
        real_clear(wall, uid)

    monkeypatch.setattr(session, "clear", clear)
    package = Path(__file__).resolve().parents[1] / "scratch"
    child = session.Child(package, session.Limits(), wall=WALLS["uid"], audit_hooks=False)
    dirs = child.dirs.root
    try:
        with pytest.raises(OSError, match="the clean-up failed"):
            child.close()
        assert not dirs.exists()
        for name in (str(leased[-1]), "uid-wall.turn"):
            other = walls._Lock()
            assert not other._take(name, wait=False), f"{name} was handed on"
    finally:  # let the rest of the session grade: clear the uid, drop the locks it kept
        real_clear(WALLS["uid"], leased[-1])
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/self/fd/{fd}").startswith(str(walls.LEASE_DIR)):
                    os.close(int(fd))
