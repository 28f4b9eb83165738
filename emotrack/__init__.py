"""emotrack: video archives in, per-frame facial-emotion tables out."""

__version__ = "0.6.0"
