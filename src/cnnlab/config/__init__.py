"""TrainConfig, the one dataclass of every training default, and the recipes that swap those
defaults for a published way of training.
"""
