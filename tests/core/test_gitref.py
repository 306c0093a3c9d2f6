"""``.git`` read directly must agree with ``git rev-parse HEAD`` in every layout it answers for.

Real repositories made with the real ``git`` in tmp dirs: loose refs, packed refs, a detached
HEAD, a linked work tree, a subfolder, an unborn branch, no repository at all.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from drillbook.gitref import read_head
from drillbook.journal import git_commit

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


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


def rev_parse(cwd: Path) -> str | None:
    out = subprocess.run(
        ["git", "-C", str(cwd), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=60
    )
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_CEILING_DIRECTORIES"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "a.txt").write_text("a\n")
    git(root, "add", "a.txt")
    git(root, "commit", "-q", "-m", "one")
    return root


def test_loose_then_packed_then_detached(repo: Path) -> None:
    assert read_head(repo) == (True, rev_parse(repo)) and rev_parse(repo) is not None
    (repo / "b.txt").write_text("b\n")
    git(repo, "add", "b.txt")
    git(repo, "commit", "-q", "-m", "two")
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert read_head(repo) == (True, rev_parse(repo))
    first = git(repo, "rev-list", "--max-parents=0", "HEAD")
    git(repo, "checkout", "-q", "--detach", first)
    assert read_head(repo) == (True, first) and rev_parse(repo) == first


def test_subfolder_and_linked_worktree(repo: Path, tmp_path: Path) -> None:
    sub = repo / "drills" / "deep"
    sub.mkdir(parents=True)
    assert read_head(sub) == (True, rev_parse(sub)) and rev_parse(sub) is not None
    git(repo, "worktree", "add", "-q", "-b", "other", str(tmp_path / "wt"))
    (tmp_path / "wt" / "c.txt").write_text("c\n")
    git(tmp_path / "wt", "add", "c.txt")
    git(tmp_path / "wt", "commit", "-q", "-m", "in the worktree")
    assert (tmp_path / "wt" / ".git").is_file()
    assert read_head(tmp_path / "wt") == (True, rev_parse(tmp_path / "wt"))
    assert rev_parse(tmp_path / "wt") != rev_parse(repo)


def test_no_repository_and_layouts_left_to_git(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    if rev_parse(plain) is None:  # tmp is not inside some repository on this machine
        assert read_head(plain) == (True, None) and git_commit(plain) is None
    unborn = tmp_path / "unborn"
    unborn.mkdir()
    git(unborn, "init", "-q")
    assert read_head(unborn) == (False, None) and git_commit(unborn) is None
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    assert read_head(bare) == (False, None) and git_commit(bare) == rev_parse(repo)
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    assert read_head(repo) == (False, None)  # git's own rules apply
    assert git_commit(plain) == rev_parse(repo)


def test_this_checkout() -> None:
    here = Path(__file__).resolve().parent
    expected = rev_parse(here)
    if expected is None:
        pytest.skip("not run from a git checkout")
    assert read_head(here) in ((True, expected), (False, None))
    assert git_commit(here) == expected
