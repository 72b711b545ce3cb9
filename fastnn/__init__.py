"""fastnn: a neural network for MNIST written as plain loops, compiled with Numba.

Every matrix product, activation, softmax and gradient is an explicit loop (fastnn.kernels),
checked against a vectorised NumPy oracle (fastnn.oracle). From Python:

    import fastnn
    X_train, y_train, X_test, y_test = fastnn.load_mnist()    # uint8 (N, 784), int64 labels
    model = fastnn.train(X_train, y_train, hidden=10, epochs=10, verbose=True)
    model.score(X_test, y_test)        # accuracy on the test images
    model.W1                           # (10, 784): what each hidden unit weighs, read-only
    model.forward(X_test[:3])          # A0, Z1, A1, Z2, A2 for three images, samples as columns
    model.save("model.npz"); fastnn.load("model.npz")

load_mnist   MNIST as arrays, found or downloaded as the command line does
train        train a network; the settings are `python -m fastnn.train`'s flags
load         read a model file
Model        a trained network: predict, predict_proba, score, forward, save, W1, b1, ...
EpochRecord  one epoch of a model's history: loss, train and dev accuracy, seconds
FastnnError  the ValueError raised for bad input, settings or files
TrainingDiverged  raised when the loss stops being a finite number

fastnn.sklearn.MLPClassifier (extra [sklearn]) is a scikit-learn estimator. From the modules
of the commands: fastnn.show.analyse and draw (the figures, extra [plot]), fastnn.trace.trace
(one image through every equation), fastnn.images.read_digit (a PNG or JPEG prepared as MNIST).

The commands, each with --help: python -m fastnn.train (train, save, checkpoints), fastnn.predict
(score a model, or predict a CSV or your own images), fastnn.show (figures and tables of what a
model learned), fastnn.trace (one image through the equations), fastnn.sweep (many settings at
once, on every core or a Dask cluster). examples/tour.ipynb is a tour in a notebook.
"""

from .api import Model, load, load_mnist, train
from .errors import FastnnError
from .training import EpochRecord, TrainingDiverged

__version__ = "0.1.0"
__all__ = [
    "EpochRecord",
    "FastnnError",
    "Model",
    "TrainingDiverged",
    "__version__",
    "load",
    "load_mnist",
    "train",
]
