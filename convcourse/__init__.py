"""convcourse: Convolutional neural networks 101, a self-grading JupyterLab course (PyTorch, MNIST).

Submodules are imported explicitly (``from convcourse.data import load_mnist``) so that
``import convcourse`` itself stays instant.
"""

__version__ = "0.1.0"
