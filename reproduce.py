#!/usr/bin/env python
"""Train every prior (x seeds) on one data set and tabulate the results; see ladder_tf/reproduce.py.

    python reproduce.py --dataset mnist_fashion --priors normal,gmm,ladder --seeds 0,1,2
"""
from ladder_tf.reproduce import main

if __name__ == "__main__":
    raise SystemExit(main())
