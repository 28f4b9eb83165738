"""Networks: one file per model, each with its config, builder/loader and documented contract.

TensorFlow is imported only inside the functions that need it, so that importing emotrack,
its CLI and its flows stays fast.
"""
