"""Helpers shared by test folders (importable as ``support`` once ``tests/`` is on sys.path)."""
