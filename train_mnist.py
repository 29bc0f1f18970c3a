#!/usr/bin/env python
"""Train a VAE with any prior on MNIST digits or Fashion-MNIST (the same as `ladder train`).

    python train_mnist.py --config configs/mnist_fashion.json --prior ladder
"""
from ladder_tf.commands.train import main_mnist as main

if __name__ == "__main__":
    raise SystemExit(main())
