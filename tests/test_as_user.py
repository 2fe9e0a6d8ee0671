"""Every autograding test again, as an ordinary account instead of root: the same tests, the same scores.

Runs pytest as the account ``ccgrader`` over the sandbox, GradingExecute, grade-round and end-to-end
modules, so the hostile submissions get the very assertions they get as root, graded through
bubblewrap instead of the root launcher. The end-to-end module grades one assignment here
(``output_dimensions``, the cheapest) to keep CI within its time; the tiny course covers every
hostile case. About 3 minutes on 2 cores.
"""
from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest
from accounts import ROOT, account, ensure_bubblewrap, login_env, python, require_root, run_as

pytestmark = [pytest.mark.slow]

MODULES = ("tests/test_sandbox.py", "tests/test_warm_kernels.py", "tests/test_autograde.py", "tests/test_grading.py",
           "tests/test_grading_e2e.py")
# Skips that are right for an ordinary account: no memory cgroup is delegated to it on most machines.
ACCEPTED_SKIPS = ("no memory cgroup can be created here",)


def test_the_autograding_tests_pass_as_an_ordinary_account():
    require_root()
    ensure_bubblewrap()
    grader = account("ccgrader")
    report = f"/tmp/convcourse-as-user-{grader.name}.xml"  # the account's own file in /tmp
    env = login_env(grader, CONVCOURSE_E2E_ASSIGNMENTS="output_dimensions")
    done = run_as(grader, [python(), "-m", "pytest", *MODULES, "-p", "no:cacheprovider", "-q", "-rs",
                           f"--junitxml={report}"], env, cwd=ROOT, check=False, timeout=1800)
    output = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, output
    suite = ElementTree.parse(report).getroot().find("testsuite")
    skipped = [case for case in suite.iter("testcase") if case.find("skipped") is not None]
    unexpected = [(case.get("name"), case.find("skipped").get("message")) for case in skipped
                  if not any(reason in (case.find("skipped").get("message") or "") for reason in ACCEPTED_SKIPS)]
    assert not unexpected, output
    assert int(suite.get("tests")) - len(skipped) >= 50 and int(suite.get("failures")) == int(suite.get("errors")) == 0
    print(f"as {grader.name}: {suite.get('tests')} tests, {len(skipped)} skipped, {float(suite.get('time')):.0f} s")
