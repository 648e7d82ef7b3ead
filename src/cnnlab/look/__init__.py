"""Looking inside a network: feature maps, filters, Grad-CAM, receptive-field pictures and the
one-page HTML report of a run.
"""
