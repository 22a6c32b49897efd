"""Installs `simclr_controlled` (see README.md for the dependency decisions)."""
import setuptools

setuptools.setup(
    name="simclr_controlled",
    version="0.1.0",
    description=("SimCLR on synthetic datasets with known structure "
                 "(Hermann, Chen, Norouzi & Kornblith, 2020)."),
    packages=setuptools.find_packages(include=["simclr_controlled", "simclr_controlled.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow==2.21.*",
        "tensorboard",  # tf.summary needs it; TF 2.21 no longer installs it
        "keras>=3.10,<4",
        "numpy",
        "scikit-learn",
        "scipy",  # rank correlations (claims/diagnostics.py); scikit-learn installs it too
        "absl-py",
        "matplotlib",
        "hsluv",
    ],
    extras_require={"test": ["pytest", "pytest-xdist", "nbclient", "ipykernel", "nbformat"]},
)
