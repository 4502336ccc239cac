"""Optimisers and gradient clipping over the parameter dict, written against the Array API.

Parameters are updated in place; the optimiser's state is one flat dict ``"<slot>/<param>" ->
array`` plus the step count, so checkpoints and resuming are loops over names. Scalars stay
Python floats: a NumPy float64 scalar would turn float32 parameters into float64.
"""

from __future__ import annotations

import numpy as np

from .backend import Array, namespace


def clip_grad_norm(grads: dict[str, Array], max_norm: float | None) -> Array:
    """Rescale all gradients together so that their global L2 norm is at most ``max_norm``
    (paper, B.2: 1); returns the norm before clipping (0-d, on the device: no host wait).
    ``max_norm`` None or <= 0 only measures."""
    first = next(iter(grads.values()))
    xp = namespace(first)
    norm = xp.sqrt(sum(xp.sum(g * g) for g in grads.values()))   # ||g||_2 over every parameter
    if max_norm is not None and max_norm > 0:
        scale = max_norm / xp.maximum(norm, max_norm)            # min(1, max_norm / ||g||)
        for g in grads.values():
            g *= scale
    return norm


class Optimizer:
    """Base: ``step(params, grads)`` updates in place; ``state`` holds one array per slot and
    parameter, ``t`` the number of steps taken."""

    slots: tuple[str, ...] = ()
    name = ""

    def __init__(self, params: dict[str, Array], lr: float) -> None:
        self.lr = float(lr)
        self.t = 0
        self.state = {f"{s}/{k}": namespace(p).zeros_like(p)
                      for s in self.slots for k, p in params.items()}

    def step(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        self.t += 1
        for k, p in params.items():
            self.update(k, p, grads[k])

    def update(self, name: str, p: Array, g: Array) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Array]:
        """Everything needed to continue bit for bit (the step count as a host array)."""
        return {**self.state, "t": np.asarray(self.t, dtype=np.int64)}

    def load_state_dict(self, d: dict[str, Array]) -> None:
        missing = set(self.state) - set(d)
        if missing:
            raise ValueError(f"{self.name} state lacks {sorted(missing)[:3]}")
        for k in self.state:
            self.state[k] = d[k]
        self.t = int(np.asarray(d["t"]))


class SGD(Optimizer):
    """p <- p - lr g."""

    name = "sgd"

    def __init__(self, params: dict[str, Array], lr: float = 0.1) -> None:
        super().__init__(params, lr)

    def update(self, name: str, p: Array, g: Array) -> None:
        p -= self.lr * g


class Adam(Optimizer):
    """Kingma & Ba 2015: m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2;
    p <- p - lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)."""

    name = "adam"
    slots = ("m", "v")

    def __init__(self, params: dict[str, Array], lr: float = 1e-3, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def update(self, name: str, p: Array, g: Array) -> None:
        xp = namespace(p)
        m, v = self.state[f"m/{name}"], self.state[f"v/{name}"]
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * (g * g)
        c1 = 1.0 / (1.0 - self.beta1**self.t)
        c2 = 1.0 / (1.0 - self.beta2**self.t)
        p -= self.lr * (m * c1) / (xp.sqrt(v * c2) + self.eps)


class Adadelta(Optimizer):
    """Zeiler 2012, the paper's optimiser (rho 0.95, eps 1e-6):
    E[g^2] <- rho E[g^2] + (1-rho) g^2;  dx = -sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) g;
    E[dx^2] <- rho E[dx^2] + (1-rho) dx^2;  p <- p + lr dx."""

    name = "adadelta"
    slots = ("Eg2", "Edx2")

    def __init__(self, params: dict[str, Array], lr: float = 1.0, rho: float = 0.95,
                 eps: float = 1e-6) -> None:
        super().__init__(params, lr)
        self.rho, self.eps = rho, eps

    def update(self, name: str, p: Array, g: Array) -> None:
        xp = namespace(p)
        Eg2, Edx2 = self.state[f"Eg2/{name}"], self.state[f"Edx2/{name}"]
        Eg2 *= self.rho
        Eg2 += (1.0 - self.rho) * (g * g)
        dx = -(xp.sqrt(Edx2 + self.eps) / xp.sqrt(Eg2 + self.eps)) * g
        Edx2 *= self.rho
        Edx2 += (1.0 - self.rho) * (dx * dx)
        p += self.lr * dx


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adadelta": Adadelta}


def make_optimizer(name: str, params: dict[str, Array], lr: float | None = None) -> Optimizer:
    """``adam``, ``adadelta`` or ``sgd``; ``lr`` None takes the optimiser's default."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: choose one of {tuple(OPTIMIZERS)}")
    cls = OPTIMIZERS[name]
    return cls(params) if lr is None else cls(params, lr=lr)


__all__ = ["Adadelta", "Adam", "Optimizer", "SGD", "clip_grad_norm", "make_optimizer"]
