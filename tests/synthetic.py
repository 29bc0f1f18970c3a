"""Small learnable image data sets shared by the tests (no download, no randomness leak)."""
import numpy as np

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
