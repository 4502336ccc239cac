"""Data: tokenisation, vocabularies, reading parallel files, batches, the built-in corpus."""

from .batching import (
    Batch,
    batches_per_epoch,
    epoch_batches,
    filter_by_length,
    make_batch,
    padding_share,
)
from .io import DataError, decode_lines, read_lines, read_parallel
from .tokenize import detokenize, tokenize
from .vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocab

__all__ = ["BOS_ID", "EOS_ID", "PAD_ID", "UNK_ID", "Batch", "DataError", "Vocab",
           "batches_per_epoch", "decode_lines", "detokenize", "epoch_batches",
           "filter_by_length", "make_batch", "padding_share", "read_lines", "read_parallel",
           "tokenize"]
