"""Gaussian mixtures fitted in TensorFlow: LaDDer's hyper prior p(t) and the GMM prior.

- :class:`BayesianGaussianMixture`: a truncated Dirichlet-process (stick-breaking) or
  finite symmetric-Dirichlet mixture of K full-covariance Gaussians with conjugate
  Normal-Wishart priors, fitted by coordinate-ascent variational inference (Blei and
  Jordan, 2006); supplementary section B, Algorithm 1, the xi update. Same arguments,
  defaults and results (``weights_``, ``means_``, ``covariances_``) as scikit-learn's
  ``BayesianGaussianMixture(covariance_type='full')``, which the original code called.
- :class:`GaussianMixtureEM`: plain maximum-likelihood EM (scikit-learn's
  ``GaussianMixture``), with an optional diagonal jitter for the distribution it
  exposes (the original added 0.01 for the GMM prior's loss).

Why in TensorFlow: the mixture is refitted every epoch inside the training loop and
must be fast, checkpointable and exportable. One fit (initialisation and all
iterations) is one ``tf.function`` call; its input signature has N = None, so a refit
on a new sample never retraces. Fitted parameters live in fixed-shape ``tf.Variable``s
(K components always; dead components just get tiny weights), so checkpoints and
SavedModels hold them and graphs that use ``log_prob`` see the new values.

Tolerance: ``tol`` bounds the change of the *per-sample* objective between two
iterations (lower bound / N for the variational fit; mean log-likelihood for EM, as
scikit-learn's ``GaussianMixture``). scikit-learn's ``BayesianGaussianMixture`` tests
the unnormalised bound, so its ``tol`` equals ours times N.

``fit`` runs eagerly (between training steps); ``log_prob``, ``sample`` and
``distribution`` work eagerly and inside ``tf.function`` on float32 tensors.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from ladder_tf.model import elbo
from ladder_tf.model import mixture_cavi as cavi
from ladder_tf.model import mixture_ops as ops

tfd = tfp.distributions

_TINY32 = float(np.finfo(np.float32).tiny)


@dataclass
class FitResult:
    """Summary of one ``fit`` call (of the best of the ``n_init`` restarts).

    ``lower_bound``/``lower_bounds``: per-sample objective, final and per iteration
    (variational: ELBO / N up to a constant fixed during the fit; EM: mean log-lik).
    """

    n_iter: int
    converged: bool
    lower_bound: float
    lower_bounds: np.ndarray
    seconds: float


def _active_mask(weights: np.ndarray, threshold: float) -> np.ndarray:
    """Components with weight >= threshold; the heaviest one if none qualifies."""
    return (weights >= threshold) | (weights == weights.max())


class _Mixture(tf.Module):
    """Shared variables, publication of a fit, and the float32 density/sampling side."""

    _state_type = None  # cavi.VBState or cavi.EMState
    _kind = ""          # "vb" or "em"

    def __init__(self, n_components: int, dim: int, *, tol: float, reg_covar: float, max_iter: int,
                 n_init: int, warm_start: bool, seed: int, fit_dtype, covariance_jitter: float,
                 name: str | None):
        super().__init__(name=name)
        fit_dtype = tf.as_dtype(fit_dtype)
        for label, value, low in (("n_components", n_components, 1), ("dim", dim, 1),
                                  ("n_init", n_init, 1), ("max_iter", max_iter, 0)):
            if int(value) != value or value < low:
                raise ValueError(f"{label} must be an integer >= {low}; got {value!r}.")
        for label, value in (("tol", tol), ("reg_covar", reg_covar), ("covariance_jitter", covariance_jitter)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{label} must be a finite number >= 0; got {value!r}.")
        if fit_dtype not in (tf.float32, tf.float64):
            raise ValueError(f"fit_dtype must be tf.float32 or tf.float64; got {fit_dtype!r}.")
        self.n_components, self.dim = int(n_components), int(dim)
        self.tol, self.reg_covar, self.max_iter = float(tol), float(reg_covar), int(max_iter)
        self.n_init, self.warm_start, self.seed = int(n_init), bool(warm_start), int(seed)
        self.fit_dtype, self.covariance_jitter = fit_dtype, float(covariance_jitter)
        k, d = self.n_components, self.dim

        def var(shape, name, dtype=tf.float32):
            return tf.Variable(tf.zeros(shape, dtype), trainable=False, name=name)

        with self.name_scope:
            self.weights = var([k], "weights")
            self.means = var([k, d], "means")
            self.covariances = var([k, d, d], "covariances")
            self.scale_tril = var([k, d, d], "scale_tril")
            # log_prob's precomputed pieces: y = x @ proj - proj_shift, log w - log Z.
            self._proj = var([d, k * d], "proj")
            self._proj_shift = var([k * d], "proj_shift")
            self._log_coef = var([k], "log_coef")
            self.fitted = tf.Variable(False, trainable=False, name="fitted")
            self._state = self._state_type(*(var(s, f"post_{n}", fit_dtype) for n, s in
                                             cavi.state_shapes(self._kind, k, d).items()))
        self.reset_to_standard_normal()

    # -- subclass hooks ----------------------------------------------------------------
    def _fit_function(self):
        """The shared compiled fit for this model's shape (``cavi.fit_function``)."""
        raise NotImplementedError

    def _hyper(self) -> tuple:
        """The settings tuple passed to the compiled fit."""
        raise NotImplementedError

    def _public_from_state(self, state) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(weights, means, covariances) in the fit dtype."""
        raise NotImplementedError

    # -- fitting -------------------------------------------------------------------------
    def fit(self, x, *, max_iter: int | None = None, warm_start: bool | None = None,
            n_init: int | None = None, tol: float | None = None) -> FitResult:
        """Fits the mixture to ``x`` (N, dim) and stores the result in the variables.

        Runs ``n_init`` seeded restarts (seeds (seed, 0), (seed, 1), ...: repeatable)
        and keeps the best lower bound, or, with ``warm_start`` after a first fit (also
        one restored from a checkpoint), one run starting from the stored posterior.
        Stops when the per-sample objective changes by less than ``tol`` (never after
        the first iteration) or after ``max_iter``. The keyword arguments override the
        instance's settings for this call only. Raises ``ValueError`` for bad input.
        """
        start = time.perf_counter()
        arr = ops.validate_data(x, self.dim, self.n_components)
        x_t = tf.constant(arr, dtype=self.fit_dtype)
        warm_start = self.warm_start if warm_start is None else warm_start
        max_iter = self.max_iter if max_iter is None else int(max_iter)
        tol = self.tol if tol is None else float(tol)
        warm = warm_start and bool(self.fitted.numpy())
        fit_fn, hyper = self._fit_function(), self._hyper()
        best = None
        for i in range(1 if warm else (n_init or self.n_init)):
            try:
                out = fit_fn(x_t, tf.constant([self.seed, i], tf.int32), tf.constant(warm),
                             tf.constant(max_iter, tf.int32), tf.constant(tol, self.fit_dtype),
                             tuple(v.read_value() for v in self._state), hyper)
            except tf.errors.InvalidArgumentError as err:  # a failed Cholesky factorisation
                raise FloatingPointError("The mixture fit lost positive definiteness; increase "
                                         f"reg_covar (now {self.reg_covar}) or rescale the data.") from err
            if best is None or float(out["lower_bound"]) > float(best["lower_bound"]):
                best = out
        if not all(bool(tf.reduce_all(tf.math.is_finite(t))) for t in best["state"]):
            raise FloatingPointError("The mixture fit produced non-finite parameters; "
                                     "increase reg_covar or use fit_dtype=tf.float64.")
        for variable, value in zip(self._state, best["state"]):
            variable.assign(value)
        self.fitted.assign(True)
        self._publish(*self._public_from_state(best["state"]))
        history = best["history"].numpy()
        return FitResult(n_iter=int(best["n_iter"]), converged=bool(best["converged"]),
                         lower_bound=float(history[-1]) if history.size else float("-inf"),
                         lower_bounds=history, seconds=time.perf_counter() - start)

    def _publish(self, weights, means, cov) -> None:
        """Writes the float32 parameters and log_prob's precomputed factors (``ops.publish_function``)."""
        publish = ops.publish_function(self.n_components, self.dim, self.fit_dtype.name)
        values = publish(weights, means, cov, tf.constant(self.covariance_jitter, self.fit_dtype))
        for var, value in zip((self.weights, self.means, self.covariances, self.scale_tril, self._proj,
                               self._proj_shift, self._log_coef), values):
            var.assign(value)

    def reset_to_standard_normal(self) -> None:
        """Algorithm 1's "xi <- initialise as unit Gaussian": K equal-weight N(0, I) components.

        The mixture density is then exactly N(0, I) (plus ``covariance_jitter`` on the
        diagonal for EM). Also forgets the previous fit, so the next fit initialises afresh.
        """
        k, d, dt = self.n_components, self.dim, self.fit_dtype
        self.fitted.assign(False)
        self._publish(tf.fill([k], tf.constant(1.0 / k, dt)), tf.zeros([k, d], dt),
                      tf.eye(d, batch_shape=[k], dtype=dt))

    # -- using the fit -------------------------------------------------------------------
    def log_prob(self, x) -> tf.Tensor:
        """log p(x) of the full mixture; x (..., dim) float32 -> (...).

        Vectorised: one (M, d) x (d, K*d) product with M the flattened batch size, then a
        log-sum-exp over components. No factorisation per call (all precomputed at fit).
        """
        x = tf.cast(tf.convert_to_tensor(x), tf.float32)
        k, d = self.n_components, self.dim
        y = tf.reshape(tf.matmul(tf.reshape(x, [-1, d]), self._proj) - self._proj_shift, [-1, k, d])
        lp = tf.reduce_logsumexp(self._log_coef - 0.5 * tf.reduce_sum(tf.square(y), axis=-1), axis=-1)
        return tf.reshape(lp, tf.shape(x)[:-1])

    def expected_log_prob(self, mean: tf.Tensor, std: tf.Tensor, n_samples: int, seed: tf.Tensor) -> tf.Tensor:
        """Monte-Carlo E_{N(mean, diag(std^2))}[log p(x)] with ``n_samples`` draws: (B,).

        mean, std: (B, dim) float32; ``seed``: stateless pair. The same estimate (same
        draws, ``elbo.mc_normal_draws``) as ``elbo.monte_carlo_cross_entropy(self.log_prob,
        ...)``. While a draw's quadratic-form features, dim (dim + 3) / 2 numbers, are
        fewer than its K * dim component deviations (dim < 2K - 3: LaDDer's t, not a
        CelebA-sized z), it is computed as a quadratic form in the draws
        (``ops.expected_log_prob_mc``), which forms no (S, B, K, dim) tensor forward or
        backward; otherwise by the direct evaluation. Differentiable in mean and std.
        """
        k, d = self.n_components, self.dim
        if d + 3 >= 2 * k:
            return elbo.monte_carlo_cross_entropy(self.log_prob, mean, std, n_samples, seed)
        prec_chol = tf.transpose(tf.reshape(self._proj, [d, k, d]), [1, 0, 2])
        eps = elbo.mc_normal_draws(mean, n_samples, seed)
        return ops.expected_log_prob_mc(mean, std, eps, tf.convert_to_tensor(self.means), prec_chol,
                                        tf.convert_to_tensor(self._log_coef))

    def distribution(self, active_only: bool = False, threshold: float = 1e-2,
                     jitter: bool = True) -> tfd.MixtureSameFamily:
        """float32 ``MixtureSameFamily(Categorical, MultivariateNormalTriL)`` of the fit.

        ``active_only``: keep components with weight >= ``threshold`` (at least the
        heaviest), weights renormalised: the original's "active" mixture. ``jitter``:
        False gives the fitted covariances without ``covariance_jitter``.
        """
        weights, loc = tf.convert_to_tensor(self.weights), self.means
        tril = self.scale_tril if jitter or not self.covariance_jitter else \
            tf.linalg.cholesky(tf.convert_to_tensor(self.covariances))
        if active_only:
            mask = tf.logical_or(weights >= threshold, tf.equal(weights, tf.reduce_max(weights)))
            weights = tf.boolean_mask(weights, mask)
            weights = weights / tf.reduce_sum(weights)
            loc, tril = tf.boolean_mask(loc, mask), tf.boolean_mask(tril, mask)
        return tfd.MixtureSameFamily(
            tfd.Categorical(logits=tf.math.log(tf.maximum(weights, _TINY32))),
            tfd.MultivariateNormalTriL(loc=tf.convert_to_tensor(loc), scale_tril=tf.convert_to_tensor(tril)))

    def sample(self, n: int, seed=None, jitter: bool = True) -> tf.Tensor:
        """n draws (n, dim) float32 from the full mixture (``seed``: int or stateless pair)."""
        return self.distribution(jitter=jitter).sample(n, seed=seed)

    def active_parameters(self, threshold: float = 1e-2) -> dict:
        """numpy weights (renormalised), means and covariances of components with
        weight >= ``threshold`` (at least the heaviest one)."""
        w = self.weights.numpy()
        mask = _active_mask(w, threshold)
        return {"weights": w[mask] / w[mask].sum(), "means": self.means.numpy()[mask],
                "covariances": self.covariances.numpy()[mask]}

    def to_npz_dict(self, threshold: float = 1e-2) -> dict:
        """The original's GM_prior_info.npz arrays: full and active (renormalised) fits.

        Covariances are the fitted ones, without ``covariance_jitter``.
        """
        active = self.active_parameters(threshold)
        return {"w_full": self.weights.numpy(), "m_full": self.means.numpy(),
                "K_full": self.covariances.numpy(), "w_active": active["weights"],
                "m_active": active["means"], "K_active": active["covariances"]}


