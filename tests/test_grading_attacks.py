"""Attacks on the grader, one class each, run against the kernel's wall alone.

Each test grades a hostile submission with the child's audit hook switched off
(``audit_hooks=False``): what keeps the attack out is the wall (namespaces, read-only
mounts, a uid of the child's own, rlimits) and the grader's checks of everything the child
sends, not Python. Each attack must score nothing it did not earn, the grader must finish with
a report, nothing outside the grader's output may change, and an honest item graded beside it
keeps its points.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import struct
import subprocess
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_grading_hostile import make_submission, processes, wall_processes

import scratch
from parity import calls
from parity.grading import cli, oracles, protocol, session
from parity.grading.batch import grade_all
from parity.grading.grade import grade_submission
from parity.grading.rubric import rubric_from_dict
from parity.grading.skeleton import write_skeleton

REFERENCE = Path(scratch.__file__).resolve().parent
# the default time limits (an honest item must not fail because a busy machine is slow)
LIMITS = {"memory_mb": 512}
FAST = rubric_from_dict({"max_examples": 5, "limits": LIMITS})
HOSTILE, HONEST = "rnn_forward", "gru_backward"


def _walls() -> list[str]:
    """The walls each attack runs behind: every one this machine starts, as root."""
    from test_grading_walls import WALLS

    return [kind for kind in ("bwrap", "uid") if kind in WALLS] or ["default"]


@pytest.fixture(autouse=True, params=_walls())
def wall_kind(request, monkeypatch) -> str:
    """Grade behind this wall (what ``find_wall`` returns for the test)."""
    from test_grading_walls import WALLS

    from parity.grading import walls

    if request.param != "default":
        monkeypatch.setattr(walls, "_WALL", WALLS[request.param])
    return request.param


def grade_two(path: Path, **kwargs):
    """(result, hostile item, honest item), the child's audit hook off."""
    result = grade_submission(path, FAST, items=[HOSTILE, HONEST], audit_hooks=False, **kwargs)
    by_id = {item.id: item for item in result.items}
    return result, by_id[HOSTILE], by_id[HONEST]


def text_of(item) -> str:
    assert item.failure is not None, f"{item.id} passed but should not have"
    return item.failure.problem + " " + " ".join(item.notes)


def assert_contained(path: Path, *reasons: str) -> str:
    result, hostile, honest = grade_two(path)
    assert hostile.score == 0 and not hostile.passed
    text = text_of(hostile)
    for reason in reasons:
        assert reason in text, f"expected {reason!r} in the feedback: {text}"
    assert honest.passed and honest.score == honest.weight, honest.failure
    return text


