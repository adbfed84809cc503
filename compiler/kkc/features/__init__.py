"""Site-level features that overlays switch on (see overlays/<name>/defaults.yaml)."""
