"""Writing files safely: atomic replacement (a temporary file next to the
destination, flushed, then renamed over it), destination checks, and
``OSError`` messages that name the path the caller gave.

Used by :func:`tfmlp.save`, :func:`tfmlp.export` and the command line; it
imports no TensorFlow.
"""

from __future__ import annotations

import os
import secrets
import stat
from contextlib import contextmanager, suppress


def atomic_write(path: str, writer) -> None:
    """Write ``path`` with ``writer(binary file)``: into a new temporary file
    next to it (through the descriptor that created it), flushed to disk,
    then renamed onto ``path``; see :func:`replacing`."""
    fd, tmp = temp_file(path)
    with _published(tmp, path):
        with naming(path), os.fdopen(fd, "wb") as f:  # (a full disk: named)
            writer(f)
            f.flush()
            os.fsync(f.fileno())


@contextmanager
def replacing(path: str, suffix: str = ".tmp"):
    """A new temporary path next to ``path`` for a writer that takes a name
    (Keras), flushed to disk and renamed onto ``path`` if the block
    succeeds; on any failure (KeyboardInterrupt included) it is removed and
    an existing file at ``path`` is untouched."""
    fd, tmp = temp_file(path, suffix)
    os.close(fd)
    with _published(tmp, path):
        yield tmp
        with naming(path):
            fd = os.open(tmp, os.O_RDONLY)  # (read-only: any mode allows it)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


@contextmanager
def _published(tmp: str, path: str):
    """Rename ``tmp`` onto ``path`` after the block; remove it if that fails."""
    try:
        yield
        publish(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def destination(path) -> str:
    """A path to write, as a non-empty ``str`` (a bytes path decoded as the
    file system does; a ``TypeError`` for what is not a path)."""
    try:
        name = os.fspath(path)
    except TypeError:
        raise TypeError(
            f"The path must be a str or os.PathLike, got {type(path).__name__}."
        ) from None
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if not name:
        raise ValueError("Cannot write to an empty path.")
    return name


def folder_of(path: str) -> str:
    """The folder a file written at ``path`` goes in, as the system finds it:
    a symbolic link's target's, and not normalised ("sub/.." needs "sub",
    which ``os.path.abspath`` would drop); a trailing separator (a directory
    named ``path``) does not make ``path`` its own folder."""
    target = through_link(path)
    return os.path.dirname(target.rstrip("/" + os.sep) or target) or os.curdir


def check_parent(path: str) -> str:
    """The folder ``path`` is written in (:func:`folder_of`, made absolute),
    which must exist (else an error naming both)."""
    directory = os.path.join(os.getcwd(), folder_of(path))
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise NotADirectoryError(
            f"Cannot write {path!r}: {directory!r} is a file, not a directory."
        )
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"Cannot write {path!r}: its directory {directory!r} does not exist."
        )
    return directory


def temp_file(path: str, suffix: str = ".tmp") -> tuple[int, str]:
    """Create a new hidden file next to ``path`` (mode 0o666 minus the umask).

    ``path`` must be a file name (not empty, not a directory) whose existing
    file, if any, is a regular one: a device, pipe or socket would be
    replaced by the rename. The temporary name keeps at most 100 bytes of
    ``path``'s (:func:`temp_stem`), so that any name the system accepts can
    be written.
    """
    directory = check_parent(destination(path))
    if os.path.isdir(path) or str(path).endswith(("/", os.sep)):
        raise IsADirectoryError(f"Cannot write {path!r}: it names a directory.")
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        raise ValueError(
            f"Cannot write {path!r}: it exists and is not a regular file (a "
            "device, pipe or socket would be replaced)."
        )
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        name = f".{temp_stem(path)}.{secrets.token_hex(6)}{suffix}"
        tmp = os.path.join(directory, name)
        try:
            with naming(path):
                return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"Could not create a temporary file next to {path!r}.")


def temp_stem(path: str) -> str:
    """``path``'s file name cut to at most 100 bytes (whole characters), the
    start of a temporary name next to it that stays within the system's
    limit on a name's length (255 bytes)."""
    name = os.path.basename(os.path.normpath(path))
    return os.fsencode(name)[:100].decode("utf-8", "ignore") or "tfmlp"


def through_link(path: str) -> str:
    """The file a symbolic link at ``path`` points to (written in its place,
    next to it); any other path as it is."""
    return os.path.realpath(path) if os.path.islink(path) else path


@contextmanager
def naming(path: str):
    """OSErrors from the temporary file's handling, reported against
    ``path`` (the name the caller gave), not the hidden temporary name."""
    try:
        yield
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno is None:  # not a system error: as it is
            raise
        raise type(exc)(exc.errno, f"Cannot write {path!r}: {exc.strerror}") from None


def publish(tmp: str, path: str) -> None:
    """Rename the finished ``tmp`` onto ``path`` (keeping ``path``'s mode); a
    symbolic link at ``path`` is written through (its target is replaced)."""
    path = through_link(path)
    with suppress(OSError):
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
    with naming(path):
        os.replace(tmp, path)
    fsync_directory(os.path.dirname(os.path.abspath(path)))


def fsync_directory(directory: str) -> None:
    """Make the rename durable (POSIX; a no-op where directories can't be opened)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