def _covariance_from_prec_chol(prec_chol: tf.Tensor) -> tf.Tensor:
    """(U U^T)^{-1} = L L^T with L = U^{-T}, by a triangular solve."""
    eye = tf.eye(prec_chol.shape[-1], batch_shape=[prec_chol.shape[0]], dtype=prec_chol.dtype)
    chol = tf.linalg.triangular_solve(tf.linalg.matrix_transpose(prec_chol), eye, lower=True)
    return tf.matmul(chol, chol, transpose_b=True)


class BayesianGaussianMixture(_Mixture):
    """Variational Dirichlet-process / Dirichlet Gaussian mixture (full covariances).

    Arguments follow scikit-learn's ``BayesianGaussianMixture``; priors left as None get
    its defaults, computed from each fit's data: ``weight_concentration_prior`` 1/K,
    ``mean_prior`` the data mean, ``degrees_of_freedom_prior`` dim, ``covariance_prior``
    the data covariance (plus ``reg_covar`` on the diagonal, which keeps degenerate data
    finite). ``tol`` is per sample (module docstring). Variables: ``weights`` (K,),
    ``means`` (K, dim), ``covariances`` and ``scale_tril`` (K, dim, dim), float32; the
    variational posterior (``_state``, fit dtype) is kept for warm starts and checkpoints.
    """

    _state_type = cavi.VBState
    _kind = "vb"

    def __init__(self, n_components: int, dim: int, *, weight_concentration_prior_type: str = "dirichlet_process",
                 weight_concentration_prior: float | None = 0.1, mean_precision_prior: float = 1.0,
                 mean_prior=None, degrees_of_freedom_prior: float | None = None, covariance_prior=None,
                 tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 1000, n_init: int = 1,
                 warm_start: bool = False, seed: int = 0, fit_dtype=tf.float64, name: str | None = None):
        if weight_concentration_prior_type not in ("dirichlet_process", "dirichlet_distribution"):
            raise ValueError("weight_concentration_prior_type must be 'dirichlet_process' or "
                             f"'dirichlet_distribution'; got {weight_concentration_prior_type!r}.")
        self.dirichlet_process = weight_concentration_prior_type == "dirichlet_process"
        self.weight_concentration_prior_type = weight_concentration_prior_type
        gamma = 1.0 / n_components if weight_concentration_prior is None else weight_concentration_prior
        if not gamma > 0 or not mean_precision_prior > 0:
            raise ValueError("weight_concentration_prior and mean_precision_prior must be > 0; "
                             f"got {weight_concentration_prior!r} and {mean_precision_prior!r}.")
        self.weight_concentration_prior, self.mean_precision_prior = float(gamma), float(mean_precision_prior)
        dof = float(dim) if degrees_of_freedom_prior is None else float(degrees_of_freedom_prior)
        if not dof > dim - 1:
            raise ValueError(f"degrees_of_freedom_prior must be > dim - 1 = {dim - 1}; got {dof}.")
        self.degrees_of_freedom_prior = dof
        self.mean_prior = None if mean_prior is None else np.asarray(mean_prior, np.float64)
        if self.mean_prior is not None and self.mean_prior.shape != (dim,):
            raise ValueError(f"mean_prior must have shape ({dim},); got {self.mean_prior.shape}.")
        self.covariance_prior = None if covariance_prior is None else np.asarray(covariance_prior, np.float64)
        if self.covariance_prior is not None:
            if self.covariance_prior.shape != (dim, dim):
                raise ValueError(f"covariance_prior must have shape ({dim}, {dim}); "
                                 f"got {self.covariance_prior.shape}.")
            if (not np.allclose(self.covariance_prior, self.covariance_prior.T)
                    or np.any(np.linalg.eigvalsh(self.covariance_prior) <= 0)):
                raise ValueError("covariance_prior must be symmetric positive definite.")
        super().__init__(n_components, dim, tol=tol, reg_covar=reg_covar, max_iter=max_iter, n_init=n_init,
                         warm_start=warm_start, seed=seed, fit_dtype=fit_dtype, covariance_jitter=0.0, name=name)

    def _fit_function(self):
        return cavi.fit_function("vb", self.n_components, self.dim, self.fit_dtype.name, self.dirichlet_process)

    def _hyper(self) -> tuple:
        dt, d = self.fit_dtype, self.dim
        mean = np.zeros(d) if self.mean_prior is None else self.mean_prior
        cov = np.eye(d) if self.covariance_prior is None else self.covariance_prior
        return (tf.constant(self.weight_concentration_prior, dt), tf.constant(self.mean_precision_prior, dt),
                tf.constant(self.degrees_of_freedom_prior, dt), tf.constant(self.reg_covar, dt),
                tf.constant(mean, dt), tf.constant(cov, dt), tf.constant(self.mean_prior is None),
                tf.constant(self.covariance_prior is None))

    def _public_from_state(self, state):
        s = cavi.VBState(*state)
        return (cavi.mean_weights(s.conc_a, s.conc_b, self.dirichlet_process), s.means,
                _covariance_from_prec_chol(s.prec_chol))


