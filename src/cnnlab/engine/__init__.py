"""The task-agnostic loop (train_one_epoch, evaluate, fit), optimisers and schedules by name, and
the moving average of the weights. It knows no model, data set or task by name: a task object
passed in says how outputs become a loss and what is tallied.
"""
