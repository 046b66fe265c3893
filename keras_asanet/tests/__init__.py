"""Shared test utilities (the `TestCase` base class and fixtures writers)."""
