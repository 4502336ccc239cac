"""Optimisers and gradient clipping over the parameter dict, written against the Array API.

Notation: p a parameter, g its gradient, t the step count (1 at the first step), every
operation elementwise. Parameters and state are updated in place (``p -= ...``), so the
caller's dict keeps its arrays. The state is one flat dict ``"<optimiser>.<slot>/<param>" ->
array`` (e.g. ``"adadelta.Eg2/enc_fwd.W_z"``) plus the step count, so checkpoints and resuming
are loops over names. Scalars stay Python floats (a NumPy float64 scalar would turn float32
arrays into float64), and nothing in ``step`` or ``clip_grad_norm`` reads a value back to the
host, so a GPU never waits.
"""

from __future__ import annotations

import numpy as np

from .backend import Array, backend_of, namespace, to_device, to_host


def clip_grad_norm(grads: dict[str, Array], max_norm: float | None) -> Array:
    """Rescale all gradients together, in place, so that their global L2 norm is at most
    ``max_norm`` (paper, appendix B.2: 1):

        ||g|| = sqrt(sum over every parameter and entry of g^2)
        g <- g * min(1, max_norm / ||g||)

    Returns ``||g||`` before clipping, a 0-d array on the gradients' device (no host wait).
    ``max_norm`` None or <= 0 only measures.
    """
    xp = namespace(next(iter(grads.values())))
    norm = xp.sqrt(sum(xp.sum(g * g) for g in grads.values()))     # ()
    if max_norm is not None and max_norm > 0:
        scale = max_norm / xp.maximum(norm, max_norm)              # () min(1, max_norm / ||g||)
        for g in grads.values():
            g *= scale
    return norm


class Optimizer:
    """Base of the optimisers: ``step(params, grads)`` updates ``params`` in place.

    ``state`` holds one array per slot and parameter, ``"<name>.<slot>/<param>"``, on the
    parameters' device; ``t`` counts the steps taken. ``state_dict()`` / ``load_state_dict()``
    carry both, so a resumed run continues bit for bit.
    """

    name = ""
    slots: tuple[str, ...] = ()

    def __init__(self, params: dict[str, Array], lr: float) -> None:
        self.lr = float(lr)
        self.t = 0
        self.state: dict[str, Array] = {
            self._key(s, k): namespace(p).zeros_like(p) for s in self.slots
            for k, p in params.items()}

    def _key(self, slot: str, param: str) -> str:
        return f"{self.name}.{slot}/{param}"

    def step(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        """One update of every parameter in ``params`` from ``grads`` (same keys), in place."""
        self.t += 1
        for k, p in params.items():
            self._update(k, p, grads[k])

    def _update(self, name: str, p: Array, g: Array) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Array]:
        """The state arrays themselves (not copies) and the step count, under ``"<name>.t"``
        as a 0-d int64 host array."""
        return {**self.state, f"{self.name}.t": np.asarray(self.t, dtype=np.int64)}

    def load_state_dict(self, d: dict[str, Array]) -> None:
        """Copy a ``state_dict()`` (host or device arrays) into this optimiser's own arrays;
        ValueError if it belongs to another optimiser or other parameters."""
        t_key = f"{self.name}.t"
        missing = sorted((set(self.state) | {t_key}) - set(d))
        unexpected = sorted(set(d) - set(self.state) - {t_key})
        if missing or unexpected:
            raise ValueError(f"{self.name} optimiser state does not fit these parameters: "
                             f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        for k, cur in self.state.items():
            if tuple(d[k].shape) != tuple(cur.shape):
                raise ValueError(f"{self.name} optimiser state {k!r} has shape "
                                 f"{tuple(d[k].shape)}, the parameter {tuple(cur.shape)}")
            cur[...] = to_device(to_host(d[k]), backend_of(cur), cur.dtype)
        self.t = int(to_host(d[t_key]))


class SGD(Optimizer):
    """Plain stochastic gradient descent: p <- p - lr g."""

    name = "sgd"

    def __init__(self, params: dict[str, Array], lr: float = 0.1) -> None:
        super().__init__(params, lr)

    def _update(self, name: str, p: Array, g: Array) -> None:
        p -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), bias-corrected:

        m <- b1 m + (1 - b1) g
        v <- b2 v + (1 - b2) g^2
        p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    computed, as Kingma & Ba's Algorithm 1 suggests and PyTorch does, with the bias corrections
    on scalars (c1 = 1 - b1^t, c2 = 1 - b2^t; equal up to float rounding, with fewer passes
    over the arrays and four fresh arrays per parameter instead of nine):

        p <- p - (lr sqrt(c2) / c1) m / (sqrt(v) + eps sqrt(c2))
    """

    name = "adam"
    slots = ("m", "v")

    def __init__(self, params: dict[str, Array], lr: float = 1e-3, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def _update(self, name: str, p: Array, g: Array) -> None:
        xp = namespace(p)
        m, v = self.state[self._key("m", name)], self.state[self._key("v", name)]
        m *= self.beta1
        m += (1.0 - self.beta1) * g                            # m = b1 m + (1 - b1) g
        g2 = g * g
        g2 *= 1.0 - self.beta2
        v *= self.beta2
        v += g2                                                # v = b2 v + (1 - b2) g^2
        c1 = 1.0 - self.beta1**self.t                          # Python floats: no upcast
        sqrt_c2 = (1.0 - self.beta2**self.t) ** 0.5
        den = xp.sqrt(v)
        den += self.eps * sqrt_c2                              # sqrt(c2) (sqrt(v / c2) + eps)
        step = m / den
        step *= self.lr * sqrt_c2 / c1
        p -= step                                              # p -= lr (m / c1) / (..)


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012, Algorithm 1), the paper's optimiser (appendix B.2: rho 0.95,
    eps 1e-6); ``lr`` 1 is Zeiler's rule exactly:

        E[g^2]  <- rho E[g^2] + (1 - rho) g^2
        dx       = -(sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps)) g     (E[dx^2] of the last step)
        E[dx^2] <- rho E[dx^2] + (1 - rho) dx^2
        p       <- p + lr dx
    """

    name = "adadelta"
    slots = ("Eg2", "Edx2")

    def __init__(self, params: dict[str, Array], lr: float = 1.0, rho: float = 0.95,
                 eps: float = 1e-6) -> None:
        super().__init__(params, lr)
        self.rho, self.eps = float(rho), float(eps)

    def _update(self, name: str, p: Array, g: Array) -> None:
        xp = namespace(p)
        Eg2, Edx2 = self.state[self._key("Eg2", name)], self.state[self._key("Edx2", name)]
        Eg2 *= self.rho
        Eg2 += (1.0 - self.rho) * (g * g)
        dx = -(xp.sqrt(Edx2 + self.eps) / xp.sqrt(Eg2 + self.eps)) * g
        Edx2 *= self.rho
        Edx2 += (1.0 - self.rho) * (dx * dx)
        p += self.lr * dx


OPTIMIZERS: dict[str, type[Optimizer]] = {"adadelta": Adadelta, "adam": Adam, "sgd": SGD}


def make_optimizer(name: str, params: dict[str, Array], lr: float | None = None) -> Optimizer:
    """The optimiser called ``name`` (``adadelta``, ``adam`` or ``sgd``) over ``params``;
    ``lr`` None takes its default (Adadelta 1.0, Adam 1e-3, SGD 0.1)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[name]
    return cls(params) if lr is None else cls(params, lr=lr)


__all__ = ["OPTIMIZERS", "SGD", "Adadelta", "Adam", "Optimizer", "clip_grad_norm",
           "make_optimizer"]
