"""Settings for the whole test session, made before any test module is imported."""

import os

# scikit-learn's estimator checks test array-API input (here with NumPy as the namespace) only
# when SciPy was imported with this set; without it that check is skipped, not passed.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
