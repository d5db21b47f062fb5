"""openr2v: an open, self-hostable reference-to-video service speaking the Wan R2V API."""

__version__ = "0.1.0"
