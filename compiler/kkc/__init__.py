"""kkc: the Kolla Kubernetes Compiler."""

__version__ = "0.1.0"
