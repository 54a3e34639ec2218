"""The package itself: its version is the project's, and every exported name exists."""

import re

import memscope
from conftest import SOURCE_DIR


def test_version_is_the_projects():
    cmake = (SOURCE_DIR / "CMakeLists.txt").read_text()
    version = re.search(r"project\(memscope VERSION ([0-9.]+)", cmake).group(1)
    assert memscope.__version__ == version


def test_every_exported_name_exists():
    missing = [name for name in memscope.__all__ if not hasattr(memscope, name)]
    assert missing == []
