"""The grader in a real Docker container, as Gradescope and PrairieLearn run it.

``make container-test`` runs this with the project's virtual environment. It

1. installs Docker (Debian's ``docker.io``) and ``debootstrap`` with apt where they are
   missing, and starts ``dockerd`` where no daemon answers; where Docker cannot start, it
   fails and says why (it never skips);
2. builds a base image from a ``debootstrap --variant=minbase`` root filesystem of the suite and
   mirror this machine's apt uses (no registry image is reachable here), kept between runs
   under a tag named after the suite and a hash of what went into it;
3. builds the Gradescope bundle (``python -m parity gradescope-bundle``) into an image the way
   Gradescope's documented Dockerfile does (container/Dockerfile.gradescope): ``setup.sh`` at
   build time, ``run_autograder`` per submission;
4. runs ``/autograder/run_autograder`` in a fresh container per submission, first with
   Docker's defaults (root inside, the default seccomp profile and capabilities), then with
   ``--security-opt seccomp=unconfined --security-opt systempaths=unconfined``, and checks
   what each submission scores: the reference full marks, the skeleton 0, the skeleton with
   the four RNN cell functions written exactly those items' points, and every attack class of
   tests/test_grading_attacks.py (each a submission built here on the skeleton) 0, while the
   reference graded beside the attacks in one ``grade-all`` keeps full marks; results.json is
   read again 15 s after its container exited and must be unchanged;
5. builds the image of the question ``prairielearn-bundle`` writes and runs its entrypoint
   in PrairieLearn's layout (``/grade/tests``, ``/grade/student``,
   ``/grade/results/results.json``, no network), checking results.json against
   PrairieLearn's documented fields;
6. runs both platforms in a container no wall can start in (``--cap-drop ALL``): nothing is
   graded, and the student reads that the fault is not theirs.

It prints one line per scenario and ``N passed, N failed``, and exits 1 on any failure (2 when
Docker itself could not be brought up).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

HERE = ROOT / "container"
WORK = ROOT / "build" / "container"  # the bundle, the build context, logs (build/ is ignored)
DOCKERD_LOG = Path("/var/log/rnn-parity-dockerd.log")
BASE_REPO = "rnn-parity-base"
BUNDLE_REPO = "rnn-parity-gradescope"
BASE_PACKAGES = ("python3",)  # Gradescope's base images come with Python; setup.sh adds the rest
# The machine's trusted certificates go into the base image, and pip is told to use them: where
# a proxy of this network signs the package index's certificates, pip in the image (which
# otherwise trusts only its own bundle) reaches PyPI as the machine's own pip does.
# (A path of its own: the image's ca-certificates package rewrites its own bundle.)
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_IN_IMAGE = Path("/etc/ssl/machine-ca-certificates.crt")
REFERENCE_IN_IMAGE = "/autograder/source/scratch"
RESULTS_RECHECK_SECONDS = 15
# A container no wall can start in (root with every capability dropped: no uid to drop to, no
# namespace): an autograder fault, which must never read as the student's
MISCONFIGURED = ("--cap-drop", "ALL")
FAULT = "This is not your fault"
PARALLEL = 2  # containers at once: each grades one child at a time
# graded together in one grade-all: the honest ones beside the attacks on other processes,
# shared files and the grader's time, which must keep every point they earn
BESIDE = ("reference", "rnn-cells-only", "kill-other-processes", "outlive-the-grader",
          "write-outside", "memfd-hoard", "read-reference")
RUN_TIMEOUT = 600  # one container; the grader's own limits end a hostile one far sooner
SINGLE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# (flags, the wall that must grade there: the strongest that starts)
CONFIGS = {
    # Docker's defaults: root inside, the default seccomp profile and capabilities
    "defaults": ([], "uid"),
    "unconfined": (["--security-opt", "seccomp=unconfined",
                    "--security-opt", "systempaths=unconfined"], "bwrap-userns"),
}


class DockerUnavailable(RuntimeError):
    """Docker could not be installed or started: nothing can be proven here."""


def say(text: str) -> None:
    print(text, flush=True)


def run(argv: list[str], *, timeout: float | None = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)


# -- Docker itself -------------------------------------------------------------------------------
def ensure_packages() -> None:
    """docker.io and debootstrap, from the machine's apt, where a command of theirs is missing."""
    wanted = {"docker.io": ("docker", "dockerd"), "debootstrap": ("debootstrap",)}
    missing = [pkg for pkg, commands in wanted.items()
               if not all(shutil.which(c) for c in commands)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise DockerUnavailable(f"{', '.join(missing)} missing, and installing needs root and "
                                f"apt-get: apt-get install {' '.join(missing)}")
    say(f"installing {', '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
        done = run(argv, env=env, timeout=900)
        if done.returncode != 0:
            raise DockerUnavailable(f"{' '.join(argv)} failed: {done.stderr.strip()[-800:]}")


def docker_answers() -> bool:
    try:
        return run(["docker", "info"], timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_daemon(wait: float = 90) -> None:
    """A daemon that answers: the one running, or a dockerd started here in the background."""
    if docker_answers():
        return
    say(f"starting dockerd (log: {DOCKERD_LOG})")
    with open(DOCKERD_LOG, "ab") as log:
        daemon = subprocess.Popen(["dockerd"], stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if docker_answers():
            return
        if daemon.poll() is not None:
            break
        time.sleep(1)
    tail = DOCKERD_LOG.read_text(errors="replace")[-1500:] if DOCKERD_LOG.exists() else ""
    state = (f"exited with status {daemon.returncode}" if daemon.poll() is not None
             else f"did not answer within {wait:g} s")
    raise DockerUnavailable(f"dockerd {state}; the end of {DOCKERD_LOG}:\n{tail}")


def image_exists(name: str) -> bool:
    return run(["docker", "image", "inspect", name], timeout=60).returncode == 0


# -- the base image: debootstrap of the machine's own archive ------------------------------------
def apt_archive() -> tuple[str, str]:
    """(mirror, suite) of the first ``deb`` source this machine's apt uses."""
    entries: list[tuple[str, str]] = []
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.+)$", stanza, re.M))
            if "deb" in fields.get("Types", "").split() and "URIs" in fields:
                entries.append((fields["URIs"].split()[0], fields["Suites"].split()[0]))
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], words[2]))
    # the main archive, not security or updates (whose suite names carry a dash)
    plain = [entry for entry in entries if "-" not in entry[1]]
    if not plain:
        raise DockerUnavailable("no Debian archive found in /etc/apt/sources.list{,.d} to "
                                "debootstrap the base image from")
    return plain[0]


