"""The shared fixtures of conftest.py: a test that writes into a repository other tests
share is caught (and fails), and the shared trees cannot be changed in place."""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType

import pytest

from conftest import Shared, fingerprint
from helpers import write


def test_a_write_into_a_shared_repository_fails_the_test(tmp_path: Path) -> None:
    write(tmp_path, "deploy/site-a/kustomization.yaml", "resources: []\n")
    shared = Shared(tmp_path, fingerprint(tmp_path))
    shared.check("repository")  # untouched
    for change in (
        lambda: write(tmp_path, "deploy/site-a/notes.txt", "new file\n"),
        lambda: write(tmp_path, "deploy/site-a/kustomization.yaml", "resources: [x]\n"),
        lambda: os.utime(tmp_path / "deploy/site-a/kustomization.yaml", ns=(1, 1)),
        lambda: (tmp_path / "deploy/site-a/kustomization.yaml").unlink(),
    ):
        change()
        with pytest.raises(AssertionError, match="a test changed the shared repository in "):
            shared.check("repository")
        shared = Shared(tmp_path, fingerprint(tmp_path))


def test_the_shared_trees_are_read_only(example_trees) -> None:
    assert sorted(example_trees) == ["site-a", "site-a-ha", "site-b"]
    files = example_trees["site-a"]
    assert isinstance(files, MappingProxyType) and "kustomization.yaml" in files
    with pytest.raises(TypeError):
        files["kustomization.yaml"] = b""  # type: ignore[index]
