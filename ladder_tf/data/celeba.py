"""CelebA at 128x128: the image-folder data set (ladder_tf.data.folder) with CelebA's defaults.

202,599 images of 128x128x3 are 10 GB as uint8, so the images are never held in memory
(``ImageFiles``: decoded on the fly or read from a one-time cache; see ladder_tf.data.folder
for the split, the preprocessing, the cache and bad files).

CelebA's defaults:
- Source: ``data_dir`` holding the aligned JPEGs (``img_align_celeba``, or its parent; the
  top level only, every non-hidden file, so a file that is not an image is counted as
  skipped), else a prepared TensorFlow Datasets ``celeb_a`` (train+validation+test, read once
  into the cache).
- Size 128x128x3; ``celeba_crop`` (config) 'none' (the paper's plain resize) or
  'center_square'; ``test_size`` (config, default 20,000) images in the seeded test split
  (supplementary D.2).
- Cache folders ``<cache_dir>/celeba-<size>-<crop>-<fingerprint>``.
"""
from __future__ import annotations

import os

from ladder_tf.data.folder import SPLIT_SEED, folder_store, split_indices, split_store, tfds_store
from ladder_tf.data.image_files import ImageFiles, ImageStore
from ladder_tf.data.mnist import DataNotFoundError, ImageData, _tfds_prepared

IMAGE_SIZE = 128
FOLDER_NAME = "img_align_celeba"
TFDS_NAME = "celeb_a"
TFDS_SPLITS = "train+validation+test"
HINT = f"point --data-dir at the aligned JPEGs ({FOLDER_NAME}, 202,599 images)"

__all__ = ["IMAGE_SIZE", "SPLIT_SEED", "ImageFiles", "ImageStore", "load_celeba", "split_indices"]


def load_celeba(data_dir: str | None = None, cfg=None, cache_dir: str | None = None, *,
                test_size: int | None = None, crop: str | None = None, size: int = IMAGE_SIZE,
                tfds_dir: str | None = None) -> ImageData:
    """CelebA as an ImageData of ``ImageFiles`` (labels are zeros: CelebA has no classes here).

    ``test_size`` and ``crop`` default to the config's ``test_size`` and ``celeba_crop``.
    Raises DataNotFoundError for a missing or empty folder or when no source is found.
    """
    test_size = test_size if test_size is not None else (cfg.test_size if cfg else 20000)
    crop = crop or (cfg.celeba_crop if cfg else "none")
    if data_dir:
        if not os.path.isdir(data_dir):
            raise DataNotFoundError(f"the CelebA folder {data_dir} does not exist; {HINT}")
        if os.path.isdir(os.path.join(data_dir, FOLDER_NAME)):
            data_dir = os.path.join(data_dir, FOLDER_NAME)
        store, source = folder_store(data_dir, size, crop, cache_dir, recursive=False, extensions=None,
                                     prefix="celeba", label="CelebA", hint=HINT)
    else:
        if not _tfds_prepared(TFDS_NAME):
            raise DataNotFoundError(f"no CelebA source: pass --data-dir with the aligned JPEG folder "
                                    f"({FOLDER_NAME}), or prepare TensorFlow Datasets '{TFDS_NAME}'")
        store, source = tfds_store(TFDS_NAME, size, crop, cache_dir, tfds_dir, splits=TFDS_SPLITS,
                                   prefix="celeba")
    return split_store(store, source, test_size)
