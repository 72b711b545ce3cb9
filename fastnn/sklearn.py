"""fastnn as a scikit-learn estimator: `fastnn.sklearn.MLPClassifier`.

    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from fastnn.sklearn import MLPClassifier
    >>> model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,)))
    >>> model.fit(X_train, y_train).score(X_test, y_test)

It takes the parameters of `sklearn.neural_network.MLPClassifier` where the concept is the same,
so swapping one for the other is a change of import, and trains with fastnn's compiled loops.
Needs the extra: pip install "fastnn-loops[sklearn]".
"""

from __future__ import annotations

import math
import multiprocessing
import numbers
import warnings
from collections.abc import Sequence

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, unique_labels
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        'fastnn.sklearn needs scikit-learn (1.6 or newer): pip install "fastnn-loops[sklearn]"'
    ) from error

import numpy as np

from .api import fit as fit_network
from .api import numba_threads, print_epochs
from .model import DTYPES, Network
from .training import TrainConfig, TrainingState, predict_outputs

# scikit-learn's activation names -> fastnn's
ACTIVATIONS = {"relu": "relu", "logistic": "sigmoid", "tanh": "tanh"}
SOLVERS = ("adam", "sgd")


def in_worker_process() -> bool:
    """True in a process started by another Python process for parallel work: joblib's loky
    workers (GridSearchCV, cross_val_score with n_jobs), multiprocessing pools, dask's workers.
    Their parent_process() is set; a script, a notebook kernel or pytest's has none."""
    return multiprocessing.parent_process() is not None


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """A multi-layer perceptron classifier trained by fastnn's compiled loops.

    The parameters are those of `sklearn.neural_network.MLPClassifier` where the concept is the
    same, with its defaults, so an existing grid or pipeline works unchanged; fastnn's own follow.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        Units of each hidden layer.
    activation : {"relu", "logistic", "tanh"}, default="relu"
        The hidden layers' activation ("logistic" is fastnn's sigmoid). scikit-learn's
        "identity" is not supported (a ValueError says so).
    solver : {"adam", "sgd"}, default="adam"
        "sgd" with `momentum` > 0 is fastnn's momentum optimizer (classical momentum:
        v = momentum·v + g, w = w − lr·v, the same steps as scikit-learn's with
        nesterovs_momentum=False), with momentum=0 plain SGD. "lbfgs" is not supported.
    alpha : float, default=1e-4
        L2 penalty, defined as scikit-learn defines it: each mini-batch's loss gains
        0.5·alpha·Σ‖W‖² / batch_size (weights, not biases). fastnn's kernels add
        (l2/2)·Σ‖W‖², so fastnn trains with l2 = alpha / batch_size. The batch_size is the one
        used (see below); scikit-learn divides by the rows of each batch, so the two differ only
        on an epoch's last, shorter batch.
    batch_size : int or "auto", default="auto"
        Samples per mini-batch; "auto" is min(200, n_samples) as in scikit-learn. A larger
        number is clipped to the samples trained on, with a warning.
    learning_rate_init : float, default=1e-3
        The step size (a constant: no learning-rate schedule).
    max_iter : int, default=200
        Most epochs (passes over the data) a call to `fit` makes.
    random_state : int, RandomState instance or None, default=None
        Decides the initial weights, the validation split and each epoch's order. An int gives
        the same network as `fastnn.train(..., seed=random_state)` with the same settings.
    tol : float, default=1e-4
        Training stops when, for more than `n_iter_no_change` consecutive epochs, the training
        loss fails to fall by `tol` (or, with early_stopping, the validation accuracy fails to
        rise by `tol`), as in scikit-learn.
    verbose : bool, default=False
        Print fastnn's epoch table (loss, train and validation accuracy, seconds per epoch).
    warm_start : bool, default=False
        `fit` starts from the weights of the previous fit (with a new optimizer state) instead
        of new random weights. The classes must be the same.
    momentum : float, default=0.9
        The momentum of solver="sgd".
    early_stopping : bool, default=False
        Hold out `validation_fraction` of the samples (drawn at random, not stratified), measure
        accuracy on them after each epoch, stop when it stops improving, and keep the weights of
        the best epoch.
    validation_fraction : float, default=0.1
        The share of samples held out by early_stopping (ceil(fraction · n_samples)).
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's.
    n_iter_no_change : int, default=10
        Epochs without improvement by `tol` before stopping.
    loss : {"cross-entropy", "mse"}, default="cross-entropy"
        fastnn's: softmax outputs with cross-entropy (as scikit-learn, which for two classes uses
        one logistic output instead of two softmax ones), or sigmoid outputs with squared error.
    init : {"he", "glorot", "uniform"} or None, default=None
        fastnn's initialisation; None: he for relu, glorot otherwise.
    backend : {"numba", "numpy"}, default="numba"
        fastnn's compiled kernels, or its NumPy reference (slow; for checking).
    dtype : {"float32", "float64"}, default="float32"
        The float type of the weights and of the computation.
    threads : int or None, default=None
        Numba threads for fit and predict. None: all of them, except in a worker process
        (GridSearchCV or cross_val_score with n_jobs > 1, a multiprocessing pool), where it is
        1, so parallel jobs do not fight over the cores.

    Inputs are used as given, as scikit-learn's estimators use them (no scaling of uint8
    images: put a scaler in the pipeline). Labels may be anything scikit-learn accepts: ints,
    strings, ...; they are encoded to output units in sorted order (`classes_`).

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only if X had string column names
    coefs_ : list of ndarray
        coefs_[i] is (units of layer i, units of layer i + 1): fastnn's W[i+1] transposed.
    intercepts_ : list of ndarray
        intercepts_[i] is fastnn's b[i+1].
    loss_curve_ : list of float
        Each epoch's mean training loss, L2 penalty included.
    validation_scores_ : list of float or None
        Each epoch's accuracy on the held-out samples, with early_stopping (else None).
    best_validation_score_ : float or None
    best_loss_ : float or None
        The lowest training loss (without early_stopping; else None).
    n_iter_ : int
        Epochs trained.
    t_ : int
        Samples the optimizer has stepped over.
    n_layers_ : int
    n_outputs_ : int
        Output units: one per class.
    out_activation_ : str
        "softmax" (loss="cross-entropy") or "logistic" (loss="mse").
    n_threads_ : int
        Numba threads the last fit ran on.
    """

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate_init: float = 0.001,
        max_iter: int = 200,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        loss: str = "cross-entropy",
        init: str | None = None,
        backend: str = "numba",
        dtype: str = "float32",
        threads: int | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.loss = loss
        self.init = init
        self.backend = backend
        self.dtype = dtype
        self.threads = threads

    # ---- fitting ------------------------------------------------------------------------------

    def fit(self, X, y) -> MLPClassifier:
        """Train on X (n_samples, n_features) and y (n_samples,) for up to max_iter epochs."""
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X, y, classes=None) -> MLPClassifier:
        """One epoch over (X, y), continuing from the weights and optimizer state so far.

        The first call needs `classes`, every label any call will see (as in scikit-learn).
        """
        return self._fit(X, y, incremental=True, classes=classes)

    def _fit(self, X, y, *, incremental: bool, classes=None) -> MLPClassifier:
        settings = self._checked_settings()
        fitted = hasattr(self, "coefs_")
        if incremental:
            first_call = not fitted
        else:
            first_call = not (self.warm_start and fitted)
        X, y = validate_data(self, X, y, reset=first_call, dtype=DTYPES[self.dtype])
        check_classification_targets(y)

        if first_call:
            if incremental:
                if classes is None:
                    raise ValueError("classes must be passed on the first call to partial_fit")
                found = unique_labels(classes)
            else:
                found = unique_labels(y)
            if len(found) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least two classes; "
                    f"y has 1 class: {found[0]!r}"
                )
            self.classes_ = found
        else:
            if (
                incremental
                and classes is not None
                and not np.array_equal(unique_labels(classes), self.classes_)
            ):
                raise ValueError(
                    f"classes={list(classes)!r} is not the same as on the first call to "
                    f"partial_fit ({list(self.classes_)!r})"
                )
            unknown = np.setdiff1d(unique_labels(y), self.classes_)
            if len(unknown):
                raise ValueError(
                    f"y holds classes not in classes_ {list(self.classes_)!r}: {list(unknown)!r}"
                )
            if not incremental and not np.array_equal(unique_labels(y), self.classes_):
                raise ValueError(
                    "warm_start can only be used where y has the same classes as in the "
                    "previous call to fit"
                )
        if not first_call and tuple(W.shape[1] for W in self.coefs_[:-1]) != settings["hidden"]:
            raise ValueError(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} differs from the fitted "
                f"network's {tuple(W.shape[1] for W in self.coefs_[:-1])}: warm_start and "
                "partial_fit continue the same network"
            )
        labels = np.searchsorted(self.classes_, y).astype(np.int64)

        n_samples = len(X)
        early_stopping = self.early_stopping and not incremental
        dev_size = math.ceil(self.validation_fraction * n_samples) if early_stopping else 0
        if early_stopping and not 1 <= dev_size <= n_samples - 1:
            raise ValueError(
                f"early_stopping holds out validation_fraction={self.validation_fraction} of "
                f"{n_samples} samples: {dev_size}; that must leave at least one on each side"
            )
        n_train = n_samples - dev_size
        if self.batch_size == "auto":
            batch_size = min(200, n_train)
        else:
            if self.batch_size > n_train:
                warnings.warn(
                    f"batch_size={self.batch_size} is larger than the {n_train} samples "
                    f"trained on; using {n_train}",
                    UserWarning,
                    stacklevel=3,
                )
            batch_size = min(int(self.batch_size), n_train)

        random_state = self.random_state
        if isinstance(random_state, numbers.Integral):
            seed = int(random_state)
        else:
            seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))

        if first_call:
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_ = []
            self.best_loss_ = None if early_stopping else np.inf
            self.validation_scores_ = [] if early_stopping else None
            self.best_validation_score_ = -np.inf if early_stopping else None
            resume = None
        else:
            resume = self._resume_state(seed, keep_optimizer=incremental)
            if self.best_loss_ is None and not early_stopping:
                self.best_loss_ = np.inf
            if early_stopping and self.validation_scores_ is None:
                self.validation_scores_, self.best_validation_score_ = [], -np.inf
        first_epoch = 0 if resume is None else resume.epoch
        config = TrainConfig(
            hidden=settings["hidden"],
            activation=settings["activation"],
            loss=self.loss,
            init=self.init,
            optimizer=settings["optimizer"],
            lr=float(self.learning_rate_init),
            l2=float(self.alpha) / batch_size,
            epochs=first_epoch + (1 if incremental else int(self.max_iter)),
            batch_size=batch_size,
            dev_size=dev_size,
            patience=None,  # the stopping rule is scikit-learn's, in watch() below
            seed=seed,
            backend=self.backend,
            dtype=self.dtype,
            momentum=float(self.momentum) if settings["optimizer"] == "momentum" else 0.9,
            beta1=float(self.beta_1),
            beta2=float(self.beta_2),
            eps=float(self.epsilon),
        )

        no_improvement = 0
        best_theta = None
        converged = False
        last_state = None

        def watch(state: TrainingState) -> None:
            # scikit-learn's _update_no_improvement_count and stopping test, after each epoch
            nonlocal no_improvement, best_theta, converged, last_state
            import numba

            last_state = state
            record = state.history[-1]
            self.n_threads_ = numba.get_num_threads()
            self.loss_curve_.append(record.loss)
            self.n_iter_ += 1
            self.t_ += n_train
            if incremental:  # one epoch a call: no stopping rule, but best_loss_ as sklearn's
                self.best_loss_ = min(self.best_loss_, record.loss)
                return
            if early_stopping:
                score = record.dev_accuracy
                self.validation_scores_.append(score)
                improved = score >= self.best_validation_score_ + self.tol
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best_theta = state.theta.copy()
            else:
                improved = record.loss <= self.best_loss_ - self.tol
                self.best_loss_ = min(self.best_loss_, record.loss)
            no_improvement = 0 if improved else no_improvement + 1
            if no_improvement > self.n_iter_no_change:
                converged = state.stopped_early = True

        threads = self.threads
        if threads is None and in_worker_process():
            threads = 1
        model = fit_network(
            config,
            X,
            labels,
            classes=np.arange(len(self.classes_)),
            threads=threads,
            on_epoch=[print_epochs()] if self.verbose else [],
            resume=resume,
            on_state=watch,
        )
        network = model.network
        if best_theta is not None:
            network.theta = best_theta
        self._set_weights(network)
        self._optimizer_state = (
            last_state.state1.copy(),
            last_state.state2.copy(),
            last_state.step,
        )
        if not incremental and not converged:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _checked_settings(self) -> dict:
        """The parameters that need translating, checked: a ValueError names a bad one."""
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
        if not sizes or any(not isinstance(size, numbers.Integral) or size < 1 for size in sizes):
            raise ValueError(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r}: every layer needs at least "
                "one unit"
            )
        if self.activation == "identity":
            raise ValueError(
                "activation='identity' is not supported by fastnn: choose 'relu', 'logistic' "
                "or 'tanh'"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation={self.activation!r}: choose one of 'relu', 'logistic', 'tanh'"
            )
        if self.solver not in SOLVERS:
            raise ValueError(
                f"solver={self.solver!r} is not supported by fastnn: choose 'adam' or 'sgd'"
            )
        if not (self.batch_size == "auto" or _whole(self.batch_size, 1)):
            raise ValueError(f"batch_size={self.batch_size!r}: a whole number ≥ 1, or 'auto'")
        for name in ("max_iter", "n_iter_no_change"):
            if not _whole(getattr(self, name), 1):
                raise ValueError(f"{name}={getattr(self, name)!r} must be a whole number ≥ 1")
        for name in ("learning_rate_init", "epsilon"):
            if not _real(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be a number > 0")
        for name in ("alpha", "tol", "momentum"):
            if not _real(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be a number ≥ 0")
        for name in ("beta_1", "beta_2", "validation_fraction"):
            if not _real(getattr(self, name)) or not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be in (0, 1)")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r}: choose 'float32' or 'float64'")
        if self.solver == "adam":
            optimizer = "adam"
        else:
            optimizer = "momentum" if self.momentum > 0 else "sgd"
        return {
            "hidden": tuple(int(size) for size in sizes),
            "activation": ACTIVATIONS[self.activation],
            "optimizer": optimizer,
        }

    def _resume_state(self, seed: int, keep_optimizer: bool) -> TrainingState:
        """Training state that continues from the current weights: partial_fit keeps the
        optimizer's moments and step count; warm_start begins them anew, as scikit-learn."""
        theta = self._network().theta.copy()
        state1, state2, step = self._optimizer_state
        if not keep_optimizer:
            state1, state2, step = np.zeros_like(theta), np.zeros_like(theta), 0
        return TrainingState(
            theta=theta,
            state1=state1.astype(theta.dtype, copy=True),
            state2=state2.astype(theta.dtype, copy=True),
            best_theta=theta.copy(),
            rng_state=np.random.default_rng([seed, self.n_iter_]).bit_generator.state,
            epoch=0,
            step=step,
        )

    def _set_weights(self, network: Network) -> None:
        self.coefs_ = [np.ascontiguousarray(W.T) for W, _ in network.parameters()]
        self.intercepts_ = [b.copy() for _, b in network.parameters()]
        self.n_layers_ = len(network.sizes)
        self.n_outputs_ = network.sizes[-1]
        self.out_activation_ = "softmax" if self.loss == "cross-entropy" else "logistic"

    # ---- predicting ---------------------------------------------------------------------------

    def _network(self) -> Network:
        """The network of coefs_ and intercepts_ (which a user may have changed)."""
        sizes = (self.coefs_[0].shape[0], *(W.shape[1] for W in self.coefs_))
        layers = zip(self.coefs_, self.intercepts_, strict=True)
        theta = np.concatenate([part for W, b in layers for part in (W.T.ravel(), b)])
        theta = theta.astype(DTYPES[self.dtype])
        activation = ACTIVATIONS.get(self.activation, self.activation)
        return Network(tuple(int(n) for n in sizes), activation, self.loss, theta)

    def predict_proba(self, X) -> np.ndarray:
        """(n_samples, n_classes): the output layer, rows summing to 1, columns as classes_."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=DTYPES[self.dtype])
        threads = self.threads
        if threads is None and in_worker_process():
            threads = 1
        with numba_threads(threads):
            outputs = predict_outputs(self._network(), X, self.backend)
        proba = outputs.astype(np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X) -> np.ndarray:
        """The logarithm of predict_proba."""
        return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """(n_samples,): the class of the largest output for each sample."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]


def _whole(value: object, minimum: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum


def _real(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )
