"""Using a trained run: load it for inference, `cnnlab evaluate` and `cnnlab predict`."""
