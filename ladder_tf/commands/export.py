"""`ladder export`: argument checks and one clear line for every failure; the export itself
is ladder_tf.workflows.export."""
from __future__ import annotations

import argparse
import json
import os

from ladder_tf.commands.common import ConfigError, error_text, fail, new_parser, quiet_tensorflow
from ladder_tf.workflows.export import INFO_ASSET, export_checkpoint, serving_version_dir

EXPORT_HELP = """Export a trained model as a self-contained TensorFlow SavedModel.

    ladder export RUN_DIR [--out DIR] [--checkpoint PATH]
    ladder export RUN_DIR --out models/ladder --model-version next   # TensorFlow Serving layout"""


def build_parser() -> argparse.ArgumentParser:
    """The ``ladder export`` arguments."""
    p = new_parser(EXPORT_HELP)
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory (config.json + checkpoints/)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: RUN_DIR/saved_model); "
                   "with --model-version, the base directory that holds the numbered versions")
    p.add_argument("--model-version", metavar="N|next",
                   help="write OUT/N/, TensorFlow Serving's layout; 'next': one above the highest "
                   "existing version (1 for the first)")
    p.add_argument("--checkpoint", metavar="PREFIX",
                   help="checkpoint prefix (default: the latest of RUN_DIR)")
    return p


def main(argv: list[str] | None = None) -> int:
    """`ladder export`: returns the exit status (2 for a usage mistake or an unusable run)."""
    args = build_parser().parse_args(argv)
    out = args.out
    if args.model_version is not None:
        if not out:
            fail("--model-version needs --out (the directory TensorFlow Serving watches)")
        try:
            out = serving_version_dir(out, args.model_version)
        except ValueError as err:
            fail(str(err))
    quiet_tensorflow(args.verbose)
    try:
        path = export_checkpoint(args.run_dir, out, args.checkpoint)
    except OSError as err:  # RunNotFoundError (no run, no readable checkpoint), permissions
        fail(error_text(err))
    except ConfigError as err:  # a damaged config.json
        fail(str(err))
    with open(os.path.join(path, "assets", INFO_ASSET), encoding="utf-8") as fh:
        info = json.load(fh)
    print(f"exported {info['prior']} ({info['checkpoint']}) to {path}: signatures "
          f"{', '.join(info['signatures'])}; serving_default = {info['serving_default']}")
    return 0
