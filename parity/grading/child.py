"""The runner inside a submission's child process.

The grader starts it as ``python -I -S -B _grading_child.py CONFIG`` inside the wall
(``session``): its file system holds the standard library, NumPy, this runner and a copy of the
submission, nothing else, and the kernel keeps it there. Before anything of the submission
runs, the runner

* sets its own resource limits (address space, CPU time, file size, one process; soft = hard,
  so the submission cannot raise them again),
* installs an audit hook (``sys.addaudithook``) that turns common mistakes into readable
  feedback: importing torch or the harness, starting or signalling a process, opening a
  socket. Each refusal is noted and travels to the grader with the next answer. The hook is
  not the wall (Python's audit hooks can be bypassed); the wall is.

Then it answers the grader's requests (see ``protocol``): import the submission, call one of
its functions, or drive one of its modules through forward and backward. Every answer holds
plain arrays only; the grader checks each answer's structure and compares it with the
reference itself, so nothing this process does (to NumPy, to this runner, to its answers)
earns what the submission's code did not compute.

Functions the item does not grade can be swapped for stubs that ask the grader, which runs the
reference there and sends back the arrays ("oracles"): a wrong step function then costs only
the items that grade step functions, not every item that runs a sequence.

Only the standard library is imported before the hook is in place; this file must not
import the harness.
"""

import json
import os
import sys

BLOCKED_IMPORTS = (
    "torch", "torchvision", "functorch", "torch_impl", "parity", "hypothesis", "scipy",
    "jax", "tensorflow", "_posixsubprocess", "subprocess", "multiprocessing",
    "_multiprocessing", "socket", "_socket", "pty", "ssl", "_ssl",
)
PROCESS_EVENTS = (
    "os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn",
    "os.kill", "os.killpg", "signal.pthread_kill", "subprocess.Popen", "os.startfile",
    "socket.__new__", "socket.connect", "socket.bind", "resource.setrlimit",
    "resource.prlimit", "os.setuid", "os.setgid",
)
NUMPY_WATCHED = (
    "allclose", "isclose", "array_equal", "array_equiv", "all", "any", "abs", "absolute",
    "max", "amax", "isfinite", "isnan", "subtract", "asarray", "save", "ascontiguousarray",
)
TESTING_WATCHED = (
    "assert_allclose", "assert_array_equal", "assert_array_almost_equal", "assert_equal",
    "assert_almost_equal", "assert_array_less",
)


def make_hook(notes):
    """The audit hook: refuses the listed imports and process events, with a note."""
    blocked, events = frozenset(BLOCKED_IMPORTS), frozenset(PROCESS_EVENTS)

    def refuse(what, error):
        if len(notes) < 50:
            notes.append("blocked: " + what)
        raise error

    def hook(event, args):
        if event == "import":
            top = str(args[0]).partition(".")[0]
            if top in blocked:
                refuse("import of " + top,
                       ImportError("importing " + top + " is not allowed while grading: a "
                                   "submission may use NumPy and the standard library, but "
                                   "not torch, the grader, processes or sockets (numpy.testing "
                                   "imports subprocess, so it is out too)"))
        elif event in events:
            refuse(event, PermissionError("grading wall: " + event + " is not allowed"))

    return hook


def set_limits(config):
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-size write fails, not kills
    limits = [
        (resource.RLIMIT_AS, config["memory_bytes"]),
        (resource.RLIMIT_CPU, config["cpu_seconds"]),
        (resource.RLIMIT_FSIZE, config["file_bytes"]),
        (resource.RLIMIT_CORE, 0),
        # few open files: memory files (memfd) are not in the address space, each is held to
        # the file-size limit, and this bounds how many
        (resource.RLIMIT_NOFILE, 32),
    ]
    if os.getuid() != 0:  # no new process or thread (root is exempt from this limit)
        limits.append((resource.RLIMIT_NPROC, 1))
    for which, value in limits:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))