# -- forged runner answers -------------------------------------------------------------------
FORGERIES = {
    "no answers": "R.calls = lambda self, specs: (True, [], None)",
    "a number for the list": "R.calls = lambda self, specs: (True, 7, None)",
    "too many answers": "R.calls = lambda self, specs: (True, [[True, None, None]] * 50, None)",
    "an empty module run": "R.module = lambda self, spec: (True, {'grads': 3}, None)",
    "ok without a value": "R.call = lambda self, spec: (True, None, None)",
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_runner_answers_from_the_skeleton_score_nothing(tmp_path, forgery):
    handout = tmp_path / "handout"
    write_skeleton(handout)
    with open(handout / "scratch" / "__init__.py", "a") as handle:
        handle.write(f"\nimport __main__\nR = __main__.Runner\n{FORGERIES[forgery]}\n")
    rubric = rubric_from_dict({"max_examples": 3, "limits": LIMITS})
    result = grade_submission(handout, rubric, audit_hooks=False)
    assert len(result.items) == 14
    assert result.score == 0, [(i.id, i.score) for i in result.items if i.score]


# -- reading the reference ---------------------------------------------------------------------
def test_reading_the_reference_past_the_hooks_finds_nothing(tmp_path, wall_kind):
    target = REFERENCE / "functional" / "rnn_cell.py"
    if wall_kind == "uid":
        # the uid wall starts only where the reference is root's alone (as the bundle's
        # setup.sh leaves it); this checkout's is readable, so read a copy left that way
        private = tmp_path / "private"
        private.mkdir(mode=0o700)
        target = Path(shutil.copy(target, private / "rnn_cell.py"))
    body = f"""
    import io, os
    target = {str(target)!r}
    class Shifty:  # a path that changes between the check and the open
        calls = 0
        def __fspath__(self):
            Shifty.calls += 1
            return "harmless.txt" if Shifty.calls == 1 else target
    def with_dir_fd():
        os.chdir("/")
        fd = os.open(".", os.O_RDONLY)
        return os.read(os.open(target.lstrip("/"), os.O_RDONLY, dir_fd=fd), 1 << 20)
    errors = []
    for attempt in (lambda: io.FileIO(Shifty()).read(), with_dir_fd,
                    lambda: open(target, "rb").read()):
        try:
            source = attempt()
        except OSError as error:
            errors.append(type(error).__name__)
            continue
        namespace = {{}}
        exec(compile(source, "reference", "exec"), namespace)
        return namespace["rnn_step_forward"](x_proj, h_prev, W_hh, b_hh, nonlinearity)
    raise RuntimeError("the reference was out of reach: " + ", ".join(errors))
    """
    text = assert_contained(make_submission(tmp_path, body), "the reference was out of reach")
    assert ("PermissionError" if wall_kind == "uid" else "FileNotFoundError") in text


def test_a_symlinked_package_is_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "scratch").symlink_to(REFERENCE)
    result = grade_submission(tmp_path / "sub", FAST, items=[HOSTILE])
    assert result.score == 0 and "symbolic link" in result.error


def test_a_symlink_inside_the_package_is_not_followed(tmp_path):
    path = make_submission(tmp_path, "")
    functional = path / "scratch" / "functional"
    shutil.rmtree(functional)
    functional.symlink_to(REFERENCE / "functional")
    result, hostile, honest = grade_two(path)
    assert result.score == 0
    assert "skipped functional" in " ".join(hostile.notes)


# -- signalling another submission's processes ---------------------------------------------------
KILLER = """
import os, signal
for pid in range(1, 1 << 16):
    if pid == os.getpid():
        continue
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        continue
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
    except OSError:
        pass
    os.close(fd)
try:
    os.kill(-1, signal.SIGKILL)
except OSError:
    pass
"""


def test_a_submission_cannot_kill_another_in_grade_all(tmp_path):
    submissions = tmp_path / "submissions"
    make_submission(submissions / "a_killer", "", at_import=KILLER)
    shutil.move(submissions / "a_killer" / "sub", submissions / "killer")
    make_submission(submissions / "b_honest", "")
    shutil.move(submissions / "b_honest" / "sub", submissions / "honest")
    for leftover in ("a_killer", "b_honest"):
        shutil.rmtree(submissions / leftover)
    weights = {item: {"weight": 0} for item in oracles_items()}
    weights.update({"rnn_forward": {"weight": 4}, "bptt": {"weight": 12},
                    "multi_layer": {"weight": 8}})
    rubric = rubric_from_dict({"max_examples": 5, "limits": LIMITS, "items": weights})
    book = grade_all(submissions, rubric, jobs=2, audit_hooks=False)
    rows = {Path(row.submission).name: row for row in book.rows}
    assert rows["honest"].score == rows["honest"].max_score == 24
    assert rows["killer"].score == 24  # it computes honestly; its killing reached no one


def oracles_items() -> list[str]:
    from parity.grading.items import ITEMS

    return [item.spec.id for item in ITEMS]


