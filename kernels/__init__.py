"""fastnn's Numba loop kernels: every equation of the network as explicit loops over scalars.

Where each equation lives (numbers as in the README):

    (1)  Z = W·A + b                       dense.dense_forward
    (2)  A = g(Z)                          activations.{relu,sigmoid,tanh}_forward
    (3)  A = softmax(Z)                    output.softmax_forward
    (4)  cross-entropy loss                output.cross_entropy_loss
    (5)  squared error loss                output.mse_loss
    (6)  dZ = A − Y (softmax + CE)         output.output_error
    (7)  dA = A − Y, dZ = dA ⊙ A(1 − A)    output.output_error, activations.sigmoid_backward
    (8)  dW = dZ·Aᵀ / m                    dense.dense_backward
    (9)  db = Σ dZ / m                     dense.dense_backward
    (10) dA_prev = Wᵀ·dZ                   dense.dense_backward_input
    (11) dZ = dA ⊙ g'(Z)                   activations.{relu,sigmoid,tanh}_backward
    (12) L2 weight decay                   optimizers.l2_penalty, optimizers.l2_backward
    (13) gradient descent                  optimizers.sgd_update
    (14) momentum                          optimizers.momentum_update
    (15) Adam                              optimizers.adam_update

network.py strings them together into a whole network and an epoch: the reference path, one
call per equation, that a reader starts from. codes.py holds the integer codes by which the
kernels choose the activation, the loss and the optimizer.

What training runs is the tiled path, the same equations for any number of layers, a tile of
samples at a time and split between threads; each of its kernels names the kernel above that it
equals. Four files, by what they hold:

    tile_math.py      the arithmetic of one tile: forward, loss, backward (register tiles)
    tile_sparse.py    the first layer on mostly-zero images: the nonzero inputs alone
    tile_threads.py   the epoch: a batch cut into chunks, one thread each; the update
    tile_plumbing.py  what training calls (train_epoch, predict) and how Numba gets the kernels

Legend everywhere: m samples, n_in and n_out a layer's inputs and units, k classes (and nothing
else), L layers; a gradient is d + what it is the gradient of (dW1, dZ, dθ).
"""
