"""python -m fastnn.trace and fastnn.trace.trace: one image through every numbered equation.

The trace's arrays are held to a NumPy computation written here from the model file's W and b
(forward, loss, backward for m = 1), independent of fastnn's kernels and oracle; dW1 also to
finite differences of the loss; the predicted digit to predict; the equations to the README.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import (
    assert_one_line_error,
    real_mnist,
    real_subset,
    run_in_process,
    run_module,
)
from data_helpers import PROJECT_ROOT, write_idx_dir

import fastnn
from fastnn import kernels, oracle
from fastnn.errors import FastnnError
from fastnn.model import init_network, load_model, save_model
from fastnn.trace import EQUATIONS, PROG, main, trace
from fastnn.training import TrainConfig, predict_outputs, to_inputs
from fastnn.training import train as train_network

TRACE = "fastnn.trace"

# (sizes, hidden activation, loss, dtype): every kind of step the walk takes
NETWORKS = [
    ((784, 10, 10), "relu", "cross-entropy", "float32"),
    ((784, 10, 10), "relu", "cross-entropy", "float64"),
    ((784, 16, 12, 10), "relu", "cross-entropy", "float64"),
    ((784, 16, 12, 10), "tanh", "cross-entropy", "float32"),
    ((784, 10, 10), "sigmoid", "mse", "float64"),
    ((784, 16, 12, 10), "sigmoid", "mse", "float32"),
]
NETWORK_IDS = ["-".join(map(str, s)) + f"-{g}-{loss}-{d}" for s, g, loss, d in NETWORKS]


# ---- an independent computation, from the model file ------------------------------------------


def read_model_file(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], str, str, type]:
    """W1.., b1.. (as float64), the activation, the loss and the weights' dtype, by np.load."""
    with np.load(path, allow_pickle=False) as archive:
        L = len(archive["sizes"]) - 1
        dtype = archive["W1"].dtype.type
        Ws = [archive[f"W{l}"].astype(np.float64) for l in range(1, L + 1)]
        bs = [archive[f"b{l}"].astype(np.float64) for l in range(1, L + 1)]
        return Ws, bs, str(archive["activation"]), str(archive["loss"]), dtype


def as_column(image: np.ndarray, dtype: type) -> np.ndarray:
    """uint8 pixels / 255 in the model's float type (as training scales them), then float64."""
    return (image.reshape(-1, 1).astype(dtype) / dtype(255)).astype(np.float64)


