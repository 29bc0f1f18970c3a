"""CelebA at 128x128: a folder of JPEGs (or TFDS ``celeb_a``), a seeded split, an optional cache.

202,599 images of 128x128x3 are 10 GB as uint8, so the images are never held in memory:
``x_train`` and ``x_test`` are ``ImageFiles`` collections that decode on the fly with tf.data
(parallel map, prefetch) or read rows of a one-time on-disk cache.

- Source: ``data_dir`` holding the aligned JPEGs (``img_align_celeba``, or its parent), else a
  prepared TensorFlow Datasets ``celeb_a`` (all three splits, read once into the cache).
- Split (supplementary D.2): a permutation of the sorted readable files with the fixed seed
  ``SPLIT_SEED``; the first ``test_size`` (config, default 20,000) form the test set, the rest
  the training set. It depends only on the file list and ``test_size``, not on the run's seed.
- Preprocessing: decode, optionally centre-crop to a square (``celeba_crop``:
  'center_square'; default 'none', the paper's plain resize), bilinear antialiased resize to
  128x128, rounded to uint8, then scaled to [0, 1] per batch. Cached and uncached images are
  therefore bit-identical.
- Cache (``cache_dir``): ``<cache_dir>/celeba-<size>-<crop>-<fingerprint>/images.npy``, a uint8
  (N, 128, 128, 3) array read by memory map, plus ``manifest.json``. The fingerprint covers the
  file names and sizes, the image size, the crop and the resize method, so changing any of
  them builds a new cache instead of reusing a stale one. A memory map (not TFRecords) keeps
  random access by index, so the seeded per-epoch order, resumption and the training subsets
  of the hyper-prior refits are the same with and without the cache.
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
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import tensorflow as tf

from ladder_tf.data.images import ImageCollection, to_float
from ladder_tf.data.mnist import DataNotFoundError, ImageData

IMAGE_SIZE = 128
SPLIT_SEED = 2020
CACHE_VERSION = 1
RESIZE = "bilinear-antialias-round-uint8"
MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
FOLDER_NAME = "img_align_celeba"
TFDS_NAME = "celeb_a"
BUILD_BATCH = 256


def preprocess(contents: tf.Tensor, size: int = IMAGE_SIZE, crop: str = "none") -> tf.Tensor:
    """Encoded image bytes -> uint8 (size, size, 3): decode, optional centre square, resize."""
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    return resize_image(image, size, crop)


def resize_image(image: tf.Tensor, size: int = IMAGE_SIZE, crop: str = "none") -> tf.Tensor:
    """uint8 (H, W, 3) -> uint8 (size, size, 3), optionally centre-cropped to a square first."""
    image.set_shape([None, None, 3])
    if crop == "center_square":
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.minimum(h, w)
        image = tf.image.crop_to_bounding_box(image, (h - side) // 2, (w - side) // 2, side, side)
    resized = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _check_file(path: str) -> bool:
    """True when ``path`` can be read and starts like a JPEG, PNG, GIF or BMP file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return any(head.startswith(m) for m in MAGIC)


def list_folder(folder: str) -> tuple[list[str], list[int]]:
    """Sorted names and sizes of the regular, non-hidden files of ``folder``."""
    entries = sorted((e.name, e.stat().st_size) for e in os.scandir(folder)
                     if not e.name.startswith(".") and e.is_file())
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
                         f"images minus one ({n - 1}); set the config key test_size")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[test_size:]), np.sort(perm[:test_size])


@dataclass
class ImageStore:
    """All readable images of a source: paths, preprocessing, optional cache, skip log."""

    paths: np.ndarray                      # (N,) str, row i of the cache is paths[i]
    size: int = IMAGE_SIZE
    crop: str = "none"
    cache: np.ndarray | None = None        # uint8 (N, size, size, 3) memory map
    bad_rows: np.ndarray | None = None     # (N,) bool: decoding failed when the cache was built
    scan_skipped: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def record(self, rows: np.ndarray) -> None:
        self.skipped.extend(str(p) for p in self.paths[np.asarray(rows, np.int64)])

    def pop_skipped(self) -> list[str]:
        runtime = list(dict.fromkeys(self.skipped))
        self.skipped.clear()
        return self.scan_skipped + runtime


def _file_stamp(path: str) -> str:
    """``path:size:mtime_ns``, or the bare path for a source that is not a file (TFDS rows)."""
    try:
        st = os.stat(path)
    except OSError:
        return path
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


