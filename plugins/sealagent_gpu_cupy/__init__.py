"""gpu-cupy (placeholder during development)."""
