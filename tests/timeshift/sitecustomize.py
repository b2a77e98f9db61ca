"""Moves this Python process's wall clock, for checking that nothing depends on the day it runs.

With this folder on PYTHONPATH and FTBOT_TEST_WALL_CLOCK set (`2027-01-20`, or an ISO instant), every
Python process of the run (pytest, its xdist workers, `ftbot serve`, the demo, Ray's jobs) starts at
that date: time-machine's `travel(dest, tick=True)`, started at interpreter start, moves
`time.time()`, `datetime.now()`, `date.today()` and friends; the monotonic clock, and so every timer
and thread wait, is untouched (libfaketime is not usable here: it breaks Python's thread waits).
`.ci/run` uses it for its date-shifted run. Without the variable it does nothing.
"""

import os

_when = os.environ.get("FTBOT_TEST_WALL_CLOCK", "").strip()
if _when:
    from datetime import UTC, date, datetime

    import time_machine

    if len(_when) == 10:
        _dest = datetime.combine(date.fromisoformat(_when), datetime.min.time(), UTC).replace(hour=12)
    else:
        _dest = datetime.fromisoformat(_when.replace("Z", "+00:00"))
    _traveller = time_machine.travel(_dest, tick=True)
    _traveller.start()