def base_image() -> str:
    mirror, suite = apt_archive()
    certificates = CA_BUNDLE.read_bytes() if CA_BUNDLE.is_file() else b""
    recipe = json.dumps([mirror, suite, "minbase", BASE_PACKAGES, str(CA_IN_IMAGE),
                         hashlib.sha256(certificates).hexdigest()])
    name = f"{BASE_REPO}:{suite}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
    if image_exists(name):
        return name
    say(f"building {name}: debootstrap --variant=minbase {suite} from {mirror}")
    with tempfile.TemporaryDirectory(prefix="rnn-parity-rootfs-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "root"
        done = run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                    suite, str(rootfs), mirror], timeout=900)
        if done.returncode != 0:
            raise DockerUnavailable(f"debootstrap failed: {(done.stdout + done.stderr)[-1500:]}")
        changes = []
        if certificates:
            (rootfs / CA_IN_IMAGE.relative_to("/")).parent.mkdir(parents=True, exist_ok=True)
            (rootfs / CA_IN_IMAGE.relative_to("/")).write_bytes(certificates)
            changes = ["-c", f"ENV PIP_CERT={CA_IN_IMAGE}"]
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(["docker", "import", *changes, "-", name], stdin=tar.stdout,
                                  capture_output=True, text=True, timeout=600)
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise DockerUnavailable(f"docker import of the root filesystem failed: "
                                    f"{imported.stderr.strip()}")
    return name


# -- the Gradescope image ----------------------------------------------------------------------
def code_seed() -> int:
    """A rubric seed fixed by the code: the same bundle for the same code, so that a re-run
    reuses every cached layer (the bundle command would draw a fresh secret seed each time)."""
    digest = hashlib.sha256()
    for package in ("scratch", "parity"):
        for path in sorted((ROOT / package).rglob("*.py")):
            digest.update(path.relative_to(ROOT).as_posix().encode() + path.read_bytes())
    return int.from_bytes(digest.digest()[:4], "big") | 1