# -- a process that outlives the grader --------------------------------------------------------
def test_a_child_cannot_start_a_process_that_outlives_it(tmp_path, leased):
    results = tmp_path / "results.json"
    results.write_text('{"score": 0}')
    body = f"""
    import os, time
    try:
        if os.fork() == 0:
            os.setsid()
            time.sleep(5)
            open({str(results)!r}, "w").write('{{"score": 100}}')
            os._exit(0)
    except OSError as error:
        raise RuntimeError("fork refused: " + type(error).__name__)
    raise RuntimeError("forked")
    """
    assert_contained(make_submission(tmp_path, body), "fork refused: BlockingIOError")
    assert wall_processes(leased) == []
    assert results.read_text() == '{"score": 0}'


def test_every_process_in_the_wall_ends_with_it(tmp_path):
    # below the runner's rlimits: a process that forks, leaves the session and sleeps ends
    # when the wall's first process is killed, as Child.close_process does
    wall = session.find_wall()
    if wall.kind == "uid":  # no namespace: the uid wall's reaping is tested on its own
        pytest.skip("test_grading_walls.py::test_the_uid_wall_leaves_no_process_and_no_file")
    sub = tmp_path / "sub"
    sub.mkdir()
    code = textwrap.dedent("""
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(60)
            os._exit(0)
        print("ready", flush=True)
        time.sleep(60)
    """)
    info_r, info_w = os.pipe()
    with session.UidLease(wall.leases_uid) as uid:
        dirs = session.ChildDirs(wall, uid)
        sub.rename(dirs.sub)
        argv = wall.command(["-c", code], dirs, uid, session.Limits(), info_w)
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, pass_fds=(info_w,),
                                   start_new_session=True)
        os.close(info_w)
        try:
            inner = session._read_child_pid(info_r, 20)
            assert process.stdout.readline() == b"ready\n"
            time.sleep(0.2)
            mine = [pid for pid, (_, owner) in processes().items() if owner == uid]
            if wall.leases_uid:
                assert len(mine) >= 2  # the sleeper, the grandchild in its own session
            os.kill(inner, 9)
            process.wait(10)
            time.sleep(0.2)
            assert [pid for pid, (_, owner) in processes().items() if owner == uid] == [] \
                or not wall.leases_uid
        finally:
            os.close(info_r)
            if process.poll() is None:
                process.kill()
                process.wait()
            dirs.remove()


# -- malformed, huge and deeply nested messages --------------------------------------------------
def _frame(doc, arrays=()) -> str:
    """Python source that writes one protocol frame to the grader's pipe."""
    return f"""
    import json, os, struct, sys
    fd = json.loads(sys.argv[1])["write_fd"]
    data = {doc!r}
    chunks = [struct.pack(">Q", len(data)), data]
    for blob in {list(arrays)!r}:
        chunks += [struct.pack(">Q", len(blob)), blob]
    os.write(fd, b"".join(chunks))
    import time
    time.sleep(2)
    """


def _npy_header(shape, dtype="<f8") -> bytes:
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


MESSAGES = {
    "nested 200,000 deep": _frame(b'{"op": "answer", "ok": true, "value": ' + b"[" * 200_000
                                  + b"]" * 200_000 + b"}"),
    "a length of 2**60": """
    import json, os, struct, sys, time
    os.write(json.loads(sys.argv[1])["write_fd"], struct.pack(">Q", 1 << 60))
    time.sleep(2)
    """,
    "an array header of 10**12 elements": _frame(
        b'{"op": "answer", "ok": true, "$n": 1, "value": {"$a": 0}}',
        [_npy_header((10**12,)) + b"\0" * 8]),
    "an object array": _frame(
        b'{"op": "answer", "ok": true, "$n": 1, "value": {"$a": 0}}',
        [_npy_header((1,), "|O") + b"\0" * 8]),
    "24 arrays of 4 MiB": f"""
    import json, os, struct, sys, time
    fd = json.loads(sys.argv[1])["write_fd"]
    doc = b'{{"op": "answer", "ok": true, "$n": 24, "value": null}}'
    blob = {_npy_header(((4 << 20) // 8 - 16,))!r} + bytes((4 << 20) - 128)
    os.write(fd, struct.pack(">Q", len(doc)) + doc)
    for _ in range(24):
        os.write(fd, struct.pack(">Q", len(blob)) + blob)
    time.sleep(2)
    """,
    "a number where the list goes": _frame(
        b'{"op": "answer", "ok": true, "value": [1, 2], "error": 5, "notes": 3}'),
    "an answer that is not an object": _frame(b"[1, 2, 3]"),
}


