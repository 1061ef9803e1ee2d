"""Benchmarks for digest: a seeded generator of realistic listings and profiles, and a runner that
measures ingest, match, render, a full day end to end and start-up against the project's targets.

Run `python -m bench --size small` (see bench/README.md).
"""
