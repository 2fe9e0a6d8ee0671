"""JupyterHub configuration for classes taking this course (docs/hub.md): several courses on one hub, as nbgrader
documents it ("Using nbgrader with JupyterHub", multiple classes).

The class list is `courses.json` in the hub's working folder (beside jupyterhub.sqlite):
{"courses": {COURSE_ID: {"grader": ACCOUNT, "instructors": [ACCOUNTS], "students": [ACCOUNTS]}}}.
For each course this sets up
* the hub groups `nbgrader-<course>` (its students) and `formgrade-<course>` (its instructors and grader account),
  which nbgrader's JupyterHub auth plugin reads: a student sees that course's assignments only;
* the course's Formgrader as a hub service named after the course, run by the grader account in its course
  folder `~<grader>/<course>` (a clone of this repository), reachable at /services/<course>/formgrader by the
  members of `formgrade-<course>` and nobody else.
Accounts are the machine's own (PAM passwords, each person's server started as their own system user).
"""
import json
import os
import pwd
import socket
from pathlib import Path

c = get_config()  # noqa: F821 - injected by JupyterHub

COURSES = json.loads(Path("courses.json").read_text())["courses"]

# What reaches every single-user server and grader service from the hub's own environment: where the global
# nbgrader config lives (JUPYTER_CONFIG_PATH, when it is not /etc/jupyter) and the course's CONVCOURSE_* settings
# (the exchange, MNIST's folder, grading limits). Nothing else of the hub's: its secrets stay with it.
PASSED_ON = {name: value for name, value in os.environ.items()
             if name == "JUPYTER_CONFIG_PATH" or name.startswith("CONVCOURSE_")}


def free_port() -> int:
    """A free port on loopback for a grader service (the hub's proxy routes /services/<course>/ to it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = {name for course in COURSES.values()
                                 for name in (course["grader"], *course["instructors"], *course["students"])}
c.Spawner.default_url = "/lab"
c.Spawner.environment = PASSED_ON

# A person's server may read its owner's own groups (nbgrader's auth plugin asks which courses they take), and
# nothing more than JupyterHub's default server scopes besides.
roles = [{"name": "server", "scopes": ["users:activity!user", "access:servers!server", "read:users:groups!user",
                                        "read:users:name!user"]}]
groups, services = {}, []
for course, people in COURSES.items():
    grader = people["grader"]
    try:
        folder = Path(pwd.getpwnam(grader).pw_dir) / course
    except KeyError:
        raise SystemExit(f"courses.json: course {course}'s grader account {grader!r} does not exist (useradd it)") from None
    groups[f"nbgrader-{course}"] = {"users": list(people["students"])}
    groups[f"formgrade-{course}"] = {"users": [*people["instructors"], grader]}
    roles += [
        # the course's Formgrader: open to its instructors and grader, nobody else
        {"name": f"formgrade-{course}", "groups": [f"formgrade-{course}"],
         "scopes": [f"access:services!service={course}"]},
        # the service's own token: nbgrader adds each student it grades to the course's group
        {"name": f"grader-{course}", "services": [course],
         "scopes": ["list:groups", f"groups!group=nbgrader-{course}", "read:users:groups"]},
    ]
    services.append({
        "name": course,  # nbgrader's rule: the service is named after the course
        "url": f"http://127.0.0.1:{free_port()}",
        "command": ["jupyterhub-singleuser"],
        "user": grader,
        "cwd": str(folder),
        "environment": {**PASSED_ON, "JUPYTERHUB_DEFAULT_URL": "/lab"},
        "oauth_no_confirm": True,
    })
c.JupyterHub.load_groups = groups
c.JupyterHub.load_roles = roles
c.JupyterHub.services = services
