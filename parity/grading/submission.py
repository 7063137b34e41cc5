"""A submission on the grader's side: finding its ``scratch`` package, and the copy of its
``.py`` files that each child runs (links, devices and oversized files never followed or
opened)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


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
                    regular = stat.S_ISREG(os.fstat(handle.fileno()).st_mode)
                    data = handle.read(MAX_SOURCE_BYTES + 1) if regular else None
                if data is None or len(data) > MAX_SOURCE_BYTES:
                    skipped.append(str(rel / name))
                    continue
                (target / rel / name).write_bytes(data)
                copied += 1
    finally:
        os.close(top)
    return skipped
