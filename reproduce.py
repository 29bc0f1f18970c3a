#!/usr/bin/env python
"""Train, evaluate and tabulate the paper's comparison (the same as `ladder reproduce`).

    python reproduce.py --dataset mnist_fashion --seeds 0,1 --evaluate classifier
"""
from ladder_tf.commands.reproduce import main

if __name__ == "__main__":
    raise SystemExit(main())
