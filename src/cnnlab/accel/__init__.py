"""Where and how fast the work runs: device, torch.distributed, number formats, memory layout
and the fast path that chooses among them by measurement.
"""
