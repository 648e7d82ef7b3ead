"""One module per image task. A task says what a data set yields as targets, how a model's output
becomes a loss, what is tallied on the device per step, which metrics evaluation reports, what
`predict` writes for one image, and which pictures evaluate and report draw.
"""
