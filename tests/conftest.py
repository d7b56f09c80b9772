"""Test-wide settings."""

from hypothesis import settings

# Speed belongs in the benchmark: a property test fails on a wrong answer, never on a slow
# example (CI machines are shared and have two cores).
settings.register_profile("credentials-consumer", deadline=None)
settings.load_profile("credentials-consumer")
