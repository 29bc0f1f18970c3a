"""The layout of a ladder_tf SavedModel export, shared by the writer (ladder_tf.workflows.export)
and the reader (ladder_tf.workflows.saved_model): file and asset names, the format's version."""
from __future__ import annotations

SAVED_MODEL_FILE = "saved_model.pb"   # what makes a directory a SavedModel
CONFIG_ASSET = "config.json"          # assets/config.json: the effective config
INFO_ASSET = "export_info.json"       # assets/export_info.json: prior, signatures, provenance
FORMAT_VERSION = 1
