"""forklift: ML training jobs and inference endpoints from container images in any registry."""

__version__ = "0.1.0"
