"""Pure forward/backward pairs: ``out, cache = op_forward(...)``, ``grads = op_backward(dout,
cache)``.

No state, no I/O. Shapes: B batch, S source length, T target length, E embedding, H hidden,
A alignment hidden, L maxout units, V vocabulary. Weights are stored (in, out) so that a batch of
row vectors multiplies on the right: ``x @ W_z`` is the paper's ``W_z x``.
"""