@pytest.mark.parametrize("message", sorted(MESSAGES))
def test_malformed_messages_fail_the_item_and_never_the_grader(tmp_path, message):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    text = assert_contained(make_submission(tmp_path, MESSAGES[message]))
    assert "protocol" in text or "malformed" in text or "could not be checked" in text, text
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 200, f"the grader's peak memory grew by {grown_mib:.0f} MiB"


def _frames():
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
            st.sampled_from(["$a", "$t", "$d", "$nt", "$m", "$f", "$v", "$s", "$n", "op",
                             "ok", "value", "x"]), inner, max_size=4),
        max_leaves=20)
    documents = json_values.map(lambda v: json.dumps(v).encode())
    arrays = st.binary(max_size=200) | st.builds(
        lambda shape, extra: _npy_header(shape) + b"\0" * extra,
        st.tuples(st.integers(0, 10**6)), st.integers(0, 64))
    structured = st.builds(
        lambda doc, blobs: b"".join([struct.pack(">Q", len(doc)), doc]
                                    + [struct.pack(">Q", len(b)) + b for b in blobs]),
        documents, st.lists(arrays, max_size=3))
    return structured | st.binary(max_size=300)


@settings(derandomize=True, database=None, max_examples=300, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(_frames())
def test_the_grader_side_of_the_protocol_survives_any_bytes(data):
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, data)
        os.close(write_fd)
        write_fd = None
        channel = protocol.Channel(read_fd, os.open(os.devnull, os.O_WRONLY),
                                   protocol.Budget(1 << 20))
        try:
            message, value = channel.recv_value(time.monotonic() + 5, oracles.resolve)
        except protocol.ProtocolError:
            return
        assert isinstance(message, dict)
        protocol.clean_error(message.get("error"))
        protocol.clean_notes(message.get("notes"))
    finally:
        os.close(read_fd)
        if write_fd is not None:
            os.close(write_fd)


def test_a_child_that_stops_reading_cannot_hold_the_grader(tmp_path):
    # thousands of oracle requests, never reading the refusals: the grader's writes into the
    # full pipe give up at the request's deadline instead of blocking for ever
    body = """
    import json, os, struct, sys, time
    fd = json.loads(sys.argv[1])["write_fd"]
    doc = json.dumps({"op": "oracle", "name": "nope", "value": None, "$n": 0}).encode()
    os.write(fd, (struct.pack(">Q", len(doc)) + doc) * 2000)
    time.sleep(3600)
    """
    path = make_submission(tmp_path, body)
    rubric = rubric_from_dict({"max_examples": 3, "limits": dict(LIMITS, case_seconds=3)})
    result = grade_submission(path, rubric, items=[HOSTILE], audit_hooks=False)
    (item,) = result.items
    assert item.score == 0 and "time limit of 3 s" in item.failure.problem


