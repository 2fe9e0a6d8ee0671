"""Everyone's nbgrader configuration on the hub: /etc/jupyter/nbgrader_config.py (docs/hub.md).

Students, instructors and each course's grader account read it. Every course has its own folder in the exchange
(`path_includes_course`), and nbgrader asks the hub which courses a person belongs to (their `nbgrader-<course>`
and `formgrade-<course>` groups): a student sees only the assignments of their own courses.
"""
import os

from nbgrader.auth import JupyterHubAuthPlugin

c = get_config()  # noqa: F821 - injected by nbgrader

# The shared exchange: world-writable and sticky (mkdir -p /srv/nbgrader/exchange; chmod 1777 ...).
# $CONVCOURSE_EXCHANGE moves it (the demo hub keeps its own under its state folder).
c.Exchange.root = os.environ.get("CONVCOURSE_EXCHANGE", "/srv/nbgrader/exchange")
c.Exchange.path_includes_course = True

# Only where the hub started the process (its API token is in the environment): a grader's shell outside the
# hub keeps nbgrader's default plugin, so `python -m convcourse.grading grade` works over ssh too.
if os.environ.get("JUPYTERHUB_API_TOKEN"):
    c.Authenticator.plugin_class = JupyterHubAuthPlugin
