"""simclr_controlled: what does a contrastive (SimCLR) model learn?

Reproduces Hermann, Chen, Norouzi & Kornblith (2020), "Understanding
self-supervised learning using controlled datasets with known structure".
"""
__version__ = "0.1.0"