# -- the grader's memory ---------------------------------------------------------------------
def test_oracle_calls_larger_than_any_case_are_refused_and_the_cache_is_bounded():
    served = oracles.reference_oracles()
    step = served["scratch.functional.rnn_cell:rnn_step_forward"]
    big = np.zeros((512, 512))
    with pytest.raises(ValueError, match="far larger than any case"):
        step({"args": (big, big, big, None), "kwargs": {}})
    accumulate = served[oracles.METHODS[0]]
    config = {"mode": "LSTM", "input_size": 4096, "hidden_size": 4096, "num_layers": 4,
              "bias": True, "bidirectional": True, "proj_size": 0}
    with pytest.raises(ValueError, match="outside the graded cases"):
        accumulate({"config": config, "args": (), "kwargs": {}})
    oracles._reference_module.cache_clear()
    for hidden in range(1, 9):
        for layers in range(1, 4):
            config = dict(config, input_size=3, hidden_size=hidden, num_layers=layers)
            try:
                accumulate({"config": config, "args": (), "kwargs": {}})
            except TypeError:
                pass  # no arguments for the method: only the layer's making matters here
    assert oracles._reference_module.cache_info().currsize <= 16


# -- writes and reads outside the work directory -----------------------------------------------
def test_writes_outside_the_work_directory_change_nothing(tmp_path):
    marker = f"rnn-parity-attack-{os.getpid()}"
    shared = tmp_path / "world-writable.txt"
    shared.write_text("untouched")
    shared.chmod(0o666)
    body = f"""
    written = []
    for path in ("/tmp/{marker}", "/dev/shm/{marker}", {str(shared)!r}, "/{marker}"):
        try:
            with open(path, "w") as handle:
                handle.write("forged")
            written.append(path)
        except OSError as error:
            written.append(type(error).__name__)
    raise RuntimeError("writes: " + ", ".join(written))
    """
    assert_contained(make_submission(tmp_path, body), "writes:")
    assert not Path(f"/tmp/{marker}").exists() and not Path(f"/dev/shm/{marker}").exists()
    assert shared.read_text() == "untouched"


def test_reads_of_proc_etc_and_memory_reveal_nothing_of_the_grader(tmp_path, wall_kind):
    if wall_kind == "uid":
        return uid_wall_reads_of_the_grader(tmp_path)
    body = """
    import os
    import numpy as np
    seen = []
    for path in ("/etc/passwd", "/proc/1/cmdline", "/proc/self/cmdline"):
        try:
            seen.append(open(path, "rb").read()[:200].decode(errors="replace"))
        except OSError as error:
            seen.append(type(error).__name__)
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    hosts = [p for p in pids if b"/grading-" in open("/proc/" + p + "/cmdline", "rb").read()
             and b"/grading-runner" not in open("/proc/" + p + "/cmdline", "rb").read()]
    shown = {}
    for name in ("keys", "locks", "loadavg"):
        try:
            shown[name] = len(open("/proc/" + name, "rb").read())
        except OSError as error:
            shown[name] = type(error).__name__
    class Raw:  # any address of this process, as NumPy reads it
        __array_interface__ = {"data": (id(seen), True), "shape": (64,), "typestr": "|u1",
                               "version": 3}
    np.asarray(Raw()).copy()
    raise RuntimeError(f"pids={len(pids)} hosts={len(hosts)} shown={shown} seen={seen}")
    """
    text = assert_contained(make_submission(tmp_path, body), "pids=")
    assert "root:" not in text and "pytest" not in text
    assert "hosts=0 " in text  # no command line shows the grader's directories (bwrap --args)
    for name in ("keys", "locks", "loadavg"):  # the host-wide files are masked
        assert f"'{name}': 'PermissionError'" in text or f"'{name}': 0" in text, text
    pids = int(text.split("pids=")[1].split()[0])
    assert pids <= 3  # the namespace's first process, the child, nothing of the machine


def uid_wall_reads_of_the_grader(tmp_path):
    """Without namespaces the child sees /proc, but nothing of the grader's that is not
    public: its environment, memory, open files and working directory are the owner's."""
    body = f"""
    import os
    seen = []
    for name in ("environ", "mem", "fd", "cwd", "root", "maps"):
        path = "/proc/{os.getpid()}/" + name
        try:
            seen.append(name + ":" + str(len(os.listdir(path) if name == "fd" else
                                                  open(path, "rb").read(64))))
        except OSError as error:
            seen.append(name + ":" + type(error).__name__)
    raise RuntimeError("grader: " + " ".join(seen))
    """
    text = assert_contained(make_submission(tmp_path, body), "grader:")
    for name in ("environ", "mem", "fd", "cwd", "root", "maps"):
        assert f"{name}:PermissionError" in text, text


