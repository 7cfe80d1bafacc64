import os

from hypothesis import settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# The suite's property tests run the same cases every time, so a test run (and CI) passes or
# fails on the code alone; new cases are explored by `benchmarks/fuzz_long.py` or with
# HYPOTHESIS_PROFILE=explore.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
