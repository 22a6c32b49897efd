"""The 3-layer SimCLR projection head and the seeded initializers (DESIGN §3.1).

The head is dense -> ReLU -> dense -> ReLU -> dense (paper App. A.1, A.2). The
paper lists only dense layers and ReLUs, so the head has no batch norm (SimCLR
v2's head has BN; this package follows the paper). The taps are the head
input, each hidden layer's output after its ReLU, and the output projection
(no activation).

Initialization (the paper's models were written in JAX/Flax, so Flax's
defaults are used): kernels LeCun normal (truncated normal, variance
1/fan_in), biases zero. Every layer gets its own integer seed derived from the
model seed with `numpy.random.SeedSequence`, so a build is a pure function of
`seed` and touches no global random state.
"""
from __future__ import annotations

import keras
import numpy as np

from simclr_controlled.names import HEAD_LAYERS, TAPS


class SeededInit:
    """Hands out one independently seeded kernel initializer per layer.

    Layer k (in build order) of a model built with `seed` draws from
    SeedSequence([seed, k]); two builds with the same seed and architecture
    get identical weights, different seeds give unrelated ones.
    """

    def __init__(self, seed: int):
        self._seed = int(seed)
        self._count = 0

    def _next_seed(self) -> int:
        state = np.random.SeedSequence([self._seed, self._count]).generate_state(1)
        self._count += 1
        # 31 bits: Keras stores int seeds in an int32 on the TF backend.
        return int(state[0]) & 0x7FFFFFFF

    def kernel(self) -> keras.initializers.Initializer:
        return keras.initializers.LecunNormal(seed=self._next_seed())


def to_float32(x, name: str, dtype_policy):
    """Identity that returns float32, so taps are float32 under mixed precision."""
    if keras.dtype_policies.get(dtype_policy).compute_dtype == "float32":
        return x
    return keras.layers.Activation("linear", dtype="float32", name=name)(x)


def projection_head(head_input, widths: tuple[int, int, int], *, last_bias: bool,
                    init: SeededInit, dtype_policy) -> dict:
    """Apply the head to the (flat) backbone output; return every tap (DESIGN §3.1).

    `head_1`, `head_2` are after their ReLU; `head_out` has no activation and
    a bias only when `last_bias` (LeNet: yes, App. A.1; ResNet-18: no, App. A.2).
    """
    name_1, name_2, name_out = HEAD_LAYERS
    h1 = keras.layers.Dense(widths[0], activation="relu", kernel_initializer=init.kernel(),
                            dtype=dtype_policy, name=name_1)(head_input)
    h2 = keras.layers.Dense(widths[1], activation="relu", kernel_initializer=init.kernel(),
                            dtype=dtype_policy, name=name_2)(h1)
    out = keras.layers.Dense(widths[2], use_bias=last_bias, kernel_initializer=init.kernel(),
                             dtype=dtype_policy, name=name_out)(h2)
    taps = dict(zip(TAPS, (head_input, h1, h2, out)))
    return {name: to_float32(taps[name], f"{name}_float32", dtype_policy) for name in TAPS}
