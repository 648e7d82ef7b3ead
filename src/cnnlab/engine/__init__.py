"""The training loop (train_one_epoch, evaluate, fit), optimisers and schedules by name, and the
moving average of the weights.
"""
