import os

from hypothesis import settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# kernels compile in place on first call, as the tests expect of the kernels they run (the
# serial-first switch has its own tests, which turn it on: tests/engine/test_serial_first.py)
os.environ.setdefault("NETBUILDER_SERIAL_FIRST", "0")

# The suite's property tests run the same cases every time, so a test run (and CI) passes or
# fails on the code alone; new cases are explored by `benchmarks/fuzz_long.py` or with
# HYPOTHESIS_PROFILE=explore.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
