"""Internals of the Strata runtime (not a public API)."""
