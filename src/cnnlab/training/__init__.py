"""One training run, wired: config -> data + model -> task + engine -> run folder; the session
that checkpoints, resumes and stops cleanly; transfer learning from pretrained weights.
"""
