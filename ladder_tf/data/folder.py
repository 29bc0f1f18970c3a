"""Image folders and prepared TensorFlow Datasets image sets: a seeded split, resizing, a cache.

The images of such a data set are never all held in memory: ``x_train`` and ``x_test`` are
``ImageFiles`` collections that decode on the fly with tf.data (parallel map, prefetch) or
read rows of a one-time on-disk cache. CelebA (ladder_tf.data.celeba) is this data set with
CelebA's defaults; ``--dataset folder`` (``load_image_folder``) and ``--dataset tfds:NAME``
(``load_tfds_images``) are it with the config's.

- Source: a folder (flat, or searched recursively for ``IMAGE_EXTENSIONS``, hidden files and
  folders left out), or a prepared TFDS data set (all splits, train first, read once into the
  cache; never downloaded).
- Split: a permutation of the sorted readable files with the fixed seed ``SPLIT_SEED``; the
  first ``test_size`` form the test set, the rest the training set. It depends only on the
  file list and ``test_size``, not on the run's seed.
- Preprocessing: decode to the config's channels (grey or RGB; an alpha channel is dropped),
  optionally centre-crop to a square (``crop``: 'center_square'; default 'none', a plain
  resize), bilinear antialiased resize to size x size, rounded to uint8, then scaled to
  [0, 1] per batch. Cached and uncached images are therefore bit-identical.
- Cache (``cache_dir``): ``<cache_dir>/<prefix>-<size>-<crop>-<fingerprint>/images.npy``, a
  uint8 (N, size, size, C) array read by memory map, plus ``manifest.json``. The fingerprint
  covers the file names and sizes, the image size, crop, channels and the resize method, so
  changing any of them builds a new cache instead of reusing a stale one. A memory map (not
  TFRecords) keeps random access by index, so the seeded per-epoch order, resumption and the
  training subsets of the hyper-prior refits are the same with and without the cache.
- Bad files: files that are unreadable or not an image (by their first bytes) are found
  when the folder is listed; images whose decoding fails are dropped from the stream
  (``ignore_errors``) and replaced by the next images of the epoch, so every epoch keeps its
  number of batches. Both are counted; ``warn_skipped_files`` (called by the trainer once
  per epoch) names how many and the first few paths. An empty or missing folder is a
  ``DataNotFoundError``.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
from typing import Any

import numpy as np
import tensorflow as tf

from ladder_tf.data.image_files import ImageFiles, ImageStore, preprocess, resize_image
from ladder_tf.data.mnist import DataNotFoundError, ImageData
from ladder_tf.io_utils import error_line

SPLIT_SEED = 2020
CACHE_VERSION = 1
RESIZE = "bilinear-antialias-round-uint8"
MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")  # what TensorFlow decodes
BUILD_BATCH = 256
FOLDER_HINT = "point --data-dir at a folder of images (PNG, JPEG, BMP or GIF; subfolders are searched)"


def _check_file(path: str) -> bool:
    """True when ``path`` can be read and starts like a JPEG, PNG, GIF or BMP file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return any(head.startswith(m) for m in MAGIC)


def list_folder(folder: str, recursive: bool = False,
                extensions: tuple[str, ...] | None = None) -> tuple[list[str], list[int]]:
    """Sorted names (paths relative to ``folder``) and sizes of its regular, non-hidden files:
    the top level only, or (``recursive``) every non-hidden subfolder too; with ``extensions``
    only files whose lower-cased name ends with one of them."""
    if recursive:
        entries = []
        for top, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = os.path.relpath(top, folder)
            for name in files:
                path = os.path.join(top, name)
                if not name.startswith(".") and os.path.isfile(path):
                    entries.append((name if rel == "." else os.path.join(rel, name), os.path.getsize(path)))
        entries.sort()
    else:
        entries = sorted((e.name, e.stat().st_size) for e in os.scandir(folder)
                         if not e.name.startswith(".") and e.is_file())
    if extensions:
        entries = [(n, s) for n, s in entries if n.lower().endswith(extensions)]
    return [n for n, _ in entries], [s for _, s in entries]


def scan_folder(folder: str, names: list[str]) -> tuple[list[str], list[str]]:
    """(readable image paths, skipped paths), both in name order; checks run in threads."""
    paths = [os.path.join(folder, n) for n in names]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        ok = list(pool.map(_check_file, paths, chunksize=256))
    return [p for p, g in zip(paths, ok) if g], [p for p, g in zip(paths, ok) if not g]


def split_indices(n: int, test_size: int, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) index arrays, each sorted: a seeded permutation's tail and head."""
    if not 0 < test_size < n:
        raise ValueError(f"test_size = {test_size} must be between 1 and the number of readable "
                         f"images minus one ({n - 1}); set the config key test_size "
                         "(--set test_size=N)")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[test_size:]), np.sort(perm[:test_size])


