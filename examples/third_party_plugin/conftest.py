"""Opt in to sealagent's fixtures for backend authors (``sector_inputs``)."""

pytest_plugins = ["sealagent.testing"]
