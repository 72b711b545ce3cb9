"""fastnn: a neural network for MNIST written as plain loops, compiled with Numba."""

__version__ = "0.1.0"
