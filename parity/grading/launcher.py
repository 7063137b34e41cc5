"""The last trusted step before a child runs: its seccomp filter, its keyring, its uid.

The grader runs this file as root, with a Python that has libseccomp's bindings (Debian's and
Ubuntu's ``python3-seccomp``, for the system ``python3``), as ``python3 -I -B launcher.py
CONFIG``. It imports the standard library and ``seccomp`` only, and never the harness: it
is the pre-exec step of every wall, and ends in ``execve`` of what the config names. (The
grader imports ``processes_of`` from it, with a Python that may lack ``seccomp``: that is
imported where the filter and the keyring need it.)

The filter is built here, with libseccomp, and nowhere else (``build_filter``). It refuses,
with EPERM, the system calls of ``DENIED`` and ``CREATING`` below, each group with the reason
it is there; ``clone`` with any namespace flag; ``fcntl``'s lock, lease and notify commands;
``open``/``openat`` with ``O_CREAT`` or ``O_TMPFILE``. ``clone3`` and ``openat2`` answer ENOSYS:
their flags lie behind a pointer the filter cannot read, and the C library then falls back to
``clone`` and ``openat``, whose flags it can.

Everything else is allowed: the runner and NumPy need files, memory, threads of the BLAS (held
to one by the environment and RLIMIT_NPROC) and signals to themselves. A system call that this
libseccomp does not know by name cannot be listed, and is allowed; the walls' other layers
(namespaces or a uid of the child's own, rlimits) do not rely on the filter.

Modes (``CONFIG`` is a JSON object, ``mode`` one of):

* ``bwrap``: join a fresh session keyring, then exec bubblewrap with its arguments passed
  through a memory file (``--args``: the wall's first process shows no host path in its
  command line) and the filter as compiled BPF (``--seccomp``); with ``uid``, become that uid
  first (bubblewrap then makes a user namespace of its own);
* ``uid``: join a fresh session keyring, clear the supplementary groups, become ``uid``/``gid``
  (which clears every capability), empty the bounding and ambient sets, ask to be killed with
  the grader (``PR_SET_PDEATHSIG``), set no_new_privs and a umask of 077, load the filter,
  change to the work directory and exec the child;
* ``reap``: become ``uid`` and send SIGKILL to every process of that uid (``kill(-1)``),
  again until none is left;
* ``print-filter``: write the filter in libseccomp's pseudo-code to stdout (for the docs and
  the tests).
"""

import ctypes
import errno
import json
import os
import signal
import sys
import time

DENIED = (
    # sockets: no network and no local socket, abstract or not
    "socket", "socketpair",
    # other processes' memory and files
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    # the keyrings
    "add_key", "keyctl", "request_key",
    # mounts and namespaces (clone is filtered by its flags below)
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "open_tree", "move_mount",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # System V IPC and POSIX message queues: memory that no rlimit counts, and channels
    # between children that share an IPC namespace
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
    "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend",
    "mq_timedreceive", "mq_notify", "mq_getsetattr",
    # locks, and watching or evicting shared files: channels between children that read the
    # same files at once
    "flock", "inotify_init", "inotify_init1", "inotify_add_watch", "fanotify_init",
    "fanotify_mark", "mincore", "fadvise64", "readahead", "cachestat",
    # memory no rlimit counts: a memory file's pages lie outside the address space
    "memfd_create", "memfd_secret",
    # kernel interfaces a child never needs
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "acct", "swapon", "swapoff", "reboot",
)
# clone's namespace flags: CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET,
# NEWTIME
NAMESPACE_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
                   | 0x20000000 | 0x40000000 | 0x00000080)
# fcntl commands: F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW,
# F_SETLEASE, F_GETLEASE, F_NOTIFY
FCNTL_DENIED = (5, 6, 7, 36, 37, 38, 1024, 1025, 1026)

# a child makes nothing on any file system: no file that outlives it (the uid wall shares the
# machine's), no name another child could read, no tmpfs inode that no rlimit counts
# (bubblewrap's tmpfs mounts count bytes, not inodes). The runner and NumPy write no file:
# then every byte a child holds is in its address space, which RLIMIT_AS bounds
CREATING = ("creat", "mkdir", "mkdirat", "mknod", "mknodat", "link", "linkat", "symlink",
            "symlinkat", "rename", "renameat", "renameat2")
O_CREAT, O_TMPFILE = 0o100, 0o20000000  # O_TMPFILE's own bit (it also sets O_DIRECTORY)

KEYCTL_JOIN_SESSION_KEYRING = 1
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_PDEATHSIG = 38, 24, 1
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4


