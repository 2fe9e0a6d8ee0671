"""The course on a JupyterHub: a demo hub an instructor stands up on one machine (``python -m convcourse.grading hub``).

Its configuration files are the ones docs/hub.md shows and the production set-up uses: ``hub/`` in the course.
"""
