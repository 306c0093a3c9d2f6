"""The run's commit comes from git itself, with one clear line when there is none.

Real repositories made with the real ``git`` in tmp dirs: a commit, a subfolder, a linked work
tree, a repository with no commit yet, a folder in no repository, and git not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from drillbook.journal import environment_snapshot, git_commit, git_head
from drillbook.plugin import needs_backend


@pytest.fixture(autouse=True)
def _git() -> None:
    # Through the CI switch: a runner without git fails here instead of skipping unnoticed.
    needs_backend("git", None if shutil.which("git") else "git is not installed")


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR"):
        monkeypatch.delenv(name, raising=False)
    # tmp_path's parents are nobody's repository for these tests
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "a.txt").write_text("a\n")
    git(root, "add", "a.txt")
    git(root, "commit", "-q", "-m", "one")
    return root


def test_the_checked_out_commit_from_the_root_a_subfolder_and_a_linked_worktree(
    repo: Path, tmp_path: Path
) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert git_head(repo) == (head, None) and git_commit(repo) == head
    sub = repo / "drills" / "deep"
    sub.mkdir(parents=True)
    assert git_head(sub) == (head, None)
    git(repo, "worktree", "add", "-q", "-b", "other", str(tmp_path / "wt"))
    (tmp_path / "wt" / "c.txt").write_text("c\n")
    git(tmp_path / "wt", "add", "c.txt")
    git(tmp_path / "wt", "commit", "-q", "-m", "in the worktree")
    other = git(tmp_path / "wt", "rev-parse", "HEAD")
    assert other != head and git_head(tmp_path / "wt") == (other, None)


def test_no_repository_and_no_commit_yet_say_so(repo: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_head(plain) == (None, f"{plain} is not in a git repository")
    unborn = tmp_path / "unborn"
    unborn.mkdir()
    git(unborn, "init", "-q")
    assert git_head(unborn) == (None, "the git repository has no commit yet")


def test_git_not_installed_says_so(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert git_head(repo) == (None, "git is not installed")


def test_the_journal_records_the_commit_or_why_there_is_none(repo: Path, tmp_path: Path) -> None:
    env = environment_snapshot("t", repo, "defaults", False)
    assert env["git_commit"] == git(repo, "rev-parse", "HEAD") and env["git_commit_note"] is None
    plain = tmp_path / "plain"
    plain.mkdir()
    env = environment_snapshot("t", plain, "defaults", False)
    assert env["git_commit"] is None and "not in a git repository" in env["git_commit_note"]