class ImageFiles(ImageCollection):
    """A lazily loaded (n, size, size, 3) image collection: a subset of an ``ImageStore``.

    An ImageCollection (ladder_tf.data.images): ``len``, indexing by slice or index array (a
    new collection, nothing read), float batches and the tf.data pipelines used by
    ``ladder_tf.data.train_batches`` / ``eval_batches``.
    """

    def __init__(self, store: ImageStore, rows: np.ndarray):
        self.store, self.rows = store, np.asarray(rows, np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self), self.store.size, self.store.size, 3)

    def __getitem__(self, key: Any) -> "ImageFiles | np.ndarray":
        if isinstance(key, (int, np.integer)):
            return self[[key]].floats()[0]
        return ImageFiles(self.store, self.rows[key])

    def pop_skipped(self) -> list[str]:
        """Paths skipped since the last call (the folder scan's are repeated every time)."""
        return self.store.pop_skipped()

    def content_id(self) -> str:
        """sha1 of the preprocessing (size, crop) and, per row in order, the file's path, size
        and modification time: nothing is decoded, so naming 20,000 test images costs one
        ``stat`` each, and an image replaced under the same name changes the id."""
        files = "\n".join(_file_stamp(str(p)) for p in self.store.paths[self.rows])
        key = f"{self.store.size}|{self.store.crop}|{files}"
        return hashlib.sha1(key.encode()).hexdigest()[:10]

    # -- pipelines ----------------------------------------------------------------------
    def train_dataset(self, order: np.ndarray) -> tf.data.Dataset:
        """Float batches, one per row of ``order`` (positions in this collection), in order.

        Unreadable images are replaced by the next ones of the stream (wrapping to the start
        of ``order``), so the number and size of batches never change.
        """
        rows = self.rows[order.reshape(-1)]
        return self._pipeline(np.concatenate([rows, rows]), len(rows), order.shape[1], True)

    def batches(self, batch_size: int) -> tf.data.Dataset:
        """Every readable image in order, float batches (the last one may be smaller)."""
        return self._pipeline(self.rows, None, batch_size, False)

    def float_batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """``batches`` as numpy; fewer images than ``len`` when files are unreadable."""
        return self.batches(batch_size).as_numpy_iterator()

    def _pipeline(self, stream: np.ndarray, needed: int | None, batch_size: int,
                  drop_remainder: bool) -> tf.data.Dataset:
        store = self.store
        if store.cache is not None:
            ds = self._cached(stream, needed, batch_size, drop_remainder)
        else:
            ds = self._decoded(stream, needed, batch_size, drop_remainder)
        ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    def _cached(self, stream, needed, batch_size, drop_remainder) -> tf.data.Dataset:
        store = self.store
        good = ~store.bad_rows[stream]
        positions = np.flatnonzero(good)[:needed]
        last = positions[-1] + 1 if len(positions) else 0
        store.record(stream[:last][~good[:last]])
        rows = stream[positions]
        cache, shape = store.cache, (None, store.size, store.size, 3)

        def read(idx: tf.Tensor) -> tf.Tensor:
            images = tf.numpy_function(lambda i: cache[i], [idx], tf.uint8, stateful=False)
            images.set_shape(shape)
            return images

        ds = tf.data.Dataset.from_tensor_slices(rows).batch(batch_size, drop_remainder=drop_remainder)
        return ds.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def _decoded(self, stream, needed, batch_size, drop_remainder) -> tf.data.Dataset:
        store = self.store
        size, crop = store.size, store.crop

        def load(position: tf.Tensor, path: tf.Tensor):
            return position, preprocess(tf.io.read_file(path), size, crop)

        def note_gap(expected: tf.Tensor, element):
            """Positions skipped by ignore_errors between the last element and this one."""
            position, image = element
            record = lambda a, b: store.record(stream[int(a):int(b)]) or np.int64(0)  # noqa: E731
            done = tf.cond(position > expected,
                           lambda: tf.numpy_function(record, [expected, position], tf.int64),
                           lambda: tf.constant(0, tf.int64))
            with tf.control_dependencies([done]):
                return position + 1, tf.identity(image)

        ds = tf.data.Dataset.from_tensor_slices((np.arange(len(stream), dtype=np.int64),
                                                 store.paths[stream].astype(str)))
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
        if needed is not None:
            ds = ds.take(needed)
        ds = ds.scan(tf.constant(0, tf.int64), note_gap)
        return ds.batch(batch_size, drop_remainder=drop_remainder)


# -- the cache ------------------------------------------------------------------------------
def fingerprint(source: dict, size: int, crop: str) -> str:
    """Hex digest of everything the cached pixels depend on."""
    text = json.dumps({"version": CACHE_VERSION, "source": source, "size": size, "crop": crop,
                       "resize": RESIZE}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_cache(path: str, images: tf.data.Dataset, n: int, size: int, manifest: dict) -> None:
    """Write (index, uint8 image) pairs of ``images`` to ``path``/images.npy; then the manifest."""
    tmp = f"{path}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    array = np.lib.format.open_memmap(os.path.join(tmp, "images.npy"), mode="w+", dtype=np.uint8,
                                      shape=(n, size, size, 3))
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


