"""fastnn.sklearn.MLPClassifier: scikit-learn's own estimator checks, then what a practitioner
does with it (pipelines, cross-validation, grid search with two processes, partial_fit,
warm_start, string labels, early stopping, clone, pickle) on data sets that ship with
scikit-learn, which fastnn was never tuned on, against scikit-learn's own MLPClassifier."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import pickle
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    cross_val_score,
    cross_validate,
    train_test_split,
)
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastnn
from fastnn.sklearn import MLPClassifier

# How far below scikit-learn's own MLPClassifier fastnn's mean accuracy may be on the same folds
# before a test fails: one sample in a hundred.
ACCURACY_TOLERANCE = 0.01

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ---- scikit-learn's own checks ------------------------------------------------------------------


@parametrize_with_checks(
    [
        MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0),
        # the other kernels (two hidden layers: the per-equation path), sgd, early stopping
        MLPClassifier(
            hidden_layer_sizes=(8, 6),
            activation="tanh",
            solver="sgd",
            learning_rate_init=0.05,
            early_stopping=True,
            validation_fraction=0.2,
            max_iter=30,
            random_state=0,
        ),
    ]
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# ---- no scikit-learn --------------------------------------------------------------------------


def test_fastnn_imports_without_scikit_learn_and_fastnn_sklearn_says_how_to_install_it():
    code = (
        "import sys\n"
        "sys.modules['sklearn'] = None\n"
        "import fastnn\n"
        "assert callable(fastnn.train)\n"
        "try:\n"
        "    import fastnn.sklearn\n"
        "except ImportError as error:\n"
        "    print(error)\n"
        "else:\n"
        "    raise SystemExit('imported without scikit-learn')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert 'pip install "fastnn-loops[sklearn]"' in done.stdout


# ---- accuracy against scikit-learn's MLPClassifier, on data fastnn has never seen ---------------

DATASETS = {"digits": load_digits, "wine": load_wine, "breast_cancer": load_breast_cancer}
SETTINGS = dict(hidden_layer_sizes=(64,), max_iter=200, random_state=0)


@pytest.mark.parametrize("dataset", DATASETS)
def test_cross_validated_pipeline_is_as_accurate_as_scikit_learns_mlp(dataset):
    X, y = DATASETS[dataset](return_X_y=True)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    ours = cross_val_score(
        make_pipeline(StandardScaler(), MLPClassifier(**SETTINGS)), X, y, cv=folds
    )
    theirs = cross_val_score(
        make_pipeline(StandardScaler(), SklearnMLP(**SETTINGS)), X, y, cv=folds
    )
    print(f"{dataset}: fastnn {ours.mean():.4f} {ours}, scikit-learn {theirs.mean():.4f} {theirs}")
    assert ours.mean() >= theirs.mean() - ACCURACY_TOLERANCE
    assert ours.mean() > 0.9


def test_grid_search_with_two_processes_is_as_accurate_as_scikit_learns():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    grid = {"mlp__alpha": [1e-4, 1e-1], "mlp__hidden_layer_sizes": [(8,), (32,)]}
    scores = {}
    for name, estimator in (("fastnn", MLPClassifier), ("scikit-learn", SklearnMLP)):
        pipeline = Pipeline([("scale", MinMaxScaler()), ("mlp", estimator(random_state=0))])
        search = GridSearchCV(pipeline, grid, cv=3, n_jobs=2).fit(X_train, y_train)
        scores[name] = search.score(X_test, y_test)
        print(name, search.best_params_, f"cv {search.best_score_:.4f} test {scores[name]:.4f}")
    assert scores["fastnn"] >= scores["scikit-learn"] - ACCURACY_TOLERANCE
    assert isinstance(search.best_estimator_, Pipeline)


# ---- worker processes use one Numba thread ---------------------------------------------------


def test_copies_fitted_by_cross_validation_jobs_use_one_numba_thread():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    estimator = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    result = cross_validate(estimator, X, y, cv=2, n_jobs=2, return_estimator=True)
    assert [copy.n_threads_ for copy in result["estimator"]] == [1, 1]
    # in this process, fit uses every thread Numba has
    assert clone(estimator).fit(X, y).n_threads_ == numba.get_num_threads()


def fit_and_count_threads(threads):
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0, threads=threads)
    return model.fit(X, y).n_threads_


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_a_plain_process_pool_worker_uses_one_thread_unless_threads_is_set():
    # Unlike joblib's workers, a multiprocessing pool's do not limit NUMBA_NUM_THREADS: here
    # only MLPClassifier's own rule makes it one.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(fit_and_count_threads, None).result() == 1
        assert pool.submit(fit_and_count_threads, 2).result() == 2


# ---- the scikit-learn interface -----------------------------------------------------------------


def scaled(load):
    X, y = load(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_same_settings_give_the_weights_fastnn_train_gives():
    # the mapping of parameters, alpha -> l2 = alpha / batch_size included, bit for bit
    X, y = scaled(load_wine)
    settings = dict(solver="sgd", momentum=0.5, alpha=1e-3, batch_size=50, learning_rate_init=0.01)
    ours = MLPClassifier(
        hidden_layer_sizes=(7,), max_iter=3, n_iter_no_change=100, random_state=3, dtype="float64",
        **settings,
    ).fit(X, y)  # fmt: skip
    model = fastnn.train(
        X, y, hidden=7, optimizer="momentum", momentum=0.5, l2=1e-3 / 50, lr=0.01, epochs=3,
        batch_size=50, dev_size=0, seed=3, dtype="float64",
    )  # fmt: skip
    for (W, b), coef, intercept in zip(model.weights, ours.coefs_, ours.intercepts_, strict=True):
        np.testing.assert_array_equal(coef, W.T)
        np.testing.assert_array_equal(intercept, b)
    assert ours.n_iter_ == 3 and ours.t_ == 3 * len(X)
    np.testing.assert_allclose(ours.loss_curve_, [r.loss for r in model.history], rtol=0)


def test_loss_curve_penalty_is_scikit_learns_alpha():
    # sklearn: batch loss = cross-entropy + 0.5·alpha·Σ‖W‖² / batch_size. With one full batch
    # and a step too small to move the weights, the first loss is that of the final weights.
    X, y = scaled(load_wine)
    alpha = 3.0
    model = MLPClassifier(
        hidden_layer_sizes=(5,), solver="sgd", momentum=0, alpha=alpha, batch_size=len(X),
        learning_rate_init=1e-12, max_iter=1, random_state=0, dtype="float64",
    ).fit(X, y)  # fmt: skip
    proba = model.predict_proba(X)
    cross_entropy = -np.mean(np.log(proba[np.arange(len(y)), np.searchsorted(model.classes_, y)]))
    penalty = 0.5 * alpha * sum(np.sum(W**2) for W in model.coefs_) / len(X)
    assert penalty > 0.01
    np.testing.assert_allclose(model.loss_curve_[0], cross_entropy + penalty, rtol=1e-9)


def test_fitted_attributes_are_scikit_learns():
    X, y = scaled(load_digits)
    model = MLPClassifier(hidden_layer_sizes=(20, 15), max_iter=5, random_state=0).fit(X, y)
    assert [W.shape for W in model.coefs_] == [(64, 20), (20, 15), (15, 10)]
    assert [b.shape for b in model.intercepts_] == [(20,), (15,), (10,)]
    np.testing.assert_array_equal(model.classes_, np.arange(10))
    assert model.n_features_in_ == 64 and model.n_layers_ == 4 and model.n_outputs_ == 10
    assert model.out_activation_ == "softmax" and model.n_iter_ == 5
    assert len(model.loss_curve_) == 5 and model.loss_curve_[-1] < model.loss_curve_[0]
    assert model.validation_scores_ is None and model.best_loss_ == min(model.loss_curve_)
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0, rtol=1e-12)


def test_predictions_follow_coefs_a_user_sets():
    X, y = scaled(load_wine)
    model = MLPClassifier(hidden_layer_sizes=(6,), max_iter=20, random_state=0).fit(X, y)
    model.coefs_[-1][:] = 0
    model.intercepts_[-1][:] = [0, 0, 5]
    assert np.all(model.predict(X) == 2)


def test_string_labels():
    X, y = scaled(load_wine)
    names = np.array(["barolo", "grignolino", "barbera"])[y]
    model = MLPClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, names)
    np.testing.assert_array_equal(model.classes_, ["barbera", "barolo", "grignolino"])
    predicted = model.predict(X)
    assert predicted.dtype.kind == "U" and set(predicted) <= set(names)
    assert model.score(X, names) > 0.95
    assert np.mean(predicted == names) == model.score(X, names)


def test_partial_fit_needs_classes_first_and_learns_epoch_by_epoch():
    X, y = scaled(load_digits)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    model = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        model.partial_fit(X_train, y_train)
    # the first call sees three of the ten classes; every class is known from `classes`
    few = y_train < 3
    model.partial_fit(X_train[few], y_train[few], classes=np.arange(10))
    np.testing.assert_array_equal(model.classes_, np.arange(10))
    assert model.n_outputs_ == 10
    scores = []
    for _ in range(10):
        model.partial_fit(X_train, y_train)
        scores.append(model.score(X_test, y_test))
    assert model.n_iter_ == 11 and len(model.loss_curve_) == 11
    assert model.loss_curve_[-1] < model.loss_curve_[1] / 2
    assert scores[-1] > 0.9 and scores[-1] > scores[0]
    with pytest.raises(ValueError, match="not in classes_"):
        model.partial_fit(X_train, y_train + 10)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X_train[:, :10], y_train)


def test_first_partial_fit_is_one_epoch_of_fit():
    X, y = scaled(load_wine)
    settings = dict(hidden_layer_sizes=(9,), batch_size=32, random_state=4)
    once = MLPClassifier(**settings).partial_fit(X, y, classes=np.unique(y))
    fitted = MLPClassifier(max_iter=1, **settings).fit(X, y)
    for ours, theirs in zip(once.coefs_, fitted.coefs_, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_warm_start_continues_from_the_fitted_weights():
    X, y = scaled(load_digits)
    model = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X, y)
    first = list(model.loss_curve_)
    model.set_params(warm_start=True).fit(X, y)
    assert model.n_iter_ == 10 and model.loss_curve_[:5] == first
    assert model.loss_curve_[5] < first[-1] * 1.05 < first[0]
    # without warm_start, fit starts again from the same initial weights
    model.set_params(warm_start=False).fit(X, y)
    assert model.n_iter_ == 5 and model.loss_curve_ == first
    with pytest.raises(ValueError, match="same classes"):
        model.set_params(warm_start=True).fit(X[y < 5], y[y < 5])
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        model.set_params(hidden_layer_sizes=(17,)).fit(X, y)


def test_early_stopping_records_validation_scores_and_stops():
    X, y = scaled(load_digits)
    model = MLPClassifier(
        hidden_layer_sizes=(32,), early_stopping=True, n_iter_no_change=3, max_iter=500,
        random_state=0,
    ).fit(X, y)  # fmt: skip
    scores = model.validation_scores_
    assert len(scores) == model.n_iter_ == len(model.loss_curve_) < 500
    assert model.best_validation_score_ == max(scores) > 0.9
    assert model.best_loss_ is None
    # stopped by scikit-learn's rule: no gain of tol for more than n_iter_no_change epochs
    best = int(np.argmax(scores))
    assert model.n_iter_ - 1 - best > 3


def test_training_without_improvement_stops_at_tol():
    X, y = scaled(load_wine)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(16,), tol=1e-2, random_state=0).fit(X, y)
    assert model.n_iter_ < 200


def test_clone_and_pickle_round_trip():
    X, y = scaled(load_wine)
    model = MLPClassifier(hidden_layer_sizes=(12,), max_iter=30, random_state=0).fit(X, y)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "coefs_")
    np.testing.assert_array_equal(copy.fit(X, y).predict_proba(X), model.predict_proba(X))
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    # the optimizer state travels too: partial_fit goes on from where fit stopped
    restored.partial_fit(X, y)
    model.partial_fit(X, y)
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(activation="identity"), "identity.*not supported"),
        (dict(solver="lbfgs"), "lbfgs.*not supported"),
        (dict(hidden_layer_sizes=(10, 0)), "hidden_layer_sizes"),
        (dict(batch_size=0), "batch_size"),
        (dict(learning_rate_init=-1.0), "learning_rate_init"),
        (dict(validation_fraction=1.5), "validation_fraction"),
        (dict(dtype="float16"), "dtype"),
        (dict(loss="hinge"), "loss"),
    ],
)
def test_bad_settings_raise_a_value_error_naming_them(settings, message):
    X, y = scaled(load_wine)
    with pytest.raises(ValueError, match=message):
        MLPClassifier(max_iter=1, **settings).fit(X, y)


def test_solver_sgd_without_momentum_is_plain_sgd():
    X, y = scaled(load_wine)
    common = dict(hidden_layer_sizes=(5,), max_iter=2, random_state=0, dtype="float64")
    ours = MLPClassifier(solver="sgd", momentum=0, **common).fit(X, y)
    model = fastnn.train(
        X, y, hidden=5, optimizer="sgd", l2=1e-4 / 178, epochs=2, batch_size=178, dev_size=0,
        seed=0, dtype="float64",
    )  # fmt: skip
    np.testing.assert_array_equal(ours.coefs_[0], model.W1.T)
