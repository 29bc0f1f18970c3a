"""Atomic writes: the published file's permissions and an untouched target on failure."""
import os
import stat

import pytest

from ladder_tf.io_utils import atomic_path, atomic_write_text


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_write_gives_umask_permissions_not_the_temporary_files(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o666 & ~umask


def test_failed_write_leaves_the_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["a.txt"]
