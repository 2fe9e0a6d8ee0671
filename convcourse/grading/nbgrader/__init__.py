"""What plain ``nbgrader`` loads from ``nbgrader_config.py``: preprocessors, the sandboxed kernel manager and its parts.

Importing this package imports nothing else: the kernel guard below it is imported inside graded kernels.
"""