# -- the cache ------------------------------------------------------------------------------
def fingerprint(source: dict, size: int, crop: str, channels: int = 3) -> str:
    """Hex digest of everything the cached pixels depend on. (``channels`` enters only when
    it is not 3, so the keys of caches built before grey images were possible still match.)"""
    key = {"version": CACHE_VERSION, "source": source, "size": size, "crop": crop, "resize": RESIZE}
    if channels != 3:
        key["channels"] = channels
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _write_cache(path: str, images: tf.data.Dataset, n: int, size: int, manifest: dict,
                 channels: int = 3) -> None:
    """Write (index, uint8 image) pairs of ``images`` to ``path``/images.npy; then the manifest."""
    tmp = f"{path}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    array = np.lib.format.open_memmap(os.path.join(tmp, "images.npy"), mode="w+", dtype=np.uint8,
                                      shape=(n, size, size, channels))
    done = np.zeros(n, bool)
    for idx, batch in images.batch(BUILD_BATCH).prefetch(2).as_numpy_iterator():
        array[idx], done[idx] = batch, True
    array.flush()
    del array
    manifest = {**manifest, "bad_rows": np.flatnonzero(~done).tolist()}
    with open(os.path.join(tmp, "manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
    try:
        os.replace(tmp, path)
    except OSError:  # another process finished the same cache first
        shutil.rmtree(tmp, ignore_errors=True)


def _open_cache(path: str) -> tuple[np.ndarray, dict]:
    with open(os.path.join(path, "manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    return np.load(os.path.join(path, "images.npy"), mmap_mode="r"), manifest


def _bad_rows(n: int, manifest: dict) -> np.ndarray:
    bad = np.zeros(n, bool)
    bad[manifest["bad_rows"]] = True
    return bad


def folder_store(folder: str, size: int, crop: str, cache_dir: str | None, channels: int = 3, *,
                 recursive: bool = True, extensions: tuple[str, ...] | None = IMAGE_EXTENSIONS,
                 prefix: str = "folder", label: str = "image",
                 hint: str = FOLDER_HINT) -> tuple[ImageStore, str]:
    """The readable images of ``folder`` (see ``list_folder``) and a one-line description;
    with ``cache_dir`` read from (and built once into) the cache ``<prefix>-...``.
    ``label`` ("the <label> folder") and ``hint`` word the errors of a folder without images."""
    names, sizes = list_folder(folder, recursive, extensions)
    if not names:
        raise DataNotFoundError(f"the {label} folder {folder} holds no files"
                                f"{' with an image extension' if extensions else ''}; {hint}")
    digest = hashlib.sha256(json.dumps([names, sizes]).encode()).hexdigest()
    key = fingerprint({"folder": os.path.abspath(folder), "files": digest}, size, crop, channels)
    cache_path = os.path.join(cache_dir, f"{prefix}-{size}-{crop}-{key}") if cache_dir else None
    if cache_path and os.path.exists(os.path.join(cache_path, "manifest.json")):
        cache, manifest = _open_cache(cache_path)
        paths = np.array([os.path.join(folder, n) for n in manifest["names"]], dtype=object)
        store = ImageStore(paths, size, crop, cache, _bad_rows(len(paths), manifest),
                           [os.path.join(folder, n) for n in manifest["skipped"]], channels=channels)
        return store, f"{len(paths)} images in {folder} (cache {cache_path})"
    good, skipped = scan_folder(folder, names)
    if not good:
        raise DataNotFoundError(f"the {label} folder {folder} holds no readable image among its "
                                f"{len(names)} files (first: {', '.join(skipped[:3])})")
    store = ImageStore(np.array(good, dtype=object), size, crop, scan_skipped=skipped, channels=channels)
    if not cache_path:
        return store, f"{len(good)} images in {folder}"
    print(f"building the {label} cache {cache_path} ({len(good)} images, once)", flush=True)
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(good), dtype=np.int64), np.array(good, str)))
    ds = ds.map(lambda i, p: (i, preprocess(tf.io.read_file(p), size, crop, channels)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    manifest = {"fingerprint": key, "names": [os.path.relpath(p, folder) for p in good],
                "skipped": [os.path.relpath(p, folder) for p in skipped], "size": size, "crop": crop}
    _write_cache(cache_path, ds, len(good), size, manifest, channels)
    return folder_store(folder, size, crop, cache_dir, channels, recursive=recursive,
                        extensions=extensions, prefix=prefix, label=label, hint=hint)


def tfds_builder(name: str, tfds_dir: str | None = None) -> Any:
    """The builder of the prepared TFDS data set ``name`` (in ``tfds_dir``, else TFDS's default
    directory); DataNotFoundError when TFDS is missing or the data set is not prepared there.
    Never downloads."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataNotFoundError(f"tfds:{name} needs the package tensorflow-datasets") from None
    from absl import logging as absl_logging

    where = tfds_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)  # TFDS's notes on the folders it looked in
    try:
        builder = tfds.builder(name, data_dir=tfds_dir)
        prepared = builder.is_prepared()
    except Exception as err:  # noqa: BLE001 - unknown name, unreadable metadata
        raise DataNotFoundError(f"TensorFlow Datasets '{name}' is not prepared in {where} "
                                f"({error_line(err)})") from None
    finally:
        absl_logging.set_verbosity(verbosity)
    if not prepared:
        raise DataNotFoundError(
            f"TensorFlow Datasets '{name}' is not prepared in {where}; ladder never downloads it: "
            f"prepare it once where there is network (`tfds build {name}`), or pass --data-dir with "
            "the TFDS data directory that holds it")
    return builder


def tfds_store(name: str, size: int, crop: str, cache_dir: str | None, tfds_dir: str | None = None,
               channels: int = 3, *, splits: str | None = None,
               prefix: str | None = None) -> tuple[ImageStore, str]:
    """Every image of the prepared TFDS data set ``name`` (``splits``, default all of them,
    train first), resized into the cache (default ``<TFDS dir>/ladder_tf_cache``) once."""
    import tensorflow_datasets as tfds

    builder = tfds_builder(name, tfds_dir)
    images = [k for k, f in builder.info.features.items() if isinstance(f, tfds.features.Image)]
    if not images:
        raise DataNotFoundError(f"TensorFlow Datasets '{name}' has no image feature")
    names = sorted(builder.info.splits.keys(), key=lambda s: (s != "train", s))
    splits = splits or "+".join(names)
    n = sum(builder.info.splits[s].num_examples for s in splits.split("+"))
    cache_dir = cache_dir or os.path.join(builder.data_dir_root, "ladder_tf_cache")
    key = fingerprint({"tfds": name, "version": str(builder.info.version), "n": n}, size, crop, channels)
    prefix = prefix or "tfds_" + name.replace("/", "_").replace(":", "_")
    cache_path = os.path.join(cache_dir, f"{prefix}-{size}-{crop}-{key}")
    rows = [f"{name}/{i}" for i in range(n)]
    if not os.path.exists(os.path.join(cache_path, "manifest.json")):
        print(f"building the cache {cache_path} from TFDS '{name}' ({n} images, once)", flush=True)
        ds = builder.as_dataset(split=splits, shuffle_files=False)
        ds = ds.enumerate().map(lambda i, ex: (i, resize_image(ex[images[0]], size, crop, channels)),
                                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        _write_cache(cache_path, ds, n, size, {"fingerprint": key, "names": rows, "skipped": []}, channels)
    cache, manifest = _open_cache(cache_path)
    return ImageStore(np.array(rows, dtype=object), size, crop, cache, _bad_rows(n, manifest),
                      channels=channels), f"TensorFlow Datasets '{name}' (cache {cache_path})"


def split_store(store: ImageStore, source: str, test_size: int) -> ImageData:
    """An ImageData of ``ImageFiles`` split by ``split_indices`` (labels are zeros)."""
    train, test = split_indices(len(store.paths), test_size)
    return ImageData(ImageFiles(store, train), np.zeros(len(train), np.int64),
                     ImageFiles(store, test), np.zeros(len(test), np.int64), source)


def image_settings(cfg=None, **given: Any) -> dict[str, Any]:
    """size, crop, channels and test_size: ``given`` values (None: not given), else the
    config's (dim_input_x, celeba_crop, dim_input_channel, test_size), else the defaults."""
    from_cfg = ({"size": cfg.dim_input_x, "crop": cfg.celeba_crop, "channels": cfg.dim_input_channel,
                 "test_size": cfg.test_size} if cfg is not None else
                {"size": 64, "crop": "none", "channels": 3, "test_size": 1000})
    return {k: given[k] if given.get(k) is not None else v for k, v in from_cfg.items()}


def load_image_folder(data_dir: str | None, cfg=None, cache_dir: str | None = None, **given: Any) -> ImageData:
    """``--dataset folder``: every image below ``data_dir``, at the config's size, crop and
    channels (``given`` overrides: size, crop, channels, test_size). Raises DataNotFoundError."""
    s = image_settings(cfg, **given)
    if not data_dir:
        raise DataNotFoundError(f"the folder data set needs --data-dir: {FOLDER_HINT}")
    if not os.path.isdir(data_dir):
        raise DataNotFoundError(f"the image folder {data_dir} does not exist; {FOLDER_HINT}")
    store, source = folder_store(data_dir, s["size"], s["crop"], cache_dir, s["channels"])
    return split_store(store, source, s["test_size"])


def load_tfds_images(name: str, tfds_dir: str | None = None, cfg=None, cache_dir: str | None = None,
                     **given: Any) -> ImageData:
    """``--dataset tfds:NAME``: the prepared TFDS image set ``name`` (its images only; labels are
    zeros), at the config's size, crop and channels. Raises DataNotFoundError."""
    s = image_settings(cfg, **given)
    if tfds_dir and not os.path.isdir(tfds_dir):
        raise DataNotFoundError(f"the TensorFlow Datasets directory {tfds_dir} does not exist")
    store, source = tfds_store(name, s["size"], s["crop"], cache_dir, tfds_dir, s["channels"])
    return split_store(store, source, s["test_size"])
