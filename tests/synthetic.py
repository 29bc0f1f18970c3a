"""Small learnable image data sets shared by the tests and benchmarks (no download, no
randomness leak)."""
import os

import numpy as np
import tensorflow as tf

from ladder_tf.data import ImageData


def synthetic_data(n_train: int = 96, n_test: int = 40, seed: int = 0) -> ImageData:
    """Bright 6x6 squares on black whose position is the label (learnable in a few steps)."""
    rng = np.random.default_rng(seed)

    def make(n):
        labels = rng.integers(0, 10, n)
        x = np.zeros((n, 28, 28, 1), np.uint8)
        for k in range(10):  # over the 10 classes; each assignment covers all their images
            r, c = 4 + 2 * k, 4 + (k % 5) * 4
            x[labels == k, r:r + 6, c:c + 6] = 255
        return x, labels

    (xtr, ytr), (xte, yte) = make(n_train), make(n_test)
    return ImageData(xtr, ytr, xte, yte, source="synthetic")


def write_synthetic_folder(folder: str, n: int, sizes: tuple[tuple[int, int], ...] = ((218, 178),),
                           seed: int = 0, quality: int = 90) -> list[str]:
    """Write ``n`` smooth random JPEGs (cycling through ``sizes`` (H, W)) as CelebA's aligned folder.

    Low-frequency colour fields plus mild noise, so file sizes and decoding cost resemble
    CelebA's aligned JPEGs (about 10 KB at 218x178) rather than incompressible noise.
    """
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        coarse = tf.constant(rng.uniform(0, 255, (6, 5, 3)), tf.float32)
        image = tf.image.resize(coarse[None], [h, w], method="bicubic")[0]
        image += tf.constant(rng.normal(0, 6, (h, w, 3)), tf.float32)
        encoded = tf.io.encode_jpeg(tf.cast(tf.clip_by_value(image, 0, 255), tf.uint8), quality=quality)
        paths.append(os.path.join(folder, f"{i:06d}.jpg"))
        tf.io.write_file(paths[-1], encoded)
    return paths
