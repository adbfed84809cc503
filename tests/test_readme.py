"""The README's day-one walkthrough is true: its blocks are run, in order, in a scratch copy
of this repository, and every command must print what the README shows.

- A fenced block whose info string is ``yaml file=PATH`` is written to PATH (which must not
  exist yet: the walkthrough starts a site from nothing).
- A ``console`` block is commands (lines starting with ``$ ``), each followed by the lines it
  prints, stdout and stderr together. Each runs in bash (``-o pipefail``) from the top of the
  repository with ``kkc`` on PATH and must exit 0.
- The one normalisation: commit ids (7 to 40 lowercase hex digits) compare equal, as a
  commit's id depends on its time.
- No cluster runs here, so ``kubectl apply -f -`` is a stand-in: it checks that it is given a
  YAML stream of objects and prints the line ``kubectl apply`` prints for each object a
  cluster does not have yet. Any other ``kubectl`` command (``kubectl kustomize``, which kkc
  may use) runs the real kubectl.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT, make_repo

README = PROJECT / "README.md"
BLOCK = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
COMMIT_ID = re.compile(r"\b[0-9a-f]{7,40}\b")

KKC = """\
#!{python}
import sys
sys.path.insert(0, {compiler!r})
from kkc.cli import main
sys.exit(main())
"""

KUBECTL = """\
#!{python}
# stand-in for `kubectl apply -f -` on a cluster that has none of the objects yet
import os
import sys
import yaml
if sys.argv[1:] != ["apply", "-f", "-"]:
    real = {kubectl!r}
    if not real:
        sys.exit("test kubectl: no kubectl installed")
    os.execv(real, [real, *sys.argv[1:]])
for obj in yaml.safe_load_all(sys.stdin):
    if obj is None:
        continue
    group = obj["apiVersion"].rpartition("/")[0]
    kind = obj["kind"].lower() + (f".{{group}}" if group else "")
    print(f"{{kind}}/{{obj['metadata']['name']}} created")
"""


def walkthrough(text: str) -> list[tuple[str, str, list[str]]]:
    """The README's steps in order: ("file", PATH, lines) and ("run", COMMAND, output lines)."""
    steps: list[tuple[str, str, list[str]]] = []
    for match in BLOCK.finditer(text):
        info, body = match.group(1).split(), match.group(2).splitlines()
        if info[:1] == ["yaml"] and any(i.startswith("file=") for i in info[1:]):
            path = next(i for i in info[1:] if i.startswith("file="))[len("file=") :]
            steps.append(("file", path, body))
        elif info[:1] == ["console"]:
            assert body and body[0].startswith("$ "), f"console block not starting with $:\n{body}"
            for line in body:
                if line.startswith("$ "):
                    steps.append(("run", line[2:], []))
                else:
                    steps[-1][2].append(line)
    return steps


def _normal(lines: list[str]) -> list[str]:
    return [COMMIT_ID.sub("<commit id>", line) for line in lines]


def test_the_walkthrough_has_the_day_one_steps() -> None:
    steps = walkthrough(README.read_text(encoding="utf-8"))
    files = [what for kind, what, _ in steps if kind == "file"]
    commands = [what for kind, what, _ in steps if kind == "run"]
    assert files == []  # kkc init writes the site definition
    for command in (
        "kkc init site-c --services keystone,glance",
        "kkc build site-c",
        "kkc check site-c",
        "kkc build site-c --commit",
        "kkc bootstrap site-c | kubectl apply -f -",
    ):
        assert command in commands
    assert commands.index("kkc build site-c") < commands.index("kkc build site-c --commit")
    assert commands[0].startswith("kkc init site-c")


@pytest.mark.slow
def test_the_walkthrough_prints_what_the_readme_shows(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real = shutil.which("kubectl") or ""
    for name, script in (("kkc", KKC), ("kubectl", KUBECTL)):
        path = bin_dir / name
        path.write_text(
            script.format(python=sys.executable, compiler=str(PROJECT / "compiler"), kubectl=real),
            encoding="utf-8",
        )
        path.chmod(0o755)
    env = dict(os.environ)
    env.pop("KKC_CRD_DIR", None)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",  # stdout and stderr in the order they are written
        KKC_CACHE_DIR=str(tmp_path / "cache"),
    )

    steps = walkthrough(README.read_text(encoding="utf-8"))
    assert steps, "no walkthrough blocks found in README.md"
    for kind, what, lines in steps:
        if kind == "file":
            path = repo / what
            assert not path.exists(), f"{what} exists already; the walkthrough creates it"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
            continue
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", what],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
            check=False,
        )
        printed = result.stdout.splitlines()
        assert result.returncode == 0, f"$ {what}\nexit {result.returncode}:\n{result.stdout}"
        assert _normal(printed) == _normal(lines), f"$ {what}\nprinted:\n{result.stdout}"