def g(z: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.where(z > 0, z, 0.0)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    return np.tanh(z)


def g_prime(z: np.ndarray, a: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return (z > 0).astype(np.float64)
    if activation == "sigmoid":
        return a * (1 - a)
    return 1 - a * a


def forward_and_loss(Ws, bs, activation, loss, A0, label) -> dict:
    """Z1, A1, ..., J for one image (m = 1), in float64."""
    L = len(Ws)
    values = {"A0": A0}
    A = A0
    for l in range(1, L + 1):
        Z = Ws[l - 1] @ A + bs[l - 1][:, None]
        if l < L:
            A = g(Z, activation)
        elif loss == "cross-entropy":
            A = np.exp(Z - Z.max()) / np.exp(Z - Z.max()).sum()
        else:
            A = 1.0 / (1.0 + np.exp(-Z))
        values[f"Z{l}"], values[f"A{l}"] = Z, A
    Y = np.zeros_like(A)
    Y[label, 0] = 1.0
    values["Y"] = Y
    if loss == "cross-entropy":
        Z = values[f"Z{L}"]
        values["J"] = -(Z[label, 0] - Z.max() - np.log(np.exp(Z - Z.max()).sum()))
    else:
        values["J"] = 0.5 * np.sum((A - Y) ** 2)
    return values


def expected_trace(path: Path, image: np.ndarray, label: int) -> dict:
    """Every array the trace should hold, from the model file, with the gradients of m = 1."""
    Ws, bs, activation, loss, dtype = read_model_file(path)
    values = forward_and_loss(Ws, bs, activation, loss, as_column(image, dtype), label)
    L = len(Ws)
    A_top, Y = values[f"A{L}"], values["Y"]
    if loss == "cross-entropy":
        dZ = A_top - Y
    else:
        values[f"dA{L}"] = A_top - Y
        dZ = (A_top - Y) * A_top * (1 - A_top)
    for l in range(L, 0, -1):
        values[f"dZ{l}"] = dZ
        values[f"dW{l}"] = dZ @ values[f"A{l - 1}"].T
        values[f"db{l}"] = dZ[:, 0]
        if l > 1:
            dA = Ws[l - 1].T @ dZ
            values[f"dA{l - 1}"] = dA
            dZ = dA * g_prime(values[f"Z{l - 1}"], values[f"A{l - 1}"], activation)
    return values


def tolerances(dtype: str) -> dict:
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}


# ---- helpers ---------------------------------------------------------------------------------


def make_model(folder: Path, sizes, activation, loss, dtype, seed: int = 0) -> Path:
    path = folder / f"model-{'-'.join(map(str, sizes))}-{activation}-{dtype}.npz"
    net = init_network(sizes, activation, loss, dtype=dtype, rng=np.random.default_rng(seed))
    save_model(path, net)
    return path


def run_trace(argv, capsys) -> tuple[int, str, str]:
    return run_in_process(main, PROG, argv, capsys)


@pytest.fixture(scope="module")
def idx_folder(tmp_path_factory) -> tuple[Path, dict]:
    """A small MNIST-format folder of random images: the CLI's --index without the real data."""
    folder = tmp_path_factory.mktemp("idx")
    return folder, write_idx_dir(folder, n_train=5, n_test=4, gz=False, seed=3)


def drawn_digit() -> np.ndarray:
    """A 28 × 28 uint8 "7": a bar and a slanted stroke, light on dark, as MNIST draws digits."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[6:9, 7:21] = 255
    for row in range(9, 24):
        column = 20 - (row - 9) * 9 // 15
        image[row, column - 1 : column + 2] = 200
    return image


# ---- the arrays ------------------------------------------------------------------------------


@pytest.mark.parametrize(("sizes", "activation", "loss", "dtype"), NETWORKS, ids=NETWORK_IDS)
def test_json_equals_an_independent_numpy_computation(
    sizes, activation, loss, dtype, tmp_path, idx_folder, capsys
):
    folder, arrays = idx_folder
    model = make_model(tmp_path, sizes, activation, loss, dtype)
    out = tmp_path / "trace.json"
    index = 2
    status, printed, err = run_trace(
        [model, "--index", index, "--data", folder, "--json", out], capsys
    )
    assert status == 0, err
    document = json.loads(out.read_text())
    image, label = arrays["test_images"][index], int(arrays["test_labels"][index])
    expected = expected_trace(model, image, label)

    L = len(sizes) - 1
    names = {"A0", "Y", "J"} | {f"{p}{l}" for l in range(1, L + 1) for p in ("Z", "A", "dZ")}
    names |= {f"{p}{l}" for l in range(1, L + 1) for p in ("dW", "db")}
    names |= {f"dA{l}" for l in range(1, L if loss == "cross-entropy" else L + 1)}
    assert set(expected) == names
    assert names <= set(document), names - set(document)
    for name in sorted(names):
        got = np.array(document[name], dtype=np.float64)
        assert got.shape == np.shape(expected[name]), name
        np.testing.assert_allclose(got, expected[name], **tolerances(dtype), err_msg=name)
    assert document["label"] == label and document["label_given"] is True
    net_outputs = predict_outputs(load_model(model), to_inputs(image[None, :], dtype))
    assert document["predicted"] == int(net_outputs.argmax(axis=1)[0])
    assert document["predicted"] == int(np.argmax(expected[f"A{L}"]))
    assert document["model"] == {
        "sizes": list(sizes),
        "activation": activation,
        "loss": loss,
        "dtype": dtype,
    }
    assert f"wrote every array of the trace to {out}" in printed


def test_dW1_against_finite_differences_of_the_loss(tmp_path):
    """(8) for the first layer, for a few weights, against (J(w + h) − J(w − h)) / 2h."""
    image = drawn_digit()
    for activation, loss in (("relu", "cross-entropy"), ("sigmoid", "mse")):
        model = make_model(tmp_path, (784, 12, 10), activation, loss, "float64", seed=5)
        result = trace(model, image, label=3)
        dW1 = result.arrays["dW1"]
        Ws, bs, _, _, dtype = read_model_file(model)
        A0 = as_column(image, dtype)
        # the largest gradients, and a few more of the weights that meet ink
        ink = np.flatnonzero(A0[:, 0])
        rng = np.random.default_rng(0)
        largest = np.argsort(-np.abs(dW1).ravel())[:4]
        others = [
            np.ravel_multi_index((j, k), dW1.shape)
            for j, k in zip(rng.integers(0, 12, 4), rng.choice(ink, 4), strict=True)
        ]
        step = 1e-6
        for flat in [*largest.tolist(), *others]:
            j, k = np.unravel_index(flat, dW1.shape)
            losses = []
            for sign in (1, -1):
                shifted = [W.copy() for W in Ws]
                shifted[0][j, k] += sign * step
                losses.append(forward_and_loss(shifted, bs, activation, loss, A0, 3)["J"])
            numeric = (losses[0] - losses[1]) / (2 * step)
            assert abs(numeric - dW1[j, k]) <= 1e-7 * max(1.0, abs(numeric)), (j, k, activation)
        assert np.abs(dW1).max() > 1e-4, "a gradient this small would make the check empty"


def test_steps_follow_the_equations_in_order_for_a_deeper_network(tmp_path):
    model = make_model(tmp_path, (784, 16, 12, 10), "relu", "cross-entropy", "float64")
    result = trace(model, drawn_digit(), label=7)
    walked = [(step.equation, step.name) for step in result.steps]
    assert walked == [
        (1, "Z1"), (2, "A1"), (1, "Z2"), (2, "A2"), (1, "Z3"), (3, "A3"),
        (4, "J"),
        (6, "dZ3"), (8, "dW3"), (9, "db3"), (10, "dA2"), (11, "dZ2"),
        (8, "dW2"), (9, "db2"), (10, "dA1"), (11, "dZ1"),
        (8, "dW1"), (9, "db1"),
    ]  # fmt: skip
    kernels_called = [step.kernel for step in result.steps]
    assert kernels_called[:7] == [
        "dense.dense_forward", "activations.relu_forward", "dense.dense_forward",
        "activations.relu_forward", "dense.dense_forward", "output.softmax_forward",
        "output.cross_entropy_loss",
    ]  # fmt: skip
    assert result.largest_oracle_difference < 1e-12
    assert [step.layer for step in result.steps if step.phase == "backward"] == [
        3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1,
    ]  # fmt: skip


def test_sigmoid_and_squared_error_take_equations_2_5_and_7(tmp_path):
    model = make_model(tmp_path, (784, 10, 10), "sigmoid", "mse", "float32")
    result = trace(model, drawn_digit(), label=1)
    walked = [(step.equation, step.name, step.kernel) for step in result.steps]
    assert walked[:6] == [
        (1, "Z1", "dense.dense_forward"),
        (2, "A1", "activations.sigmoid_forward"),
        (1, "Z2", "dense.dense_forward"),
        (2, "A2", "activations.sigmoid_forward"),
        (5, "J", "output.mse_loss"),
        (7, "dA2", "output.output_error"),
    ]
    assert walked[6] == (7, "dZ2", "activations.sigmoid_backward")
    assert walked[-3][:2] == (11, "dZ1")
    assert result.largest_oracle_difference < 1e-5


def test_each_step_is_the_readme_equation_with_its_kernel_and_the_oracle_twin(tmp_path):
    """The equations quoted as README.md's table writes them; each kernel named in its row."""
    rows = {}
    for line in (PROJECT_ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        found = re.match(r"^\| (\d+) \| (.+?) \| (.+) \|$", line)
        if found:
            rows[int(found[1])] = (found[2], found[3])
    for number, text in EQUATIONS.items():
        assert rows[number][0] == text, number
    steps = []
    for activation, loss in (("tanh", "cross-entropy"), ("relu", "mse"), ("sigmoid", "mse")):
        model = make_model(tmp_path, (784, 6, 5, 10), activation, loss, "float64")
        steps += trace(model, drawn_digit(), label=0).steps
    assert {step.equation for step in steps} == set(range(1, 12))
    for step in steps:
        module, function = step.kernel.split(".")
        assert f"`{step.kernel}`" in rows[step.equation][1] or (
            f"`{module}." in rows[step.equation][1] and f"`{function}`" in rows[step.equation][1]
        ), (step.kernel, rows[step.equation][1])
        assert callable(getattr(getattr(kernels, module), function))
        assert callable(getattr(oracle, function))
        assert step.text == EQUATIONS[step.equation]


def test_a_kernel_that_disagrees_with_the_oracle_shows_in_the_difference(tmp_path, monkeypatch):
    """The difference shown is measured, not assumed: a wrong oracle function shows up in it."""
    model = make_model(tmp_path, (784, 10, 10), "relu", "cross-entropy", "float64")
    honest = trace(model, drawn_digit(), label=2)
    monkeypatch.setattr(oracle, "relu_backward", lambda dA, Z: dA * (Z >= 0) + 0.25)
    broken = trace(model, drawn_digit(), label=2)
    by_name = {step.name: step for step in broken.steps}
    assert by_name["dZ1"].oracle_difference == pytest.approx(0.25, abs=1e-12)
    assert by_name["dW1"].oracle_difference > 0.1
    assert by_name["dZ2"].oracle_difference < 1e-12
    assert honest.largest_oracle_difference < 1e-12
    np.testing.assert_array_equal(broken.arrays["dW1"], honest.arrays["dW1"])  # kernels' own


# ---- the prediction, on a network trained on real MNIST ---------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, object]:
    """784-10-10 trained for 6 epochs on 3,500 real MNIST images (a second or two): 87% on the
    first 1,000 test images."""
    mnist = real_mnist()
    config = TrainConfig(epochs=6, lr=0.005, dev_size=500, seed=1)
    net = train_network(config, mnist.train_images[:4000], mnist.train_labels[:4000]).network
    path = tmp_path_factory.mktemp("trained") / "model.npz"
    save_model(path, net)
    return path, net


def test_the_predicted_digit_is_the_one_predict_gives(trained):
    path, net = trained
    mnist = real_mnist()
    images, labels = mnist.test_images[:40], mnist.test_labels[:40]
    predicted = predict_outputs(net, to_inputs(images, "float32")).argmax(axis=1)
    assert np.mean(predicted == labels) > 0.8, "the network should have learned something"
    for image, label, answer in zip(images, labels, predicted, strict=True):
        result = trace(path, image, int(label))
        assert result.predicted == int(answer)
        assert result.largest_output == int(answer)
    model = fastnn.load(path)  # the Python API's Model traces as its network does
    for image, label in zip(images[:5], labels[:5], strict=True):
        result = trace(model, image, int(label))
        assert result.predicted == int(model.predict(image[None, :])[0])


def test_the_command_prints_every_step_with_values_and_summaries(trained, tmp_path_factory, capsys):
    path, _ = trained
    data = real_subset(tmp_path_factory, 10, 20)
    out = tmp_path_factory.mktemp("json") / "trace.json"
    status, printed, err = run_trace([path, "--index", 11, "--data", data, "--json", out], capsys)
    assert status == 0, err
    document = json.loads(out.read_text())
    label = int(real_mnist().test_labels[11])
    assert f"image: test image 11 of {data}, label {label}" in printed
    for text in EQUATIONS.values():
        if "sigmoid + squared error" not in text and "(sigmoid output)" not in text:
            assert text in printed, text
    for step in document["steps"]:
        assert step["kernel"] in printed and step["instance"] in printed
    assert printed.count("largest |kernel − oracle|: ") == len(document["steps"]) == 12
    # a vector of 10 in full: the printed row of Z1 is the JSON's Z1 to 4 significant digits
    row = re.search(r"^\s+Z1((?:\s+\S+){10})$", printed, re.MULTILINE)
    assert row, printed
    shown = [float(value) for value in row[1].split()]
    np.testing.assert_allclose(shown, np.ravel(document["Z1"]), rtol=5e-4, atol=1e-12)
    # large arrays summarised: shape, min, max, norm, and the largest entries with their place
    dW1 = np.array(document["dW1"])
    summary = re.search(
        r"^\s+dW1: min (\S+), max (\S+), norm (\S+), (\d+) of 7840 not 0$", printed, re.MULTILINE
    )
    assert summary, printed
    np.testing.assert_allclose(
        [float(summary[1]), float(summary[2]), float(summary[3])],
        [dW1.min(), dW1.max(), np.linalg.norm(dW1)],
        rtol=5e-4,
    )
    assert int(summary[4]) == np.count_nonzero(dW1)
    j, k = np.unravel_index(np.abs(dW1).argmax(), dW1.shape)
    assert f"at [{j}, {k}] = pixel ({k // 28}, {k % 28})" in printed
    assert "shape (10, 784)" in printed and "shape (784, 1)" in printed
    assert "|" + " " * 56 + "|" in printed  # the picture of the image, a blank row of it
    last = printed.strip().splitlines()
    assert last[-4] == (
        f"predicted digit: {document['predicted']}, the largest entry of A2 "
        f"(A2[{document['predicted']}] = {np.ravel(document['A2'])[document['predicted']]:.4g}); "
        f"fastnn's predict gives {document['predicted']} too"
    )
    assert last[-3] == f"true label: {label}; loss J = {document['J']:.6g}"
    assert document["J"] == pytest.approx(-np.log(np.ravel(document["A2"])[label]), rel=1e-5)


# ---- an image file -----------------------------------------------------------------------------


def test_an_image_file_is_traced_as_read_digit_prepares_it(tmp_path, capsys):
    images = pytest.importorskip("fastnn.images")
    Image = pytest.importorskip("PIL.Image")
    # dark ink on a light page, larger than 28 × 28, as a photographed digit would be
    page = 255 - np.kron(drawn_digit(), np.ones((3, 3), dtype=np.uint8))
    picture = tmp_path / "seven.png"
    Image.fromarray(page).save(picture)
    model = make_model(tmp_path, (784, 10, 10), "relu", "cross-entropy", "float64")
    out = tmp_path / "trace.json"
    status, printed, err = run_trace([model, "--image", picture, "--json", out], capsys)
    assert status == 0, err
    document = json.loads(out.read_text())
    seen = images.read_digit(picture)
    expected = expected_trace(model, seen, document["predicted"])
    for name in ("A0", "Z2", "A2", "dW1", "db1"):
        np.testing.assert_allclose(np.array(document[name]), expected[name], rtol=1e-12, atol=1e-12)
    assert document["label"] == document["predicted"] and document["label_given"] is False
    assert "no label given: the predicted digit assumed" in printed

    status, printed, err = run_trace(
        [model, "--image", picture, "--label", 7, "--json", out], capsys
    )
    assert status == 0, err
    document = json.loads(out.read_text())
    assert document["label"] == 7 and document["label_given"] is True
    np.testing.assert_allclose(
        np.array(document["dZ2"]), expected_trace(model, seen, 7)["dZ2"], rtol=1e-12, atol=1e-12
    )
    assert "assumed" not in printed

    status, _, err = run_trace([model, "--image", picture, "--label", 10], capsys)
    assert status == 2
    assert_one_line_error(err, "label", "0-9")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not a picture")
    status, _, err = run_trace([model, "--image", not_an_image], capsys)
    assert status == 2
    assert_one_line_error(err, "notes.png")


# ---- bad input -------------------------------------------------------------------------------


def test_bad_input_is_one_line_and_status_2(tmp_path, idx_folder, capsys):
    folder, _ = idx_folder
    model = make_model(tmp_path, (784, 10, 10), "relu", "cross-entropy", "float32")
    cases = [
        ([model, "--index", 4, "--data", folder], ["--index 4", "out of range", "4 test images"]),
        ([model, "--index", -1, "--data", folder], ["--index"]),
        ([model, "--index", 0, "--label", 3, "--data", folder], ["--label goes with --image"]),
        ([tmp_path / "missing.npz"], ["missing.npz"]),
        ([model, "--data", tmp_path / "nowhere"], ["nowhere"]),
        ([model, "--data", folder, "--json", tmp_path / "no" / "t.json"], ["does not exist"]),
    ]
    not_a_model = tmp_path / "junk.npz"
    not_a_model.write_bytes(b"these bytes are no zip archive")
    cases.append(([not_a_model, "--data", folder], ["junk.npz", "not a fastnn model file"]))
    wrong_inputs = make_model(tmp_path, (100, 10, 10), "relu", "cross-entropy", "float32")
    cases.append(([wrong_inputs, "--data", folder], ["100 inputs"]))
    for argv, needles in cases:
        status, _, err = run_trace(argv, capsys)
        assert status == 2, (argv, err)
        assert_one_line_error(err, *needles)


def test_the_command_itself_exits_with_status_2_for_an_index_out_of_range(tmp_path, idx_folder):
    folder, _ = idx_folder
    model = make_model(tmp_path, (784, 10, 10), "relu", "cross-entropy", "float32")
    done = run_module(TRACE, model, "--index", 10000, "--data", folder)
    assert done.returncode == 2, done.stderr
    assert_one_line_error(done.stderr, "--index 10000 is out of range")


def test_the_python_function_refuses_what_it_cannot_trace(tmp_path):
    model = make_model(tmp_path, (784, 10, 10), "relu", "cross-entropy", "float32")
    with pytest.raises(FastnnError, match="784 inputs"):
        trace(model, np.zeros(100, dtype=np.uint8))
    with pytest.raises(FastnnError, match="labels 0-9"):
        trace(model, drawn_digit(), label=10)
    with pytest.raises(FastnnError, match="labels 0-9"):
        trace(model, drawn_digit(), label=True)
    with pytest.raises(FastnnError, match="cannot trace"):
        trace(object(), drawn_digit())
    floats = trace(model, drawn_digit() / 255.0, label=7)
    pixels = trace(model, drawn_digit(), label=7)
    np.testing.assert_allclose(floats.arrays["A0"], pixels.arrays["A0"], rtol=1e-6)


def test_a_trace_in_python_prints_and_saves_as_the_command_does(tmp_path):
    model = make_model(tmp_path, (784, 10, 10), "tanh", "cross-entropy", "float64")
    result = trace(model, drawn_digit(), label=7)
    assert str(result) == result.report()
    assert "(11) " + EQUATIONS[11] in str(result)
    assert repr(result) == (
        f"fastnn.trace.Trace(784-10-10, label 7, predicted {result.predicted}, "
        f"J = {result.J:.6g}, 12 steps)"
    )
    path = tmp_path / "trace.json"
    result.write_json(path)
    document = json.loads(path.read_text())
    for name, array in result.arrays.items():
        np.testing.assert_array_equal(np.array(document[name]), array, err_msg=name)
    assert document["J"] == result.J and document["label"] == 7
    assert [step["name"] for step in document["steps"]] == [step.name for step in result.steps]
    assert not list(tmp_path.glob(".trace.json.*"))  # no temporary file left beside it