def bundle_image(base: str) -> tuple[str, dict]:
    """(image name, the bundle's rubric) of the bundle built from this checkout."""
    WORK.mkdir(parents=True, exist_ok=True)
    rubric_file = WORK / "rubric.json"
    rubric_file.write_text(json.dumps({"seed": code_seed()}) + "\n")
    bundle = WORK / "autograder.zip"
    done = run([sys.executable, "-m", "parity", "gradescope-bundle", str(bundle),
                "--rubric", str(rubric_file)], cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"gradescope-bundle failed: {done.stderr.strip()}")
    context = WORK / "context"
    shutil.rmtree(context, ignore_errors=True)
    (context / "source").mkdir(parents=True)
    shutil.copy(HERE / "Dockerfile.gradescope", context / "Dockerfile")
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(context / "source")
        rubric = json.loads(archive.read("rubric.json"))
    recipe = bundle.read_bytes() + (HERE / "Dockerfile.gradescope").read_bytes() + base.encode()
    name = f"{BUNDLE_REPO}:{hashlib.sha256(recipe).hexdigest()[:12]}"
    if image_exists(name):
        return name, rubric
    say(f"building {name} from the bundle (log: {WORK / 'build.log'})")
    repo, tag = base.split(":")
    built = run(["docker", "build", "--build-arg", f"BASE_REPO={repo}", "--build-arg",
                 f"TAG={tag}", "-t", name, str(context)],
                env=dict(os.environ, DOCKER_BUILDKIT="0"), timeout=900)
    (WORK / "build.log").write_text(built.stdout + built.stderr)
    if built.returncode != 0:
        raise RuntimeError("the image build failed (setup.sh refuses the image, as Gradescope "
                           f"would show the instructor): {(built.stdout + built.stderr)[-1500:]}")
    return name, rubric


# -- submissions -------------------------------------------------------------------------------
CELL_FUNCTIONS = ("rnn_step_forward", "rnn_step_backward", "rnn_cell_forward",
                  "rnn_cell_backward")

# The four RNN cell functions as a student writes them, appended to the skeleton's rnn_cell.py
# (the later definitions are the ones the package exports).
PLAIN_RNN_CELL = '''

def rnn_step_forward(x_proj, h_prev, W_hh, b_hh, nonlinearity="tanh"):
    pre = x_proj + h_prev @ W_hh.T
    if b_hh is not None:
        pre = pre + b_hh
    h = np.tanh(pre) if nonlinearity == "tanh" else np.maximum(pre, 0.0)
    return h, RNNStepCache(h_prev, h, nonlinearity)


def rnn_step_backward(dh, cache, W_hh):
    h_prev, h, nonlinearity = cache
    dpre = dh * (1.0 - h * h) if nonlinearity == "tanh" else dh * (h > 0)
    return RNNStepGrads(dpre, dpre @ W_hh)


def rnn_cell_forward(x, h_prev, W_ih, W_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    x_proj = x @ W_ih.T
    if b_ih is not None:
        x_proj = x_proj + b_ih
    h, step = rnn_step_forward(x_proj, h_prev, W_hh, b_hh, nonlinearity)
    return h, RNNCellCache(x, W_ih, W_hh, b_ih is not None, step)


def rnn_cell_backward(dh, cache):
    x, W_ih, W_hh, has_bias, step = cache
    dpre, dh_prev = rnn_step_backward(dh, step, W_hh)
    db = dpre.sum(axis=0) if has_bias else None
    return RNNCellGrads(dpre @ W_ih, dh_prev, dpre.T @ x, dpre.T @ step.h_prev, db,
                        None if db is None else db.copy())
'''

# Reads the reference's rnn_cell.py inside the image three ways (a path that changes between
# check and open, a relative path from an fd of "/", a plain open) and runs it in place of the
# module: both RNN cell items would pass if any read got through.
STEAL_REFERENCE = f'''

def _steal():
    import io
    import os
    target = "{REFERENCE_IN_IMAGE}/functional/rnn_cell.py"

    class Shifty:
        calls = 0

        def __fspath__(self):
            Shifty.calls += 1
            return "harmless.txt" if Shifty.calls == 1 else target

    def with_dir_fd():
        fd = os.open("/", os.O_RDONLY)
        return os.read(os.open(target.lstrip("/"), os.O_RDONLY, dir_fd=fd), 1 << 20)

    for attempt in (lambda: io.FileIO(Shifty()).read(), with_dir_fd,
                    lambda: open(target, "rb").read()):
        try:
            source = attempt()
        except OSError:
            continue
        exec(compile(source, "reference", "exec"), globals())
        return


_steal()
'''

