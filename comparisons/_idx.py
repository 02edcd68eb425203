"""Reading the IDX files of MNIST-style datasets (plain or gzip-compressed).

IDX layout (big-endian): two zero bytes, a type code (0x08 uint8, 0x09 int8,
0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of
dimensions ``k``, ``k`` dimension sizes as uint32, then the data in C order.
A file is read as gzip when it starts with gzip's magic bytes, whatever its
name.
"""

import gzip
from pathlib import Path

import numpy as np

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
             0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"
FASHION_FILES = {  # role: file stem in the Debian package dataset-fashion-mnist
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """The array stored in an IDX file (native byte order).

    Raises ValueError naming the file when the header or the size is wrong.
    """
    raw = Path(path).read_bytes()
    if raw[:2] == GZIP_MAGIC:
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (the first two bytes must be "
                         "zero).")
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02X}; known: "
                         f"{', '.join(f'0x{c:02X}' for c in IDX_TYPES)}.")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated header ({ndim} dimensions announced).")
    dims = tuple(int(v) for v in np.frombuffer(raw[4:header], dtype=">u4"))
    dtype = np.dtype(IDX_TYPES[code])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: holds {len(raw) - header} data bytes, the "
                         f"header {dims} of {dtype.name} needs {expected}.")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def find_file(directory, stem):
    """``directory/stem`` or ``directory/stem.gz``, whichever exists."""
    for name in (stem, f"{stem}.gz"):
        path = Path(directory) / name
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{directory}: has neither {stem} nor {stem}.gz (install the Debian "
        f"package dataset-fashion-mnist, or pass the directory holding the IDX "
        "files).")


def load_images(directory, split):
    """(images as float32 in [0, 1] of shape (n, rows*cols), int64 labels)."""
    images = read_idx(find_file(directory, FASHION_FILES[f"{split}_images"]))
    labels = read_idx(find_file(directory, FASHION_FILES[f"{split}_labels"]))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{directory}: {split} images {images.shape} and labels "
                         f"{labels.shape} do not match (want (n, rows, cols) and "
                         "(n,)).")
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    X = images.reshape(len(images), -1).astype(np.float32) / np.float32(scale)
    return X, labels.astype(np.int64)


def load_fashion_mnist(directory=DEFAULT_DIR):
    """Training and test sets: (X_train, y_train, X_test, y_test)."""
    X_train, y_train = load_images(directory, "train")
    X_test, y_test = load_images(directory, "test")
    if X_train.shape[1] != X_test.shape[1]:
        raise ValueError(f"{directory}: training images have {X_train.shape[1]} "
                         f"pixels, test images {X_test.shape[1]}.")
    return X_train, y_train, X_test, y_test
