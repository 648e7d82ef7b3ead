"""The run folder: the names of its files, config.json, metrics.jsonl, checkpoints that cannot
be torn or run code, and everything an exact resume needs.
"""
