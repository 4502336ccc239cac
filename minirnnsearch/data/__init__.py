"""Data: tokenisation, vocabularies, reading parallel files, batches, the built-in corpus."""

from .batching import (
    Batch,
    epoch_batches,
    filter_by_length,
    make_batch,
    padding_share,
)
from .io import DataError, decode_lines, read_lines, read_parallel
from .tokenize import detokenize, tokenize
from .vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocab

__all__ = ["BOS_ID", "EOS_ID", "PAD_ID", "UNK_ID", "Batch", "DataError", "Vocab",
           "decode_lines", "detokenize", "epoch_batches",
           "filter_by_length", "make_batch", "padding_share", "read_lines", "read_parallel",
           "tokenize"]
