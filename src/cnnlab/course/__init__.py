"""What the lectures teach on paper: convolution arithmetic, worked examples step by step,
classic image kernels, receptive fields, and the per-layer summary of a network.

Nothing here trains; the course commands import only this package and what it names.
"""