def test_feedback_echoes_at_most_a_few_hundred_characters(tmp_path):
    text = assert_contained(make_submission(tmp_path, 'raise RuntimeError("A" * 100000)\n'),
                            "RuntimeError")
    assert text.count("A") <= protocol.MAX_MESSAGE_CHARS


# -- a hang at import --------------------------------------------------------------------------
def test_a_hang_at_import_costs_one_start_limit_in_all(tmp_path):
    path = make_submission(tmp_path, "", at_import="while True:\n    pass\n")
    rubric = rubric_from_dict({"max_examples": 3, "limits": dict(LIMITS, start_seconds=2)})
    result = grade_submission(path, rubric)
    assert len(result.items) == 14 and result.score == 0
    for item in result.items:
        assert "time limit of 2 s" in item.failure.problem
    # one child met the limit; every later item failed at once, without a child of its own
    assert [item.cases for item in result.items] == [0] * 14
    assert all(item.seconds == 0.0 for item in result.items[1:])


# -- no wall: refuse, unless told ----------------------------------------------------------
@pytest.fixture()
def no_wall(monkeypatch):
    from parity.grading import walls

    monkeypatch.setattr(walls, "_WALL", None)
    monkeypatch.setattr(walls.shutil, "which", lambda *args, **kwargs: None)
    monkeypatch.setattr(walls, "seccomp_python", lambda: None)


def test_without_a_wall_grade_refuses_and_says_what_to_install(tmp_path, no_wall,
                                                                     capsys):
    path = make_submission(tmp_path, "")
    assert cli.main(["grade", str(path), "--items", "rnn_forward"]) == cli.NO_WALL
    err = capsys.readouterr().err
    assert "apt-get install -y bubblewrap" in err and "--unsafe-no-wall" in err
    assert cli.main(["grade-all", str(tmp_path)]) == cli.NO_WALL
    assert cli.main(["wall-check"]) == cli.NO_WALL


def test_unsafe_no_wall_grades_and_says_so_first(tmp_path, no_wall, capsys):
    path = make_submission(tmp_path, "")
    results = tmp_path / "results.json"
    code = cli.main(["grade", str(path), "--items", "rnn_forward", "--unsafe-no-wall",
                     "--results", str(results)])
    assert code == 0
    assert capsys.readouterr().out.startswith("UNSAFE: graded without the wall")
    assert json.loads(results.read_text())["output"].startswith("UNSAFE")


def test_gradescope_without_a_wall_writes_a_zero_score_and_grades_nothing(tmp_path,
                                                                            no_wall):
    path = make_submission(tmp_path, "")
    results = tmp_path / "results" / "results.json"
    code = cli.main(["gradescope", "--submission", str(path), "--results", str(results)])
    assert code == cli.NO_WALL
    written = json.loads(results.read_text())
    assert written["score"] == 0 and written["tests"] == []
    assert "could not start" in written["output"]


def test_gradescope_writes_a_zero_score_when_grading_itself_fails(tmp_path, monkeypatch):
    from parity.grading import grade

    def broken(*args, **kwargs):
        raise RuntimeError("the grader broke")

    monkeypatch.setattr(grade, "grade_submission", broken)
    results = tmp_path / "results.json"
    with pytest.raises(RuntimeError, match="the grader broke"):
        cli.main(["gradescope", "--submission", str(tmp_path), "--results", str(results)])
    written = json.loads(results.read_text())
    assert written["score"] == 0 and "failed before grading" in written["output"]


