"""The benchmark, ``python -m minirnnsearch.bench`` (its help, in ``cli.py``, says what it
measures; docs/performance.md shows it), a module per mode:

    cli            the command line: the options, their checks, which mode runs
    steps          training steps and beam decoding on random ids: ms per step, tokens/s, the
                   analytic FLOP count (train_flops) against the machine's sgemm; --profile
    opprofile      --profile's op profiler: a step's time by op and kind of work (NumPy only)
    against_torch  --compare torch: the same steps in PyTorch, each side in its own process
    ranks          --ranks K: data-parallel steps under mpiexec
    quality        --compare torch --corpus DIR --minutes M: BLEU after equal training time

This file imports none of them, so that ``python -m minirnnsearch.bench.quality`` (a side's
child process of the quality comparison) runs its module once.
"""
