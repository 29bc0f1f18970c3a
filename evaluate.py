#!/usr/bin/env python
"""Evaluate trained runs (the same as `ladder evaluate`; the code is ladder_tf/commands/evaluate.py).

    python evaluate.py experiments/mnist_fashion/normal experiments/mnist_fashion/ladder \\
        --features classifier --metrics fid,nll
"""
from ladder_tf.commands.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