def test_the_bundle_installs_and_checks_the_wall():
    from parity.grading.gradescope import bundle_files
    from parity.grading.rubric import default_rubric

    setup = bundle_files(default_rubric())["setup.sh"].decode()
    assert setup.index("apt-get update") < setup.index("apt-get install")
    assert "bubblewrap" in setup and "wall-check" in setup


@pytest.mark.parametrize("dtype", [np.float64, np.clongdouble])
def test_oracle_arguments_that_broadcast_past_any_case_are_refused(dtype):
    """Each array within the per-array limit, but (64, 64, 1, 1) + (1, 1, 64, 64) made the
    reference build (64, 64, 64, 64) arrays in the grader: 2.6 GiB in clongdouble."""
    step = oracles.reference_oracles()["scratch.functional.rnn_cell:rnn_step_forward"]
    args = (np.ones((64, 64, 1, 1), dtype), np.ones((1, 1, 64, 64), dtype),
            np.eye(64, dtype=dtype), np.zeros(64, dtype), "tanh")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match="far larger than any case|the cases are float64"):
        step({"args": args, "kwargs": {}})
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 50


def test_many_skipped_files_make_a_few_notes(tmp_path):
    """Every .py file past the copy limit was a note of its own, de-duplicated in quadratic
    time: 80 000 empty files took one item from 0.6 s to 36 s, on every item."""
    path = make_submission(tmp_path, "")
    junk = path / "scratch" / "junk"
    junk.mkdir()
    for i in range(3000):
        (junk / f"f{i:05d}.py").touch()
    result = grade_submission(path, FAST, items=[HONEST], audit_hooks=False)
    item = result.items[0]
    assert item.passed
    skipped = [n for n in item.notes if n.startswith("skipped ")]
    assert len(skipped) == session.MAX_SKIPPED_NOTES + 1 and "more files" in skipped[-1]


def test_a_package_swapped_for_a_link_while_graded_is_not_followed(tmp_path):
    """find_submission_package checks once; every item copies again. A scratch/ swapped for a
    link to the reference after the check made os.walk copy the reference."""
    path = make_submission(tmp_path, 'raise NotImplementedError\n')
    first = session.copy_package(path / "scratch", tmp_path / "copy1" / "scratch")
    assert first == []
    os.rename(path / "scratch", path / "scratch.orig")
    os.symlink(REFERENCE, path / "scratch")
    with pytest.raises(FileNotFoundError, match="no longer a plain directory"):
        session.copy_package(path / "scratch", tmp_path / "copy2" / "scratch")


def test_grade_all_does_not_grade_a_link(tmp_path):
    from parity.grading.batch import list_submissions

    (tmp_path / "alice").mkdir()
    os.symlink(REFERENCE.parent, tmp_path / "mallory")  # a tree holding the reference
    assert [p.name for p in list_submissions(tmp_path)] == ["alice"]


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_node_in_the_submission_is_never_opened(tmp_path, monkeypatch):
    path = make_submission(tmp_path, "")
    os.mknod(path / "scratch" / "tape.py", 0o644 | 0o020000, os.makedev(1, 3))  # char device
    opened: list = []
    real_open = os.open
    monkeypatch.setattr(session.os, "open", lambda name, *a, **k: (
        opened.append(str(name)), real_open(name, *a, **k))[1])
    skipped = session.copy_package(path / "scratch", tmp_path / "copy" / "scratch")
    assert "tape.py" in skipped and "tape.py" not in opened


def test_a_maze_of_directories_is_walked_only_so_far(tmp_path):
    """Every directory was walked and made again for every item: 50 000 empty directories
    took two items from 0.4 s to 42 s, outside every limit."""
    path = make_submission(tmp_path, "")
    maze = path / "scratch" / "zz"
    maze.mkdir()
    for i in range(session.MAX_SOURCE_ENTRIES + 100):
        (maze / f"d{i:05d}").mkdir()
    copy = tmp_path / "copy" / "scratch"
    skipped = session.copy_package(path / "scratch", copy)
    assert session.TOO_MANY_ENTRIES in skipped
    assert (copy / "functional" / "rnn_cell.py").is_file()  # walked before the maze
    assert not (copy / "zz").exists() or len(list((copy / "zz").iterdir())) < 100
    result = grade_submission(path, FAST, items=[HONEST], audit_hooks=False)
    assert result.items[0].passed
    assert any("more than" in note for note in result.items[0].notes)


