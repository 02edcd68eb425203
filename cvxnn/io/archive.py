"""The archive under a cvxnn model file: a .npz with a JSON header and a checksum.

A file is a NumPy ``.npz`` archive readable with ``numpy.load(path,
allow_pickle=False)``: the arrays as they are, and one JSON header, the 0-d
string array ``__cvxnn__`` (format, version, kind, metadata). The header
holds ``checksum``: the SHA-256 of each array (of its name, dtype, shape and
C-order bytes) and of the header itself (canonical JSON, array digests
included, its own digest left out), so that any change after saving, to an
array or to a metadata field, is detected.

:func:`read_archive` opens a file, checks its format, version and kind, runs
the structure checks of its kind (:mod:`cvxnn.io.checks`) and verifies the
checksum; any problem raises :class:`ModelFileError`.
"""

import contextlib
import hashlib
import json
import os
import stat
import tempfile

import numpy as np

from cvxnn._version import __version__
from cvxnn.core.validation import check_bool

FORMAT_VERSION = 1
HEADER = "__cvxnn__"
KINDS = ("solution", "network", "estimator")
ALGORITHM = "sha256"


class ModelFileError(ValueError):
    """A model file that is damaged, inconsistent or not a cvxnn file.

    Attributes
    ----------
    path : str or None
        The file, as the caller named it.
    reason : str
        What is wrong with it.
    """

    def __init__(self, reason, path=None):
        self.reason = reason
        self.path = None if path is None else str(path)
        super().__init__(reason if path is None else f"{path}: {reason}")


@contextlib.contextmanager
def naming(path):
    """Add ``path`` to the :class:`ModelFileError` raised inside the block."""
    try:
        yield
    except ModelFileError as exc:
        if exc.path is not None:
            raise
        raise ModelFileError(exc.reason, path) from exc.__cause__


@contextlib.contextmanager
def malformed():
    """A file whose header lacks a field or holds one of the wrong type makes
    the code reading it fail with KeyError, TypeError, ...: a ModelFileError."""
    try:
        yield
    except ModelFileError:
        raise
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ModelFileError(f"has a malformed header or array ({type(exc).__name__}:"
                             f" {exc}); it was damaged or edited.") from exc


# --- checksum -----------------------------------------------------------------
def array_digest(name, arr):
    """SHA-256 (hex) of an array's name, dtype, shape and bytes (C order)."""
    h = hashlib.sha256(json.dumps([name, arr.dtype.str, list(arr.shape)]).encode())
    h.update(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))
    return h.hexdigest()


