"""The course's notebooks as Python: one module per assignment (its cells), the cell builders, the build.

Edit ``authoring/<assignment>.py``, then ``make notebooks`` rebuilds ``source/`` (running each notebook
once for the outputs nbval checks) and regenerates ``release/`` from it. Never edit the ``.ipynb``
files by hand: the next build overwrites them. Not part of the installed package: this is course
content, read from the checkout.
"""