# A process that leaves the child's session and, for a minute, writes full marks over
# results.json ten times a second: if it outlived the grader, the platform would read its score.
OUTLIVE = """
import os, time
try:
    if os.fork() == 0:
        os.setsid()
        for _ in range(600):
            for path in ("/autograder/results/results.json", "/grade/results/results.json"):
                try:
                    with open(path, "w") as handle:
                        handle.write('{"score": 100, "gradable": true, "tests": []}')
                except OSError:
                    pass
            time.sleep(0.1)
        os._exit(0)
except OSError:
    pass
"""

WRITE_OUTSIDE = """
import os
for path in ("/tmp/rnn-parity-attack", "/var/tmp/rnn-parity-attack",
             "/dev/shm/rnn-parity-attack", "/rnn-parity-attack",
             "/autograder/results/results.json", "/autograder/source/scratch/__init__.py"):
    try:
        with open(path, "w") as handle:
            handle.write("forged")
    except OSError:
        pass
"""

# what the grader's machine shows a child: the rubric's seed must never reach the feedback
READ_SECRETS = """
seen = []
for path in ("/autograder/source/rubric.json", "/proc/1/environ", "/proc/1/cmdline",
             "/etc/shadow"):
    try:
        seen.append(open(path, "rb").read()[:300].decode(errors="replace"))
    except OSError as error:
        seen.append(type(error).__name__)
raise RuntimeError(" | ".join(seen))
"""

STOP_READING = """
import json, os, struct, sys, time
fd = json.loads(sys.argv[1])["write_fd"]
doc = json.dumps({"op": "oracle", "name": "nope", "value": None, "$n": 0}).encode()
os.write(fd, (struct.pack(">Q", len(doc)) + doc) * 2000)
time.sleep(3600)
"""

MEMFD_HOARD = """
import os
fds = []
try:
    while len(fds) < 1000:
        fds.append(os.memfd_create("hoard"))
except OSError:
    pass
raise RuntimeError(f"memfds={len(fds)}")
"""

SIGNATURE = 'def rnn_step_forward(x_proj, h_prev, W_hh, b_hh, nonlinearity="tanh", **kw):\n'


def skeleton_submission(out: Path, *, body: str = "", at_import: str = "",
                        module_tail: str = "") -> Path:
    """The skeleton, with rnn_step_forward replaced by ``body``, ``at_import`` run when the
    package is imported and ``module_tail`` appended to functional/rnn_cell.py."""
    from parity.grading.skeleton import write_skeleton

    write_skeleton(out)
    cell = out / "scratch" / "functional" / "rnn_cell.py"
    with open(cell, "a") as handle:
        handle.write(module_tail)
        if body:
            handle.write("\n\n" + SIGNATURE + textwrap.indent(textwrap.dedent(body), "    "))
    if at_import:
        with open(out / "scratch" / "__init__.py", "a") as handle:
            handle.write("\n" + textwrap.dedent(at_import))
    return out


