#!/usr/bin/env bash
# Make bubblewrap (`bwrap`) available for grading as an ordinary user (convcourse.grading.sandbox.bwrap)
# and for the tests that grade as ordinary accounts.
exec "$(dirname "$0")/ensure-apt.sh" bwrap bubblewrap