def _folder_store(folder: str, size: int, crop: str, cache_dir: str | None) -> tuple[ImageStore, str]:
    names, sizes = list_folder(folder)
    if not names:
        raise DataNotFoundError(f"the CelebA folder {folder} holds no files; point --data-dir at "
                                f"the aligned JPEGs ({FOLDER_NAME}, 202,599 images)")
    digest = hashlib.sha256(json.dumps([names, sizes]).encode()).hexdigest()
    key = fingerprint({"folder": os.path.abspath(folder), "files": digest}, size, crop)
    cache_path = os.path.join(cache_dir, f"celeba-{size}-{crop}-{key}") if cache_dir else None
    if cache_path and os.path.exists(os.path.join(cache_path, "manifest.json")):
        cache, manifest = _open_cache(cache_path)
        paths = np.array([os.path.join(folder, n) for n in manifest["names"]], dtype=object)
        bad = np.zeros(len(paths), bool)
        bad[manifest["bad_rows"]] = True
        store = ImageStore(paths, size, crop, cache, bad, [os.path.join(folder, n) for n in manifest["skipped"]])
        return store, f"{len(paths)} images in {folder} (cache {cache_path})"
    good, skipped = scan_folder(folder, names)
    if not good:
        raise DataNotFoundError(f"the CelebA folder {folder} holds no readable image among its "
                                f"{len(names)} files (first: {', '.join(skipped[:3])})")
    store = ImageStore(np.array(good, dtype=object), size, crop, scan_skipped=skipped)
    if not cache_path:
        return store, f"{len(good)} images in {folder}"
    print(f"building the CelebA cache {cache_path} ({len(good)} images, once)", flush=True)
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(good), dtype=np.int64), np.array(good, str)))
    ds = ds.map(lambda i, p: (i, preprocess(tf.io.read_file(p), size, crop)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    manifest = {"fingerprint": key, "names": [os.path.basename(p) for p in good],
                "skipped": [os.path.basename(p) for p in skipped], "size": size, "crop": crop}
    _write_cache(cache_path, ds, len(good), size, manifest)
    return _folder_store(folder, size, crop, cache_dir)


def _tfds_store(size: int, crop: str, cache_dir: str | None, tfds_dir: str | None) -> tuple[ImageStore, str]:
    """The prepared TFDS ``celeb_a`` (train+validation+test, 202,599 images), via the cache."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(TFDS_NAME, data_dir=tfds_dir)
    n = sum(s.num_examples for s in builder.info.splits.values())
    cache_dir = cache_dir or os.path.join(builder.data_dir_root, "ladder_tf_cache")
    key = fingerprint({"tfds": TFDS_NAME, "version": str(builder.info.version), "n": n}, size, crop)
    cache_path = os.path.join(cache_dir, f"celeba-{size}-{crop}-{key}")
    names = [f"{TFDS_NAME}/{i}" for i in range(n)]
    if not os.path.exists(os.path.join(cache_path, "manifest.json")):
        print(f"building the CelebA cache {cache_path} from TFDS ({n} images, once)", flush=True)
        ds = builder.as_dataset(split="train+validation+test", shuffle_files=False)
        ds = ds.enumerate().map(lambda i, ex: (i, resize_image(ex["image"], size, crop)),
                                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        _write_cache(cache_path, ds, n, size, {"fingerprint": key, "names": names, "skipped": []})
    cache, manifest = _open_cache(cache_path)
    bad = np.zeros(n, bool)
    bad[manifest["bad_rows"]] = True
    return ImageStore(np.array(names, dtype=object), size, crop, cache, bad), \
        f"TensorFlow Datasets '{TFDS_NAME}' (cache {cache_path})"


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
            raise DataNotFoundError(f"the CelebA folder {data_dir} does not exist; point --data-dir "
                                    f"at the aligned JPEGs ({FOLDER_NAME})")
        if os.path.isdir(os.path.join(data_dir, FOLDER_NAME)):
            data_dir = os.path.join(data_dir, FOLDER_NAME)
        store, source = _folder_store(data_dir, size, crop, cache_dir)
    else:
        from ladder_tf.data.mnist import _tfds_prepared
        if not _tfds_prepared(TFDS_NAME):
            raise DataNotFoundError(f"no CelebA source: pass --data-dir with the aligned JPEG folder "
                                    f"({FOLDER_NAME}), or prepare TensorFlow Datasets '{TFDS_NAME}'")
        store, source = _tfds_store(size, crop, cache_dir, tfds_dir)
    train, test = split_indices(len(store.paths), test_size)
    return ImageData(ImageFiles(store, train), np.zeros(len(train), np.int64),
                     ImageFiles(store, test), np.zeros(len(test), np.int64), source)
