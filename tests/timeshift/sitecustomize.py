"""Moves this Python process's wall clock, for checking that nothing depends on the day it runs.

With this folder on PYTHONPATH and FTBOT_TEST_WALL_CLOCK set (`2027-01-20`, or an ISO instant), every
Python process of the run (pytest, its xdist workers, `ftbot serve`, the demo, Ray's jobs) runs on a
wall clock moved to that date: time-machine's `travel(dest, tick=True)`, started at interpreter
start, moves `time.time()`, `datetime.now()`, `date.today()` and friends; the monotonic clock, and so
every timer and thread wait, is untouched (libfaketime is not usable here: it breaks Python's thread
waits). The first process records the real time it moved the clock at (`…@<unix seconds>` appended
to the variable), and every process started from it moves by the same offset, so their wall clocks
agree (a signed request from one is fresh for another). `.ci/run` uses it for its date-shifted run.
Without the variable it does nothing.
"""

import os

_VAR = "FTBOT_TEST_WALL_CLOCK"
_when = os.environ.get(_VAR, "").strip()
if _when:
    import time
    from datetime import UTC, date, datetime, timedelta

    import time_machine

    _real_now = time.time()  # before the travel starts: the machine's own
    _text, _, _since = _when.partition("@")
    if len(_text) == 10:
        _dest = datetime.combine(date.fromisoformat(_text), datetime.min.time(), UTC).replace(hour=12)
    else:
        _dest = datetime.fromisoformat(_text.replace("Z", "+00:00"))
    if _since:
        _dest += timedelta(seconds=_real_now - float(_since))
    else:
        os.environ[_VAR] = f"{_text}@{_real_now:.6f}"
    _traveller = time_machine.travel(_dest, tick=True)
    _traveller.start()
    time.time()  # time-machine starts ticking at the first reading: now, not whenever that comes
