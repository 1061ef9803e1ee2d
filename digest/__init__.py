"""digest: a personal research-feed digest emailer."""

__version__ = "0.1.0"
