"""The ``fake_graph`` pytest fixture; import it into a conftest.py to use it elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.graph.fake_graph.fake import FakeGraph


@pytest.fixture
def fake_graph(tmp_path: Path) -> Iterator[FakeGraph]:
    """A started fake Graph + identity platform with fresh state, stopped after the test."""
    fake = FakeGraph(tmp_path / "fake-graph")
    try:
        yield fake
    finally:
        fake.stop()
    if fake.internal_errors:
        pytest.fail("the fake Graph itself failed:\n" + "\n".join(fake.internal_errors))
