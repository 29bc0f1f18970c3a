"""Evaluation of trained models: FID (Table 1 of the paper) and importance-sampled log p(x).

Modules: ``frechet`` (Fréchet distance, streaming feature statistics), ``fid`` (the Table 1
protocol and its statistics cache), ``features`` (InceptionV3 and classifier features),
``fid_inception`` / ``fid_weights`` / ``torchscript_reader`` (the standard FID network and
its converted weights), ``classifier`` (the project's own feature CNN), ``nll`` (log p(x)),
``report`` (JSON / Markdown tables). The command line is ``ladder evaluate``.

Everything here takes a model through ``ladder_tf.model.trained.TrainedModel``, never a run
directory: ``ladder_tf.workflows.trained.load_model`` turns a path into one. A metric a
model's capabilities rule out (log p(x) of a SavedModel export) is reported as unsupported.
"""