class GaussianMixtureEM(_Mixture):
    """Maximum-likelihood Gaussian mixture by EM (scikit-learn's ``GaussianMixture``, full).

    ``covariance_jitter`` is added to the covariance diagonals of the distribution that
    ``log_prob``/``sample``/``distribution`` use (and to ``scale_tril``), not to the
    stored ``covariances``. ``tol`` bounds the change of the mean log-likelihood.
    """

    _state_type = cavi.EMState
    _kind = "em"

    def __init__(self, n_components: int, dim: int, *, tol: float = 1e-3, reg_covar: float = 1e-6,
                 max_iter: int = 1000, n_init: int = 1, warm_start: bool = False,
                 covariance_jitter: float = 0.0, seed: int = 0, fit_dtype=tf.float64, name: str | None = None):
        super().__init__(n_components, dim, tol=tol, reg_covar=reg_covar, max_iter=max_iter, n_init=n_init,
                         warm_start=warm_start, seed=seed, fit_dtype=fit_dtype,
                         covariance_jitter=covariance_jitter, name=name)

    def _fit_function(self):
        return cavi.fit_function("em", self.n_components, self.dim, self.fit_dtype.name)

    def _hyper(self) -> tuple:
        return (tf.constant(self.reg_covar, self.fit_dtype),)

    def _public_from_state(self, state):
        s = cavi.EMState(*state)
        return s.weights, s.means, _covariance_from_prec_chol(s.prec_chol)
