#!/usr/bin/env python
"""Train a VAE with any prior on CelebA 128x128 (the same as `ladder train-celeba`).

    python train_celeba.py --data-dir /data/img_align_celeba --cache-dir /data/cache --prior ladder
"""
from ladder_tf.commands.train import main_celeba as main

if __name__ == "__main__":
    raise SystemExit(main())