def test_an_honest_slow_import_loses_no_item(tmp_path):
    """Every item's whole start was once charged to one start budget: a package importing in
    1.2 s lost its fourth item to a 5 s start limit, each import being far within it."""
    path = make_submission(tmp_path, "", at_import="import time\ntime.sleep(1.2)\n")
    rubric = rubric_from_dict({"max_examples": 2, "limits": dict(LIMITS, start_seconds=5)})
    result = grade_submission(path, rubric, items=["rnn_forward", "gru_forward", HONEST,
                                                   "lstm_forward", "rnn_backward"],
                              audit_hooks=False)
    assert [item.passed for item in result.items] == [True] * 5, [
        item.failure.problem for item in result.items if item.failure]


# -- a table of answers to the cases -----------------------------------------------------------
def _drawn_cases(course_seed: int) -> list:
    from dataclasses import replace

    from parity.grading.grade import MIN_SECRET_CASES, run_item
    from parity.grading.items import ITEMS_BY_ID

    seen: list = []
    item = replace(ITEMS_BY_ID["rnn_forward"], check=lambda child, case, s: seen.append(case))
    public = len(item.pinned)  # then drawn ones, up to 10 in all, and 5 at the least
    assert run_item(item, None, session.Limits(), 10, course_seed) == (
        None, public + max(10 - public, MIN_SECRET_CASES))
    return seen


def test_the_course_seed_decides_the_cases_and_the_bundle_draws_a_secret_one(tmp_path):
    assert _drawn_cases(0) == _drawn_cases(0)  # the same for every submission...
    assert _drawn_cases(0) != _drawn_cases(12345)  # ...and another course's are others
    import zipfile

    from parity.grading.gradescope import write_bundle
    with zipfile.ZipFile(write_bundle(tmp_path / "a.zip")) as bundle:
        seed = json.loads(bundle.read("rubric.json"))["seed"]
    assert seed != 0 and rubric_from_dict({"seed": seed}).seed == seed
    with pytest.raises(ValueError, match="seed must be an int"):
        rubric_from_dict({"seed": -1})


def test_memory_files_are_refused(tmp_path):
    # memfd pages are not in the address space, so RLIMIT_AS would not hold them: the filter
    # refuses them, as it refuses every new file
    body = """
    import os
    fds = []
    try:
        while len(fds) < 1000:
            fds.append(os.memfd_create("hoard"))
    except OSError as error:
        refused = type(error).__name__
    for fd in fds:
        os.close(fd)
    raise RuntimeError(f"memfds={len(fds)} {refused}")
    """
    text = assert_contained(make_submission(tmp_path, body), "memfds=")
    assert "memfds=0 PermissionError" in text, text


def test_an_exceptions_frames_cannot_forge_report_lines_or_swell_it():
    """A child describes its exception itself: a function name (or path, or source line) with
    newlines would write lines of its own into the report (a forged "pass"), and a line number
    has no length of its own. Names come back on one line; an absurd line number drops its
    frame."""
    forged = "_f\n\n  pass  RNN cell forward   4 / 4"
    error = protocol.clean_error({
        "type": "ValueError", "message": "see below",
        "frames": [["scratch/__init__.py", 3, forged, "raise\nValueError"],
                   ["scratch/__init__.py", int("9" * 4000), "g", "x"]]})
    assert len(error["frames"]) == 1
    path, line, name, text = error["frames"][0]
    assert "\n" not in name + text + path and line == 3
    assert "\n" not in calls.describe_error(error, "rnn_cell_forward")[1]
