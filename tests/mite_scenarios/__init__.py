"""Scenario modules that mite itself loads (`mite scenario test`, `mite controller`/`runner`)
in the subprocess tests: tests/test_mite_scenario.py and tests/test_mite_distributed.py."""
