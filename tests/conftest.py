import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

from hypothesis import settings

# Property tests are deterministic: the same examples on every run and machine.
settings.register_profile("neuroevo", derandomize=True, deadline=None)
settings.load_profile("neuroevo")
