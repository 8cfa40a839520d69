"""`make lint`'s buf breaking baseline: never the working tree's protos compared with themselves."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools.protogen import choose_baseline


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def _commit(repo: Path, text: str, name: str = "retail/a/v1/a.proto") -> str:
    path = repo / "protos" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", text)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository on `main` whose two commits both change protos/."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _commit(repo, "// one")
    _commit(repo, "// two")
    return repo


def test_on_main_the_last_commit_is_checked_against_the_one_before_it(repo: Path):
    before = _git(repo, "rev-parse", "HEAD~1")

    baseline = choose_baseline(root=repo)

    assert baseline.ref == before
    assert "HEAD~1" in baseline.why


def test_uncommitted_proto_changes_on_main_are_checked_against_the_last_commit(repo: Path):
    (repo / "protos" / "retail" / "b.proto").write_text("// new, not committed")

    baseline = choose_baseline(root=repo)

    assert baseline.ref == _git(repo, "rev-parse", "HEAD")


def test_a_branch_is_checked_against_where_it_left_main_even_after_main_moves_on(repo: Path):
    fork = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "-b", "feature")
    _commit(repo, "// feature one")
    _commit(repo, "// feature two")
    _git(repo, "checkout", "-q", "main")
    _commit(repo, "// main moves on")
    _git(repo, "checkout", "-q", "feature")

    baseline = choose_baseline(root=repo)

    assert baseline.ref == fork
    assert "merge-base" in baseline.why


def test_a_fresh_clone_of_a_branch_finds_main_on_the_remote(repo: Path, tmp_path: Path):
    fork = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "-b", "feature")
    _commit(repo, "// feature")
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", "--branch", "feature", str(repo), str(clone))

    baseline = choose_baseline(root=clone)

    assert baseline.ref == fork
    assert "origin/main" in baseline.why


def test_an_explicit_baseline_wins(repo: Path):
    baseline = choose_baseline("v1.0.0", root=repo)

    assert baseline.ref == "v1.0.0"


def test_a_repository_with_one_commit_is_skipped_saying_why(tmp_path: Path):
    repo = tmp_path / "single"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _commit(repo, "// only")

    baseline = choose_baseline(root=repo)

    assert baseline.ref is None
    assert "first commit" in baseline.why


def test_a_shallow_clone_is_skipped_saying_how_to_fix_it(repo: Path, tmp_path: Path):
    clone = tmp_path / "shallow"
    _git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))

    baseline = choose_baseline(root=clone)

    assert baseline.ref is None
    assert "shallow" in baseline.why
    assert "BUF_AGAINST" in baseline.why


def test_a_folder_outside_git_is_skipped_saying_why(tmp_path: Path):
    baseline = choose_baseline(root=tmp_path)

    assert baseline.ref is None
    assert "not a git checkout" in baseline.why
