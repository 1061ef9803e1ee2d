"""Moves this interpreter's wall clock ahead when TESTS_CLOCK_SHIFT_SECONDS is set (tests only).

`.ci/run` runs the suite a second time with this directory on PYTHONPATH and the variable set,
so pytest, its xdist workers and every `python -m digest` the tests start see the same later
day: any test that depends on the date it runs on fails there. Only the wall clock moves
(time.time, datetime.now, ...: time-machine, ticking); the monotonic clock, and so every
timeout, sleep and deadline, stays real. A test that starts a child with an environment of its
own passes these two variables on through `tests.child_env`.
"""

import os

_SHIFT = os.environ.get("TESTS_CLOCK_SHIFT_SECONDS")
if _SHIFT:
    import time

    import time_machine

    # A timestamp, not an aware datetime: time-machine would also set the local zone to the
    # datetime's, and the tests of local time need the TZ they were given.
    time_machine.travel(time.time() + float(_SHIFT), tick=True).start()
