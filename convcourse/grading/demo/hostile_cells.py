"""The code of the hostile cells that :mod:`convcourse.grading.demo.samples` plants in otherwise normal submissions."""
from __future__ import annotations

LOOP = "while True:  # an infinite loop\n    pass"
STUBBORN_LOOP = ("import time\nwhile True:  # an infinite loop that ignores interrupts\n    try:\n"
                 "        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass")
SYS_EXIT = "import sys\nsys.exit('leaving early')"
OS_EXIT = "import os\nos._exit(1)"
KILL = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
SWALLOW_CUSTOM_EXC = ("# every error disappears: the cell shows nothing and looks like it passed\n"
                      "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)")
SWALLOW_AST = """import ast

class SwallowErrors(ast.NodeTransformer):
    def visit_Module(self, node):  # wrap every later cell in try/except BaseException: pass
        handler = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None, body=[ast.Pass()])
        node.body = [ast.Try(body=node.body or [ast.Pass()], handlers=[handler], orelse=[], finalbody=[])]
        return ast.fix_missing_locations(node)

get_ipython().ast_transformers.append(SwallowErrors())"""
PATCH_CHECKS = """import builtins, importlib, math
import convcourse.checks as checks

for name in dir(checks):  # every checking helper becomes a no-op
    if name.startswith(("check", "assert")):
        setattr(checks, name, lambda *args, **kwargs: None)
importlib.reload = lambda module: module  # so the tests' reload keeps the patched helpers
builtins.abs = lambda value: 0  # every tolerance comparison passes
math.isclose = lambda *args, **kwargs: True"""


def bomb(mb: int) -> str:
    """Allocates 64 MiB at a time until something stops it, or ``mb`` is reached."""
    return (f"def grab():  # a memory bomb: 64 MiB at a time, up to {mb} MiB\n    hog = []\n"
            f"    for _ in range({max(1, mb // 64)}):\n        hog.append(bytearray(64 * 2**20))\n    return len(hog)\n"
            "print('allocated', 64 * grab(), 'MiB: NOTHING STOPPED THE MEMORY BOMB')")


def network(target: tuple[str, int] | None) -> str:
    """Tries a public resolver, PyPI and ``target`` (e.g. a listener on the grader's loopback)."""
    targets = [("1.1.1.1", 53), ("pypi.org", 443)] + ([tuple(target)] if target else [])
    return ("import socket\nreached = []\n"
            f"for host, port in {targets!r}:\n    try:\n"
            "        socket.create_connection((host, port), timeout=3).close()\n        reached.append((host, port))\n"
            "    except OSError as error:\n        print('no connection to', host, port, type(error).__name__)\n"
            "print('NETWORK REACHED', reached) if reached else print('no network')")


def escape(root: str | None) -> str:
    """Tries to delete gradebooks and write outside its folder: relative, next to the package, in ``root``."""
    roots = ["pathlib.Path('../../..')", "pathlib.Path(convcourse.__file__).resolve().parent.parent"]
    roots += [f"pathlib.Path({root!r})"] if root else []
    return ("import pathlib, convcourse\n"
            f"for root in [{', '.join(roots)}]:\n"
            "    for action, path in (('delete', root / 'gradebook.db'), ('write', root / 'escaped-by-student.txt'),\n"
            "                         ('write', root / 'nbgrader_config.py')):\n"
            "        try:\n"
            "            path.unlink() if action == 'delete' else path.write_text('escaped')\n"
            "            print('ESCAPED:', action, path)\n"
            "        except OSError as error:\n"
            "            print('blocked:', action, path, type(error).__name__)")