def reference_submission(out: Path) -> Path:
    shutil.copytree(ROOT / "scratch", out / "scratch",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return out


def attack_submissions(out: Path) -> dict[str, Path]:
    """One submission per attack class of tests/test_grading_attacks.py that a submission can
    carry, each on the skeleton: whatever it scores, it did not earn."""
    import test_grading_attacks as attacks

    from parity.grading import submission

    made: dict[str, Path] = {}

    def add(name: str, **kwargs) -> Path:
        made[name] = skeleton_submission(out / name, **kwargs)
        return made[name]

    # one variant of each class here (the tests run every variant behind both walls)
    add("forged-runner", at_import="import __main__\nR = __main__.Runner\n"
                                   f"{attacks.FORGERIES['too many answers']}\n")
    add("read-reference", module_tail=STEAL_REFERENCE)
    linked = add("symlinked-package")
    shutil.rmtree(linked / "scratch")
    (linked / "scratch").symlink_to(REFERENCE_IN_IMAGE)
    inner = add("symlink-inside-package")
    shutil.rmtree(inner / "scratch" / "functional")
    (inner / "scratch" / "functional").symlink_to(REFERENCE_IN_IMAGE + "/functional")
    add("kill-other-processes", at_import=attacks.KILLER)
    add("outlive-the-grader", at_import=OUTLIVE)
    add("malformed-message", body=attacks.MESSAGES["24 arrays of 4 MiB"])
    add("stop-reading", body=STOP_READING)
    add("write-outside", at_import=WRITE_OUTSIDE)
    add("read-secrets", body=READ_SECRETS)
    add("huge-feedback", body='raise RuntimeError("A" * 100000)\n')
    add("hang-at-import", at_import="while True:\n    pass\n")
    add("memfd-hoard", body=MEMFD_HOARD)
    device = add("device-node")
    os.mknod(device / "scratch" / "tape.py", 0o644 | 0o020000, os.makedev(1, 3))
    maze = add("directory-maze") / "scratch" / "zz"
    for i in range(submission.MAX_SOURCE_ENTRIES + 100):
        (maze / f"d{i:05d}").mkdir(parents=True)
    junk = add("many-files") / "scratch" / "junk"
    junk.mkdir()
    for i in range(3000):
        (junk / f"f{i:05d}.py").touch()
    return made


# -- runs and their checks -------------------------------------------------------------------
# run_autograder, then what a child may have left where other submissions' children would find
# it (files of another uid, or the attacks' own, in the shared temporary directories): nothing
AUTOGRADER = ("/autograder/run_autograder; status=$?; "
              "find /tmp /var/tmp /dev/shm /autograder/results -mindepth 1 "
              "\\( ! -user root -o -name 'rnn-parity-attack*' \\) "
              "-printf 'leftover: %u %p\\n' 2>/dev/null; exit $status")


@dataclass
class Run:
    """One container's run: what it wrote, and when it exited."""
    results: Path
    status: int
    output: str
    seconds: float
    exited: float = field(default_factory=time.monotonic)
    text: str | None = None  # results.json as it was when the container exited

    def __post_init__(self) -> None:
        self.text = self.results.read_text() if self.results.is_file() else None

    def json(self) -> dict | None:
        try:
            return json.loads(self.text) if self.text is not None else None
        except ValueError:
            return None

    def leftovers(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.startswith("leftover: ")]


RUN_NUMBERS = itertools.count(1)  # one per container of this test, whatever its image


class Docker:
    """Containers of one image, each with its own name so that a stuck one can be killed."""

    def __init__(self, image: str, scratch_dir: Path) -> None:
        self.image = image
        self.scratch_dir = scratch_dir

    def run(self, flags: list[str], mounts: dict[Path, str], command: str,
            results_at: str = "/autograder/results") -> Run:
        """``bash -c command`` in a fresh container; a new directory of this machine is
        mounted at ``results_at``."""
        number = next(RUN_NUMBERS)
        name = f"rnn-parity-test-{os.getpid()}-{number}"
        results = self.scratch_dir / f"results-{number}"
        results.mkdir()
        mounts = {**mounts, results: results_at}
        volumes = [arg for src, dest in mounts.items() for arg in ("-v", f"{src}:{dest}")]
        env = [arg for key, value in SINGLE_THREAD.items() for arg in ("-e", f"{key}={value}")]
        argv = ["docker", "run", "--rm", "--name", name, *flags, *env, *volumes, self.image,
                "bash", "-c", command]
        start = time.monotonic()
        try:
            done = run(argv, timeout=RUN_TIMEOUT)
            status, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired:
            run(["docker", "kill", name], timeout=60)
            status, output = -1, f"killed after {RUN_TIMEOUT} s"
        return Run(results / "results.json", status, output, time.monotonic() - start)


@dataclass
class Tally:
    """Passes and failures, one line each, and the results.json files to read again."""

    passed: int = 0
    failed: int = 0
    rechecks: list[tuple[str, Run]] = field(default_factory=list)

    def record(self, label: str, problems: list[str], detail: str) -> None:
        ok = not problems
        self.passed += ok
        self.failed += not ok
        say(f"{'PASS' if ok else 'FAIL'}  {label:<48} {detail}")
        for problem in problems:
            say(f"        {problem}")


def wall_of(docker: Docker, flags: list[str]) -> tuple[str | None, str]:
    """(the name of the wall wall-check finds, or None, and what it said)."""
    check = docker.run(flags, {}, "cd /autograder/source && "
                              "/autograder/venv/bin/python -m parity.grading wall-check")
    said = check.output.strip()
    match = re.search(r"\bok: .*?\bwall ([\w-]+):", said)
    return (match.group(1) if match else None), said


def check_gradescope(tally: Tally, label: str, done: Run, expected: float, max_score: float,
                     wall: str, seed: int) -> None:
    """The score, the wall named, no seed, nothing left behind, and run_autograder's status
    (0 whenever it graded; a refusal or a failed pre-flight exits non-zero)."""
    problems: list[str] = []
    results = done.json()
    if results is None:
        problems.append(f"no readable results.json (run_autograder exited {done.status}): "
                        f"{done.output.strip()[-600:]}")
        tally.record(label, problems, f"({done.seconds:.1f} s)")
        return
    score = results.get("score")
    if not isinstance(score, (int, float)) or abs(score - expected) > 1e-9:
        said = str(results.get("output", ""))[:300].replace("\n", " / ")
        problems.append(f"scored {score}, expected {expected:g} (exit {done.status}): {said}")
    if done.status != 0:
        problems.append(f"run_autograder exited {done.status}")
    if f"wall {wall}:" not in str(results.get("output", "")):
        problems.append(f"results.json does not say that the {wall} wall graded")
    if str(seed) in done.text:
        problems.append("the rubric's secret seed is in results.json")
    problems += done.leftovers()
    tally.rechecks.append((label, done))
    tally.record(label, problems, f"{score}/{max_score:g} (expected {expected:g}, "
                                  f"{done.seconds:.1f} s)")


def check_fault(tally: Tally, label: str, done: Run) -> None:
    """Where the machine is at fault: nothing graded, results.json says the student is not at
    fault, and run_autograder exits non-zero."""
    results = done.json()
    if results is None:
        tally.record(label, [f"no readable results.json (run_autograder exited {done.status}): "
                             f"{done.output.strip()[-600:]}"], f"({done.seconds:.1f} s)")
        return
    problems = []
    if results.get("score") != 0 or results.get("tests"):
        problems.append(f"graded: score {results.get('score')}")
    if FAULT not in str(results.get("output")):
        problems.append(f"does not say the student is not at fault: "
                        f"{str(results.get('output'))[:300]}")
    if done.status == 0:
        problems.append("run_autograder exited 0")
    tally.rechecks.append((label, done))
    tally.record(label, problems, f"score {results.get('score')}, exit {done.status} "
                                  f"({done.seconds:.1f} s)")


def recheck(tally: Tally) -> None:
    """results.json again, at least 15 s after each container exited: nothing may change."""
    if not tally.rechecks:
        return
    latest = max(done.exited for _, done in tally.rechecks)
    time.sleep(max(0.0, latest + RESULTS_RECHECK_SECONDS - time.monotonic()))
    changed = [label for label, done in tally.rechecks
               if (done.results.read_text() if done.results.is_file() else None) != done.text]
    tally.record(f"results.json {RESULTS_RECHECK_SECONDS} s after exit",
                 [f"changed: {label}" for label in changed],
                 f"{len(tally.rechecks) - len(changed)} of {len(tally.rechecks)} unchanged")


def check_grade_all(tally: Tally, docker: Docker, config: str, flags: list[str],
                    submissions: Path, expected: dict[str, float], max_score: float,
                    tmp: Path) -> None:
    """Every submission in one grade-all, two at a time: the honest ones keep their points
    beside the attacks."""
    book_dir = tmp / f"gradebook-{config}"
    book_dir.mkdir(mode=0o700)
    done = docker.run(flags, {submissions: "/submissions", book_dir: "/gradebook"},
                      "cd /autograder/source && /autograder/venv/bin/python -m parity.grading "
                      "grade-all /submissions --out /gradebook "
                      "--rubric /autograder/source/rubric.json")
    label = f"{config}: grade-all of {len(expected)}, honest beside hostile"
    try:
        book = json.loads((book_dir / "gradebook.json").read_text())["submissions"]
    except (OSError, ValueError, KeyError):
        tally.record(label, [f"no gradebook (exit {done.status}): {done.output.strip()[-600:]}"],
                     f"({done.seconds:.1f} s)")
        return
    problems = []
    for name, points in expected.items():
        score = book.get(name, {}).get("score")
        if not isinstance(score, (int, float)) or abs(score - points) > 1e-9:
            problems.append(f"{name}: scored {score}, expected {points:g}")
    tally.record(label, problems, f"reference {book.get('reference', {}).get('score')}/"
                                  f"{max_score:g}; {len(expected) - len(problems)} of "
                                  f"{len(expected)} as expected ({done.seconds:.1f} s)")


# -- PrairieLearn ------------------------------------------------------------------------------
def prairielearn_image(base: str) -> tuple[str, Path]:
    """(the question's grading image, the question directory) from ``prairielearn-bundle``:
    its image/Dockerfile built on the base image in place of its registry base."""
    question = WORK / "prairielearn-question"
    shutil.rmtree(question, ignore_errors=True)
    done = run([sys.executable, "-m", "parity", "prairielearn-bundle", str(question)], cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"prairielearn-bundle failed: {done.stderr.strip()}")
    dockerfile = question / "image" / "Dockerfile"
    text = re.sub(r"^FROM .*$", f"FROM {base}", dockerfile.read_text(), count=1, flags=re.M)
    dockerfile.write_text(text)
    name = f"rnn-parity-prairielearn:{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    if not image_exists(name):
        say(f"building {name} from the question's image/Dockerfile")
        built = run(["docker", "build", "-t", name, str(dockerfile.parent)],
                    env=dict(os.environ, DOCKER_BUILDKIT="0"), timeout=900)
        if built.returncode != 0:
            raise RuntimeError(f"the question's image failed to build: "
                               f"{(built.stdout + built.stderr)[-1500:]}")
    return name, question


def uploads(package: Path, out: Path) -> Path:
    """What a student uploads to the question: the files with marked regions, by name."""
    out.mkdir(parents=True)
    for path in sorted((ROOT / "scratch").rglob("*.py")):
        if "### BEGIN SOLUTION" in path.read_text():
            shutil.copy(package / path.relative_to(ROOT / "scratch"), out / path.name)
    return out


KINDS = {bool: "true or false", str: "a string", Real: "a number"}


def prairielearn_problems(results: dict) -> list[str]:
    """Where results.json departs from PrairieLearn's documented external-grading fields."""
    problems = []

    def need(where: str, data: dict, key: str, kind: type) -> None:
        value = data.get(key)
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            problems.append(f"{where}{key} is {value!r}, not {KINDS[kind]}")

    need("", results, "gradable", bool)
    need("", results, "score", Real)
    if isinstance(results.get("score"), (int, float)) and not 0 <= results["score"] <= 1:
        problems.append(f"score {results['score']} is outside 0..1")
    need("", results, "message", str)
    need("", results, "output", str)
    tests = results.get("tests")
    if not isinstance(tests, list):
        return problems + [f"tests is {tests!r}, not a list"]
    for number, test in enumerate(tests):
        if not isinstance(test, dict):
            problems.append(f"tests[{number}] is not an object")
            continue
        for key in ("name", "description", "message", "output"):
            need(f"tests[{number}].", test, key, str)
        for key in ("points", "max_points"):
            need(f"tests[{number}].", test, key, Real)
    return problems


def check_prairielearn(tally: Tally, docker: Docker, label: str, question: Path,
                       student: Path, expected: float | None, tmp: Path,
                       flags: tuple[str, ...] = ()) -> None:
    """PrairieLearn's layout, its entrypoint and its default of no network: the question's
    tests/ at /grade/tests, the uploaded files at /grade/student, the grade in
    /grade/results/results.json. ``expected`` None: the machine is at fault, so the submission
    must be "not gradable" (no attempt charged), saying the student is not at fault."""
    tests = tmp / f"grade-tests-{next(RUN_NUMBERS)}"
    shutil.copytree(question / "tests", tests)
    done = docker.run(["--network", "none", *flags],
                      {tests: "/grade/tests", student: "/grade/student"},
                      "/grade/tests/run.sh", results_at="/grade/results")
    results = done.json()
    if results is None:
        usage = re.search(r"usage: .*", done.output)
        missing = usage is not None and "prairielearn" not in usage.group(0)
        why = ("python -m parity.grading has no prairielearn command" if missing
               else f"no readable /grade/results/results.json (exit {done.status})")
        tally.record(label, [f"{why}: {done.output.strip()[-600:]}"], f"({done.seconds:.1f} s)")
        return
    problems = prairielearn_problems(results)
    score = results.get("score")
    if expected is None:
        if results.get("gradable") is not False or FAULT not in str(results.get("message")):
            problems.append(f"not marked an autograder fault: gradable "
                            f"{results.get('gradable')}, {str(results.get('message'))[:300]}")
    elif results.get("gradable") is not True:
        problems.append(f"not gradable: {str(results.get('message'))[:300]}")
    elif not isinstance(score, (int, float)) or abs(score - expected) > 1e-9:
        problems.append(f"scored {score}, expected {expected:g}")
    tally.rechecks.append((label, done))
    want = "not gradable" if expected is None else f"{expected:g}"
    tally.record(label, problems, f"score {score}, gradable {results.get('gradable')} "
                                  f"(expected {want}, {done.seconds:.1f} s)")


# -- the whole test ----------------------------------------------------------------------------
def expected_points(rubric: dict) -> tuple[float, float]:
    """(full marks, the points of the items that grade the four RNN cell functions alone)."""
    from parity.grading.items import ITEMS

    weights = {name: entry["weight"] for name, entry in rubric["items"].items()}
    cells = sum(weights[item.spec.id] for item in ITEMS
                if {f.name for f in item.spec.grades} <= set(CELL_FUNCTIONS))
    return sum(weights.values()), cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS),
                        help="only this configuration (default: all, and PrairieLearn)")
    args = parser.parse_args(argv)
    configs = args.config or list(CONFIGS)
    start = time.monotonic()
    try:
        ensure_packages()
        ensure_daemon()
        base = base_image()
    except DockerUnavailable as error:
        say(f"FAIL  Docker could not be brought up, so nothing was proven: {error}")
        say("0 passed, 1 failed")
        return 2
    tally = Tally()
    try:
        image, rubric = bundle_image(base)
    except RuntimeError as error:
        tally.record("the Gradescope image builds", [str(error)], "")
        say(f"{tally.passed} passed, {tally.failed} failed")
        return 1
    tally.record("the Gradescope image builds", [], f"{image} on {base}")
    full, cells = expected_points(rubric)
    with tempfile.TemporaryDirectory(prefix="rnn-parity-container-", dir="/var/tmp") as name:
        tmp = Path(name)
        subs = tmp / "submissions"
        expected = {"reference": full, "skeleton": 0.0, "rnn-cells-only": cells}
        reference_submission(subs / "reference")
        skeleton_submission(subs / "skeleton")
        skeleton_submission(subs / "rnn-cells-only", module_tail=PLAIN_RNN_CELL)
        expected.update({attack: 0.0 for attack in attack_submissions(subs)})
        docker = Docker(image, tmp)
        for config in configs:
            flags, wall = CONFIGS[config]
            found, said = wall_of(docker, flags)
            tally.record(f"{config}: wall-check finds the {wall} wall",
                         [] if found == wall else [said[-600:]],
                         f"({' '.join(flags) or 'no extra flags'})")
            with ThreadPoolExecutor(PARALLEL) as pool:  # in order, PARALLEL containers at once
                runs = pool.map(lambda name, flags=flags: docker.run(
                    flags, {subs / name: "/autograder/submission"}, AUTOGRADER), expected)
                for (submission, points), done in zip(expected.items(), runs):
                    check_gradescope(tally, f"{config}: {submission}", done, points, full,
                                     wall, rubric["seed"])
            beside = tmp / f"beside-{config}"
            beside.mkdir(mode=0o700)  # root's alone: the uid wall refuses paths others may open
            for name in BESIDE:
                (subs / name).rename(beside / name)
            check_grade_all(tally, docker, config, flags, beside,
                            {name: expected[name] for name in BESIDE}, full, tmp)
            for name in BESIDE:
                (beside / name).rename(subs / name)
        if args.config is None:
            done = docker.run(list(MISCONFIGURED), {subs / "reference": "/autograder/submission"},
                              AUTOGRADER)
            check_fault(tally, "gradescope: misconfigured (--cap-drop ALL)", done)
            try:
                pl_image, question = prairielearn_image(base)
            except RuntimeError as error:
                tally.record("prairielearn: the question's image builds", [str(error)], "")
            else:
                pl = Docker(pl_image, tmp)
                for name, score in (("reference", 1.0), ("skeleton", 0.0)):
                    check_prairielearn(tally, pl, f"prairielearn: {name}", question,
                                       uploads(subs / name / "scratch", tmp / f"upload-{name}"),
                                       score, tmp)
                check_prairielearn(tally, pl, "prairielearn: misconfigured (--cap-drop ALL)",
                                   question, tmp / "upload-reference", None, tmp,
                                   MISCONFIGURED)
        recheck(tally)
    say(f"{tally.passed} passed, {tally.failed} failed "
        f"({time.monotonic() - start:.0f} s)")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