def _header_digest(header):
    """SHA-256 of the header, array digests included, minus its own digest."""
    checksum = {k: v for k, v in header["checksum"].items() if k != "header"}
    text = json.dumps({**header, "checksum": checksum}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def with_checksum(header, arrays):
    """``header`` plus its ``checksum`` entry for the arrays as stored.

    ``header`` must hold JSON values only (it is hashed as it will be read).
    """
    header = json.loads(json.dumps(header))
    header["checksum"] = {"algorithm": ALGORITHM,
                          "arrays": {k: array_digest(k, arrays[k])
                                     for k in sorted(arrays)}}
    header["checksum"]["header"] = _header_digest(header)
    return header


def _resave_hint(kind):
    if kind == "estimator":
        return ("m = cvxnn.io.load_model(f, allow_no_checksum=True); "
                "cvxnn.io.save_model(f, m, metadata=cvxnn.io.load_metadata(f, "
                "allow_no_checksum=True))")
    return "cvxnn.save(f, cvxnn.load(f, allow_no_checksum=True))"


def verify_checksum(header, arrays, allow_missing=False):
    """Raise :class:`ModelFileError` unless the header and arrays match their digests.

    ``arrays=None`` verifies the header alone (it holds the array digests).
    A file without a checksum is refused unless ``allow_missing``.
    """
    checksum = header.get("checksum")
    if checksum is None:
        if allow_missing:
            return
        raise ModelFileError(
            "has no checksum (it was written by a cvxnn that did not store one), "
            "so damage to it cannot be ruled out. If you trust the file, load it "
            "once with allow_no_checksum=True and save it again, for a file f: "
            f"{_resave_hint(header['kind'])}")
    if (not isinstance(checksum, dict) or checksum.get("algorithm") != ALGORITHM
            or not isinstance(checksum.get("arrays"), dict)
            or not isinstance(checksum.get("header"), str)):
        raise ModelFileError("the metadata's checksum entry is malformed.")
    if _header_digest(header) != checksum["header"]:
        raise ModelFileError("the metadata (JSON header) does not match its "
                             "checksum: it was edited or damaged after saving.")
    if arrays is None:
        return
    expected = checksum["arrays"]
    for name in sorted(set(expected) | set(arrays)):
        if name not in arrays:
            raise ModelFileError(f"array {name!r} is missing (the checksum lists it).")
        if name not in expected:
            raise ModelFileError(f"array {name!r} was not in the file when it was "
                                 "saved (the checksum does not list it).")
        if array_digest(name, arrays[name]) != expected[name]:
            raise ModelFileError(f"array {name!r} does not match its checksum: its "
                                 "bytes were changed after saving.")


def _label_array(arr, name):
    """An object array of strings as unicode, which loads without pickle."""
    if all(isinstance(v, str) for v in arr.ravel()):
        return arr.astype(str)
    raise TypeError(f"{name}: object labels other than strings cannot be saved "
                    "without pickle.")


# --- reading and writing ----------------------------------------------------

def check_path(path):
    """``path`` if it names a file; an int (or bool) would be taken by ``open``
    as a descriptor of some file the process already has open."""
    if isinstance(path, (str, bytes, os.PathLike)):
        return path
    raise TypeError(f"path: expected a file name (str or path-like), got "
                    f"{type(path).__name__} {path!r}.")


def write_archive(path, kind, meta, arrays, check=None):
    """Write ``meta`` (JSON values) and ``arrays`` to ``path``, with a checksum.

    ``check(header, arrays)``, the structure checks :func:`read_archive` runs,
    runs first on what would be written: a file that would be refused is not
    written (ValueError, naming ``kind`` and what is wrong).
    """
    check_path(path)
    header = {"format": "cvxnn", "format_version": FORMAT_VERSION, "kind": kind,
              **meta}

    header["cvxnn_version"] = __version__
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    header["object_arrays"] = sorted(k for k, v in arrays.items() if v.dtype == object)
    for key in header["object_arrays"]:
        arrays[key] = _label_array(arrays[key], key)
    header = with_checksum(header, arrays)
    if check is not None:
        try:
            check(header, arrays)
        except ModelFileError as exc:
            raise ValueError(f"{kind}: cannot be saved, the file would be refused "
                             f"when loaded: {exc.reason}") from exc
    payload = {HEADER: np.array(json.dumps(header))}
    payload.update(arrays)
    _write_file(path, payload)


def _write_file(path, payload):
    """Write the archive into a new file beside the target, then rename it over
    the target: a failed write (a full disk) leaves a model already there
    whole. The rename is used only for a new file or a plain one (a regular
    file of ours, of our group, writable, with one link and no extended
    attributes), where it does what ``open(path, "wb")`` does; anything
    else (a pipe or device, a hard link, another user's or group's file, a
    read-only file, ACLs, a symbolic-link loop, a trailing slash) and a
    rename that fails (a bind-mounted file, a directory that takes no new
    file) are written in place, as ``open`` would. A process killed while
    writing may leave its ``.cvxnn-*.npz`` temporary file."""
    path = os.fsdecode(os.fspath(path))
    real = os.path.realpath(path)
    if not _renamable(path, real):
        return _write_in_place(path, payload)
    try:
        fd, temporary = tempfile.mkstemp(dir=os.path.dirname(real),
                                         prefix=".cvxnn-", suffix=".npz")
    except OSError:
        return _write_in_place(path, payload)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **payload)
        # mkstemp's file is private (0600): the mode of the file replaced, or
        # of a new one that open() would create
        os.chmod(temporary, stat.S_IMODE(os.stat(real).st_mode)
                 if os.path.exists(real) else 0o666 & ~_umask())
        try:
            os.replace(temporary, real)
        except OSError:
            os.unlink(temporary)
            return _write_in_place(path, payload)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _renamable(path, real):
    """Whether renaming a new file over ``real`` is what writing ``path`` does."""
    if path.endswith(os.sep) or (os.altsep and path.endswith(os.altsep)):
        return False
    if not os.path.exists(real):
        return not os.path.lexists(real)  # a link loop: open() says so
    info = os.stat(real)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1 or \
            not os.access(real, os.W_OK):
        return False
    if hasattr(os, "geteuid") and (info.st_uid != os.geteuid()
                                   or info.st_gid != os.getegid()):
        return False
    try:
        return not (hasattr(os, "listxattr") and os.listxattr(real))
    except OSError:  # a file system without extended attributes
        return True


