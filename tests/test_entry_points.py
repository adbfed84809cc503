"""The ways to start kkc besides the `kkc` entry point: `python -m kkc`, and the shell
completion scripts Typer generates (`kkc --show-completion`, `kkc --install-completion`).

These run real subprocesses: the completion options look at the program name and the
parent shell, which an in-process CliRunner does not have."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT

COMPILER = PROJECT / "compiler"


def _env(**extra: str) -> dict[str, str]:
    """This checkout's sources first, whatever kkc the interpreter has installed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("_KKC_")}
    env["PYTHONPATH"] = os.pathsep.join([str(COMPILER), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env.update(extra)
    return env


@pytest.fixture
def kkc_bin(tmp_path: Path) -> Path:
    """A directory with an executable `kkc` made like pip's console script (argv[0] is
    .../kkc, so the completion scripts are for the command `kkc`)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kkc"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom kkc.cli import main\nsys.exit(main())\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return bin_dir


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=60, check=False
    )


def test_python_dash_m_kkc_prints_the_version(tmp_path: Path) -> None:
    result = _run([sys.executable, "-m", "kkc", "--version"], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "kkc 0.1.0\n", "")


def test_python_dash_m_kkc_reports_errors_like_kkc(tmp_path: Path) -> None:
    result = _run([sys.executable, "-m", "kkc", "list"], tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"kkc list: no sites/ directory in {tmp_path.resolve()} or above"
    )


def _bash() -> str:
    for path in ("/bin/bash", "/usr/bin/bash"):
        if os.access(path, os.X_OK):
            return path
    pytest.skip("bash not installed")


def test_show_completion_prints_a_bash_script_for_kkc(kkc_bin: Path, tmp_path: Path) -> None:
    # `--show-completion` detects the shell it runs in: run it from bash, as the README says
    # (`kkc --show-completion >> ~/.bashrc`); the trailing `:` keeps bash from exec'ing kkc.
    path = f"{kkc_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    result = _run([_bash(), "-c", "kkc --show-completion; :"], tmp_path, PATH=path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    script = result.stdout
    assert "_kkc_completion()" in script
    assert "_KKC_COMPLETE=complete_bash" in script
    assert script.rstrip().endswith("complete -o default -F _kkc_completion kkc")


def test_the_bash_completion_completes_commands(kkc_bin: Path, tmp_path: Path) -> None:
    # what the generated function runs on <TAB> after `kkc bo`
    result = _run(
        [str(kkc_bin / "kkc")],
        tmp_path,
        _KKC_COMPLETE="complete_bash",
        COMP_WORDS="kkc bo",
        COMP_CWORD="1",
    )
    assert (result.returncode, result.stdout.split(), result.stderr) == (0, ["bootstrap"], "")


def test_install_completion_for_bash(kkc_bin: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    path = f"{kkc_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    result = _run(
        [_bash(), "-c", "kkc --install-completion; :"], tmp_path, PATH=path, HOME=str(home)
    )
    assert result.returncode == 0, result.stderr
    assert "bash completion installed in" in result.stdout
    installed = home / ".bash_completions" / "kkc.sh"
    assert "complete -o default -F _kkc_completion kkc" in installed.read_text(encoding="utf-8")
    assert "source" in (home / ".bashrc").read_text(encoding="utf-8")
