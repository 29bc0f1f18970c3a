"""ladder_tf: LaDDer (Lin & Clark, BMVC 2020) and its baseline priors in TensorFlow 2 / Keras.

The commands are ``ladder train | train-celeba | evaluate | reproduce | export | interpolate |
sample`` (``ladder_tf.commands``); importing the package itself starts nothing.
"""
__version__ = "0.1.0"
