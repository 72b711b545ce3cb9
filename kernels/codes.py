"""The integer codes that choose an activation, a loss and an optimizer.

The kernels branch on them at run time; fastnn.model and fastnn.training map the names a user
types to them. Plain Python constants, so that reading them does not load Numba: `import fastnn`
and the commands' checks of their flags start at once, and Numba loads when a network first
runs on the kernels.
"""

RELU, SIGMOID, TANH = 0, 1, 2
CROSS_ENTROPY, SQUARED_ERROR = 0, 1
SGD, MOMENTUM, ADAM = 0, 1, 2