def _write_in_place(path, payload):
    with open(path, "wb") as f:
        np.savez_compressed(f, **payload)


def _umask():
    """The process's umask (read from /proc where there is one: setting and
    restoring it is not safe with other threads creating files)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_archive(path, kind=None, check=None, allow_no_checksum=False,
                 verify=True):
    """(header, arrays) of a cvxnn file after every check but the objective.

    ``check(header, arrays)`` checks the structure of the kind; ``check=None``
    reads the header alone (and verifies its checksum if ``verify``). Raises
    :class:`ModelFileError` without the path (callers add it with :func:`naming`).
    """
    check_path(path)
    allow_no_checksum = check_bool(allow_no_checksum, "allow_no_checksum")
    with open(path, "rb") as f:  # OSError (no such file, ...) as usual
        if f.read(2) != b"PK":
            raise ModelFileError("is not a cvxnn file (not a .npz archive).")
        f.seek(0)
        try:
            data = np.load(f, allow_pickle=False)
        except Exception as exc:
            raise ModelFileError(f"cannot be read as a .npz archive ({exc}); it is "
                                 "truncated or damaged.") from exc
        with data:
            header = _header(data)
            _check_format(header, kind)
            arrays = None if check is None else {
                k: _member(data, k) for k in data.files if k != HEADER}
    if check is not None:
        with malformed():
            check(header, arrays)
    if verify:
        verify_checksum(header, arrays, allow_no_checksum)
    if check is not None:
        for key in _object_arrays(header, arrays):
            arrays[key] = arrays[key].astype(object)
    return header, arrays


def _member(data, key):
    try:
        value = data[key]
    except Exception as exc:
        raise ModelFileError(f"array {key!r} cannot be read ({exc}); the archive "
                             "is damaged.") from exc
    if not isinstance(value, np.ndarray):  # numpy hands back a non-.npy member raw
        raise ModelFileError(f"array {key!r} cannot be read (not .npy data); the "
                             "archive is damaged.")
    return value


def _header(data):
    if HEADER not in data.files:
        raise ModelFileError(f"is not a cvxnn file (no {HEADER} entry).")
    raw = _member(data, HEADER)
    try:
        if raw.dtype.kind != "U" or raw.ndim != 0:
            raise ValueError(f"a {raw.dtype} array of shape {raw.shape}")
        header = json.loads(str(raw))
    except ValueError as exc:
        raise ModelFileError(f"its metadata ({HEADER}) is not JSON text ({exc}).") \
            from exc
    if not isinstance(header, dict):
        raise ModelFileError(f"its metadata ({HEADER}) is not a JSON object.")
    return header


def _check_format(header, kind):
    version = header.get("format_version")
    if header.get("format") != "cvxnn" or isinstance(version, bool) or not \
            isinstance(version, int):
        raise ModelFileError("has no valid cvxnn header.")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"was written with cvxnn format version {version}; "
                             f"this cvxnn reads up to {FORMAT_VERSION}. "
                             "Upgrade cvxnn.")
    if header.get("kind") not in KINDS:
        raise ModelFileError(f"unknown kind {header.get('kind')!r}.")
    if kind is not None and header["kind"] != kind:
        article = {"estimator": "an"}
        raise ModelFileError(f"holds {article.get(header['kind'], 'a')} "
                             f"{header['kind']}, not {article.get(kind, 'a')} {kind}.")


def _object_arrays(header, arrays):
    names = header.get("object_arrays", [])
    if not isinstance(names, list) or any(
            not isinstance(k, str) or k not in arrays or arrays[k].dtype.kind != "U"
            for k in names):
        raise ModelFileError(f"metadata field 'object_arrays' must list string "
                             f"arrays of the file, got {names!r}.")
    return names
