"""What is particular to an image task. So far classification's parts live here: test-time
augmentation, the diagnostics of an evaluation (top losses, calibration) and their figures.
"""
