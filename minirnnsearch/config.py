"""The model's configuration: its sizes, its variant, and presets by name.

Shapes, the letters every model module uses: B batch, S source length, T target length,
E embedding (paper m=620), H hidden (n=1000), A alignment hidden (n'=1000), L maxout units
(l=500), Vx/Vy vocabularies.

The variants are the four models of the paper's story (``model.FAMILIES`` says which family
computes each):

    encdec     c_i = c = [fwd h_S ; bwd h_1], the fixed-length vector       (context_model.py)
    diagonal   c_i = h_min(i,S), two cursors moving in step                 (context_model.py)
    rnnsearch  c_i = sum_j alpha_ij h_j, the soft search of eq. 5-6         (context_model.py)
    cursors    no c_i: a latent monotone source cursor marginalised by DP   (cursor_model.py)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

VARIANTS = ("encdec", "diagonal", "rnnsearch", "cursors")
# Initialisations by name: the paper's appendix B.1, or PyTorch's defaults (params.init_params).
INITS = ("paper", "fan-in")

# Model sizes by name. "paper" is appendix A/B.1 of the paper (its vocabularies were 30,000).
PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(emb=32, hidden=64, align=64, maxout=32),        # debugging, seconds per epoch
    "small": dict(emb=128, hidden=256, align=256, maxout=128),   # the built-in corpus
    "paper": dict(emb=620, hidden=1000, align=1000, maxout=500),  # m, n, n', l of the paper
}


@dataclass
class Config:
    """Model configuration; sizes default to the ``small`` preset."""

    src_vocab: int              # Vx, source vocabulary size including the 4 specials
    tgt_vocab: int              # Vy, target vocabulary size including the 4 specials
    variant: str = "rnnsearch"  # rnnsearch | encdec | diagonal | cursors
    emb: int = 128              # E, word embedding size (paper m = 620)
    hidden: int = 256           # H, GRU state size per direction (paper n = 1000)
    align: int = 256            # A, alignment model hidden size (paper n' = 1000)
    maxout: int = 128           # L, maxout units of the deep output (paper l = 500)
    band: int = 0               # cursors, training only: emissions within +-band of the
                                # diagonal (0: every source position, the exact marginal)
    init: str = "paper"         # paper: appendix B.1; fan-in: PyTorch's defaults (params.py)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}: choose one of {VARIANTS}")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}: choose one of {INITS}")
        for f in fields(self):
            if f.type == "int" and getattr(self, f.name) < (0 if f.name == "band" else 1):
                raise ValueError(f"config {f.name} must be a "
                                 f"{'non-negative' if f.name == 'band' else 'positive'} integer")

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> Config:
        """``Config.from_preset("paper", src_vocab=30000, tgt_vocab=30000)``."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}: choose one of {tuple(PRESETS)}")
        return cls(**{**PRESETS[preset], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """The fields of ``d``; ``band`` and ``init``, added later, take their defaults when
        missing."""
        return cls(**{f.name: d[f.name] for f in fields(cls)
                      if f.name not in ("band", "init") or f.name in d})