class Runner:
    """Answers the grader's requests until told to stop or the channel closes."""

    def __init__(self, config, protocol, numpy, notes):
        self.config = config
        self.protocol = protocol
        self.np = numpy
        self.notes = notes
        self.submission_dir = os.path.realpath(config["submission_dir"])
        self.channel = protocol.Channel(config["read_fd"], config["write_fd"])
        self.import_error = None
        self.imported = False
        self.active = frozenset()  # the oracles the current request may use

    # -- the loop ------------------------------------------------------------------------------
    def serve(self):
        while True:
            try:
                message, value = self.channel.recv_value(resolve=self.resolve)
            except self.protocol.ChannelClosed:
                return
            op = message.get("op")
            if op == "exit":
                return
            handler = {"setup": self.setup, "call": self.call, "calls": self.calls,
                       "module": self.module}.get(op)
            if handler is None:
                self.answer(False, None, {"type": "ProtocolError", "message": f"unknown op {op}"})
                continue
            self.active = frozenset(message.get("oracles") or ())
            try:
                ok, result, error = handler(value)
            finally:
                self.active = frozenset()
            self.answer(ok, result, error)

    def answer(self, ok, value, error):
        self.check_numpy()
        header = {"op": "answer", "ok": ok, "error": error, "notes": list(self.notes)}
        del self.notes[:]
        try:
            self.channel.send_value(header, value)
        except self.protocol.ProtocolError as exc:
            header.update(ok=False, error=self.describe(exc, "answer"))
            self.channel.send_value(header, None)

    # -- requests ------------------------------------------------------------------------------
    def setup(self, value):
        """Import the submission's scratch package and swap the listed oracles in."""
        try:
            import scratch  # noqa: F401  (the submission's)

            self.imported = True
            for oracle in value.get("oracles", []):
                self.install_oracle(oracle)
        except BaseException as exc:  # SystemExit and friends included
            self.import_error = self.describe(exc, "import")
            return False, None, self.import_error
        return True, None, None

    def call(self, spec):
        if self.import_error is not None:
            return False, None, self.import_error
        try:
            result = apply(self.resolve_target(spec["target"]), spec)
            self.protocol.encode(result)  # refuse un-sendable results here, with a message
            return True, result, None
        except BaseException as exc:
            return False, None, self.describe(exc, spec["target"])

    def calls(self, specs):
        """Several calls, each answered on its own: [(ok, value, error), ...]."""
        return True, [self.call(spec) for spec in specs], None

    def module(self, spec):
        """Build a module, load its weights, run forward and then backward.

        Answers {"forward": (output, h_n), "backward": (grad_input, grad_hx), "grads": {...}}
        with what was reached; the error says where it stopped.
        """
        if self.import_error is not None:
            return False, None, self.import_error
        import scratch

        done = {}

        def keep(key, value):  # refuse un-sendable results here, with a message
            self.protocol.encode(value)
            done[key] = value

        def grads():
            return {name: module.grads[name].copy() for name in spec["state"]}

        stage = "constructor"
        try:
            module = apply(getattr(scratch, spec["cls"]), spec)
            stage = "load_state_dict"
            module.load_state_dict(spec["state"])
            module.train(spec.get("train", False))
            stage = "forward"
            keep("forward", apply(module.forward, spec["forward"]))
            if spec.get("backward") is not None:
                stage = "backward"
                keep("backward", apply(module.backward, spec["backward"]))
                stage = "grads"
                keep("grads", grads())
                if spec.get("twice"):  # again, without zero_grad: the gradients must add up
                    stage = "second forward"
                    apply(module.forward, spec["forward"])
                    stage = "second backward"
                    apply(module.backward, spec["backward"])
                    stage = "grads"
                    keep("grads_twice", grads())
            return True, done, None
        except BaseException as exc:
            return False, done, self.describe(exc, f"{spec['cls']}.{stage}")

    # -- oracles -------------------------------------------------------------------------------
    def install_oracle(self, oracle):
        """Put a stub in front of a function of the submission.

        oracle: {"name": "module:function"} for a function, or {"name": "module:Class.method",
        "method": True} for a method that adds into self._grads. The stub runs the
        submission's own function unless the current request lists the name among its
        oracles; then it asks the grader, which runs the reference.
        """
        name = oracle["name"]
        try:
            original = self.resolve_target(name)
        except Exception:
            self.notes.append(f"{name.replace(':', '.')} was not found")
            return
        module_name, _, qualname = name.partition(":")
        if oracle.get("method"):
            class_name, _, method = qualname.partition(".")
            cls = getattr(sys.modules[module_name], class_name)
            setattr(cls, method, self.method_stub(name, original))
            return
        stub = self.function_stub(name, original)
        for mod_name, mod in list(sys.modules.items()):
            if mod is None or not (mod_name == "scratch" or mod_name.startswith("scratch.")):
                continue
            for attr, value in list(vars(mod).items()):
                if value is original:
                    setattr(mod, attr, stub)

    def function_stub(self, name, original):
        def oracle(*args, **kwargs):
            if name not in self.active:
                return original(*args, **kwargs)
            return self.ask(name, {"args": args, "kwargs": kwargs})

        oracle.__name__ = oracle.__qualname__ = name.rpartition(":")[2]
        return oracle

    def method_stub(self, name, original):
        def oracle(module, *args, **kwargs):
            if name not in self.active:
                return original(module, *args, **kwargs)
            config = {key: getattr(module, key) for key in (
                "mode", "input_size", "hidden_size", "num_layers", "bias", "bidirectional",
                "proj_size")}
            deltas = self.ask(name, {"config": config, "args": args, "kwargs": kwargs})
            for key, delta in deltas.items():
                module._grads[key] += delta

        oracle.__name__ = oracle.__qualname__ = name.rpartition(".")[2]
        return oracle

    def ask(self, name, payload):
        self.channel.send_value({"op": "oracle", "name": name}, payload)
        message, value = self.channel.recv_value(resolve=self.resolve)
        if not message.get("ok"):
            raise RuntimeError(message.get("error") or "the grader could not answer")
        return value

    # -- helpers -------------------------------------------------------------------------------
    def resolve_target(self, target):
        import importlib

        module_name, _, qualname = target.partition(":")
        if not (module_name == "scratch" or module_name.startswith("scratch.")):
            raise ValueError(f"the grader may only call into scratch, not {module_name}")
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj

    def resolve(self, module_name, name, fields):
        """The submission's NamedTuple class of this name, if it still has these fields."""
        mod = sys.modules.get(module_name)
        if mod is None and self.imported and module_name.startswith("scratch."):
            try:
                import importlib

                mod = importlib.import_module(module_name)
            except Exception:
                mod = None
        cls = getattr(mod, name, None)
        if isinstance(cls, type) and tuple(getattr(cls, "_fields", ())) == fields:
            return cls
        if self.imported:
            found = tuple(getattr(cls, "_fields", ())) if cls is not None else None
            note = (f"{module_name}.{name} is missing" if cls is None else
                    f"{module_name}.{name} has fields {found}, expected {fields}")
            if note not in self.notes:
                self.notes.append(note + ": the grader used a plain namedtuple")
        return None

    def describe(self, exc, where):
        import traceback

        frames = []
        for frame in traceback.extract_tb(exc.__traceback__):
            path = os.path.realpath(frame.filename)
            if path.startswith(self.submission_dir + "/"):
                frames.append([os.path.relpath(path, self.submission_dir), frame.lineno,
                               frame.name, (frame.line or "")[:200]])
        if isinstance(exc, SystemExit):
            message = f"the submission called sys.exit({exc.code!r})"
        elif isinstance(exc, MemoryError):
            message = (f"out of memory (the limit is "
                       f"{self.config['memory_bytes'] >> 20} MiB)")
        else:
            message = str(exc)
        return {"type": type(exc).__name__, "message": message[:2000], "where": where,
                "frames": frames[-8:]}

    def check_numpy(self):
        """Note any NumPy function the submission replaced (it changes nothing graded)."""
        np = self.np
        watched = [(np, "numpy", NUMPY_WATCHED)]
        testing = sys.modules.get("numpy.testing")
        if testing is not None:
            watched.append((testing, "numpy.testing", TESTING_WATCHED))
        for module, prefix, names in watched:
            for name in names:
                value = getattr(module, name, None)
                origin = getattr(value, "__module__", None) or ""
                if value is not None and not origin.startswith("numpy"):
                    note = (f"the submission replaced {prefix}.{name}; results are compared "
                            "in the grader, so this changes nothing")
                    if note not in self.notes:
                        self.notes.append(note)


def apply(function, spec):
    """``function(*spec["args"], **spec["kwargs"])``, either absent meaning none."""
    return function(*spec.get("args", ()), **spec.get("kwargs", {}))


def run_child(config):
    """Become a child: limits, the hook, the submission on sys.path, then answer requests."""
    set_limits(config)
    notes = []
    os.chdir(config["work_dir"])
    if config.get("audit_hooks", True):
        sys.addaudithook(make_hook(notes))
    stdlib = [p for p in sys.path if p and os.path.realpath(p) != os.path.realpath(
        config["runner_dir"])]
    sys.path[:] = [config["runner_dir"], config["submission_dir"], *stdlib,
                   config["numpy_parent"]]
    sys.dont_write_bytecode = True

    import _grading_protocol as protocol
    import numpy

    runner = Runner(config, protocol, numpy, notes)
    # nothing of the submission has run yet: a child that dies before saying so died of the
    # grader's making (its runner, Python or NumPy out of reach), never of the student's
    runner.channel.send_value({"op": "ready"}, None)
    runner.serve()


def main():
    run_child(json.loads(sys.argv[1]))


if __name__ == "__main__":
    main()
