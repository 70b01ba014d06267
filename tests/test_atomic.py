import os
import stat

import pytest

from hyenadna.atomic import atomic_path, atomic_write_text


def test_atomic_write_gets_umask_permissions(tmp_path):
    # Regression: mkstemp-based writes left metrics.json / best.ckpt readable by the owner only.
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.tsv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tsv"]