def build_filter():
    """The child's seccomp filter (see the module's docstring)."""
    import seccomp

    deny = seccomp.ERRNO(errno.EPERM)
    scf = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED + CREATING:
        _add_known(scf, deny, name)
    for bit in _bits(NAMESPACE_FLAGS):
        scf.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, bit, bit))
    _add_known(scf, seccomp.ERRNO(errno.ENOSYS), "clone3")
    for name in ("fcntl", "fcntl64"):
        for command in FCNTL_DENIED:
            # the kernel reads the command as 32 bits: compare those alone, so that a
            # command with higher bits set is refused too
            _add_known(scf, deny, name, seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, command))
    for name, flags in (("open", 1), ("openat", 2)):
        for bit in (O_CREAT, O_TMPFILE):
            scf.add_rule(deny, name, seccomp.Arg(flags, seccomp.MASKED_EQ, bit, bit))
    _add_known(scf, seccomp.ERRNO(errno.ENOSYS), "openat2")
    return scf


def _add_known(scf, action, name, *args):
    """A rule for a system call this libseccomp knows by name (one it does not, it cannot
    list)."""
    try:
        scf.add_rule(action, name, *args)
    except (RuntimeError, ValueError):
        pass


def _bits(mask):
    return [1 << i for i in range(64) if mask >> i & 1]


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.restype = ctypes.c_int
    return libc


def _check(result, what):
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


def join_fresh_keyring(libc):
    """A new, empty session keyring: nothing of the grader's keys is reachable."""
    import seccomp

    number = seccomp.resolve_syscall(seccomp.Arch.NATIVE, "keyctl")
    if libc.syscall(number, KEYCTL_JOIN_SESSION_KEYRING, None) < 0:
        code = ctypes.get_errno()
        # refused to this process (a container's own filter, as Docker's default profile
        # does): then no keyring is reachable from it or from what it runs
        if code not in (errno.EPERM, errno.ENOSYS, errno.EACCES):
            raise OSError(code, f"keyctl(JOIN_SESSION_KEYRING): {os.strerror(code)}")


def become(libc, uid, gid, clear_bounding):
    """Drop to uid/gid with no groups and no capabilities in any set."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    if clear_bounding:
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            last = int(handle.read())
        for cap in range(last + 1):
            _check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"PR_CAPBSET_DROP {cap}")
    os.setresuid(uid, uid, uid)  # from root to another uid: permitted and effective emptied
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)  # absent on old kernels
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")


def _memfile(name, write):
    """An inheritable memory file, filled by ``write(handle)`` and rewound."""
    fd = os.memfd_create(name, 0)
    with os.fdopen(os.dup(fd), "wb") as handle:
        write(handle)
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    return fd


def run_bwrap(config, libc):
    join_fresh_keyring(libc)
    bpf = _memfile("seccomp", build_filter().export_bpf)
    args = config["argv"][1:]
    # bwrap reads its own options from --args, NUL-separated; the command follows them
    split = args.index("--")
    options, command = [*args[:split], "--seccomp", str(bpf)], args[split:]
    data = b"".join(a.encode() + b"\0" for a in options)
    packed = _memfile("bwrap-args", lambda handle: handle.write(data))
    if config.get("uid") is not None:
        become(libc, config["uid"], config["uid"], clear_bounding=True)
    os.execv(config["argv"][0], [config["argv"][0], "--args", str(packed), *command])


def run_uid(config, libc):
    join_fresh_keyring(libc)
    become(libc, config["uid"], config["uid"], clear_bounding=True)
    # no namespace ends this child with the grader: the kernel kills it when its parent
    # (the grader) dies; set after the uid changed, which clears it
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")
    if os.getppid() != config["parent"]:  # the grader died before that: go with it
        return 1
    os.umask(0o077)
    scf = build_filter()
    scf.load()
    os.chdir(config["work"])
    os.execve(config["argv"][0], config["argv"], config["env"])


def run_reap(config, libc):
    uid = config["uid"]
    become(libc, uid, uid, clear_bounding=False)
    me = os.getpid()
    deadline = time.monotonic() + float(config.get("seconds", 10))
    while time.monotonic() < deadline:
        try:
            os.kill(-1, signal.SIGKILL)  # every process this uid may signal, but this one
        except ProcessLookupError:
            pass
        if not [p for p in processes_of(uid) if p != me]:
            return 0
        time.sleep(0.01)
    return 1


def processes_of(uid):
    """Pids whose real or effective uid is ``uid``."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/status", "rb") as handle:
                    uids = next(line for line in handle if line.startswith(b"Uid:")).split()
            except (OSError, StopIteration):
                continue
            if str(uid).encode() in uids[1:3]:
                found.append(int(name))
    return found


def print_filter(config, libc):
    build_filter().export_pfc(sys.stdout)
    return 0


MODES = {"bwrap": run_bwrap, "uid": run_uid, "reap": run_reap, "print-filter": print_filter}


def main(argv):
    config = json.loads(argv[1])
    mode = MODES.get(config["mode"])
    if mode is None:
        raise SystemExit(f"launcher: unknown mode {config['mode']!r}")
    return mode(config, _libc())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
