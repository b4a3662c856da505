"""plan_build: repo2docker's file conventions read from a checked-out repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.builder.executors.base import BuildError
from services.builder.plan import UNSUPPORTED_FILES, BuildPlan, plan_build


def _repo(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_empty_repository_plans_nothing(tmp_path: Path) -> None:
    assert plan_build(tmp_path) == BuildPlan()


def test_top_level_requirements(tmp_path: Path) -> None:
    plan = plan_build(_repo(tmp_path, {"requirements.txt": "numpy\n"}))
    assert plan.binder_dir == ""
    assert plan.requirements == "requirements.txt"


def test_binder_dir_wins_over_top_level_requirements(tmp_path: Path) -> None:
    plan = plan_build(_repo(tmp_path, {"requirements.txt": "numpy\n", "binder/requirements.txt": "pandas\n"}))
    assert plan.binder_dir == "binder"
    assert plan.requirements == "binder/requirements.txt"


def test_binder_dir_without_requirements_ignores_top_level_ones(tmp_path: Path) -> None:
    plan = plan_build(_repo(tmp_path, {"requirements.txt": "numpy\n", "binder/postBuild": "#!/bin/sh\n"}))
    assert plan.binder_dir == "binder"
    assert plan.requirements == ""


def test_dot_binder_dir_is_used(tmp_path: Path) -> None:
    plan = plan_build(_repo(tmp_path, {".binder/requirements.txt": "x\n", "requirements.txt": "y\n"}))
    assert plan.binder_dir == ".binder"
    assert plan.requirements == ".binder/requirements.txt"


def test_both_binder_and_dot_binder_is_an_error(tmp_path: Path) -> None:
    _repo(tmp_path, {"binder/requirements.txt": "x\n", ".binder/requirements.txt": "y\n"})
    with pytest.raises(BuildError, match=r"'binder' and a '\.binder'"):
        plan_build(tmp_path)


@pytest.mark.parametrize("name", sorted(UNSUPPORTED_FILES))
def test_unsupported_file_at_top_names_file_and_what_builds_it(tmp_path: Path, name: str) -> None:
    _repo(tmp_path, {name: "x\n", "requirements.txt": "numpy\n"})
    with pytest.raises(BuildError) as info:
        plan_build(tmp_path)
    assert name in str(info.value)
    assert "repo2docker" in str(info.value) and "local executor" in str(info.value)


@pytest.mark.parametrize("name", sorted(UNSUPPORTED_FILES))
def test_unsupported_file_in_binder_dir_names_its_path(tmp_path: Path, name: str) -> None:
    _repo(tmp_path, {f"binder/{name}": "x\n"})
    with pytest.raises(BuildError) as info:
        plan_build(tmp_path)
    assert f"binder/{name}" in str(info.value)
    assert "repo2docker" in str(info.value) and "local executor" in str(info.value)


def test_unsupported_file_at_top_is_ignored_when_binder_dir_exists(tmp_path: Path) -> None:
    # repo2docker reads only the binder folder when there is one.
    plan = plan_build(_repo(tmp_path, {"environment.yml": "x\n", "binder/requirements.txt": "numpy\n"}))
    assert plan.requirements == "binder/requirements.txt"


@pytest.mark.parametrize(
    "text, version",
    [("python-3.10", "3.10"), ("python-3.12.1", "3.12"), ("python-3.11\n", "3.11"), ("  python-3.9  \n\n", "3.9"), ("python-3.10\r\n", "3.10")],
)
def test_runtime_txt_python_version(tmp_path: Path, text: str, version: str) -> None:
    assert plan_build(_repo(tmp_path, {"runtime.txt": text})).python_version == version


def test_runtime_txt_in_binder_dir(tmp_path: Path) -> None:
    plan = plan_build(_repo(tmp_path, {"binder/runtime.txt": "python-3.11\n", "runtime.txt": "python-3.9\n"}))
    assert plan.python_version == "3.11"


def test_no_runtime_txt_means_default_python(tmp_path: Path) -> None:
    assert plan_build(_repo(tmp_path, {"requirements.txt": ""})).python_version == ""


@pytest.mark.parametrize("text", ["r-4.1", "r-4.1-2021-10-01", "r-2019-01-01"])
def test_runtime_txt_r_is_an_error_mentioning_r(tmp_path: Path, text: str) -> None:
    with pytest.raises(BuildError, match=r"\bR\b"):
        plan_build(_repo(tmp_path, {"runtime.txt": text}))


@pytest.mark.parametrize("text", ["garbage", "python3.10", "python-3", "python-three", "", "python-3.10 extra"])
def test_runtime_txt_garbage_is_an_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(BuildError, match="runtime.txt"):
        plan_build(_repo(tmp_path, {"runtime.txt": text}))


@pytest.mark.parametrize("name", ["setup.py", "pyproject.toml"])
def test_package_at_top_is_installed(tmp_path: Path, name: str) -> None:
    assert plan_build(_repo(tmp_path, {name: ""})).install_repository is True


@pytest.mark.parametrize("name", ["setup.py", "pyproject.toml"])
def test_package_at_top_is_not_installed_with_binder_dir(tmp_path: Path, name: str) -> None:
    for folder in ("binder", ".binder"):
        root = tmp_path / ("dot" if folder.startswith(".") else "plain")
        _repo(root, {name: "", f"{folder}/requirements.txt": "numpy\n"})
        assert plan_build(root).install_repository is False


def test_no_package_is_not_installed(tmp_path: Path) -> None:
    assert plan_build(_repo(tmp_path, {"requirements.txt": ""})).install_repository is False


def test_post_build_and_start_at_top(tmp_path: Path) -> None:
    plan = plan_build(_repo(tmp_path, {"postBuild": "#!/bin/sh\n", "start": "#!/bin/sh\nexec \"$@\"\n"}))
    assert plan.post_build == "postBuild"
    assert plan.start == "start"


def test_post_build_and_start_relative_to_repo_in_binder_dir(tmp_path: Path) -> None:
    plan = plan_build(_repo(tmp_path, {"binder/postBuild": "#!/bin/sh\n", "binder/start": "#!/bin/sh\n", "postBuild": "#!/bin/sh\n"}))
    assert plan.post_build == "binder/postBuild"
    assert plan.start == "binder/start"


def test_post_build_in_dot_binder_dir(tmp_path: Path) -> None:
    assert plan_build(_repo(tmp_path, {".binder/postBuild": "#!/bin/sh\n"})).post_build == ".binder/postBuild"


def test_directories_named_like_config_files_are_not_files(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").mkdir()
    (tmp_path / "postBuild").mkdir()
    plan = plan_build(tmp_path)
    assert plan.requirements == ""
    assert plan.post_build == ""


@pytest.mark.parametrize("name", ["runtime.txt", "requirements.txt", "binder/runtime.txt", "postBuild", "setup.py"])
def test_a_configuration_file_linking_out_of_the_repository_is_refused(tmp_path: Path, name: str) -> None:
    """The builder reads these with its own rights: a link to a secret would print it in the public log."""
    secret = tmp_path / "token.key"
    secret.write_text("python-3.11\n")
    repo = tmp_path / "repo"
    (repo / Path(name).parent).mkdir(parents=True, exist_ok=True)
    if name.startswith("binder/"):
        (repo / "binder" / "requirements.txt").write_text("numpy\n")
    (repo / name).symlink_to(secret)
    with pytest.raises(BuildError, match="link to outside the repository"):
        plan_build(repo)


def test_a_binder_folder_linking_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    elsewhere = _repo(tmp_path / "elsewhere", {"runtime.txt": "python-3.11\n"})
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "binder").symlink_to(elsewhere)
    with pytest.raises(BuildError, match="binder is a link to outside the repository"):
        plan_build(repo)


def test_links_inside_the_repository_are_followed(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"env/requirements.txt": "numpy\n"})
    (repo / "requirements.txt").symlink_to(repo / "env" / "requirements.txt")
    assert plan_build(repo).requirements == "requirements.txt"
