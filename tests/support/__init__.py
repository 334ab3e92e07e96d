"""Helpers shared by the test suites (database fixtures, builders)."""
