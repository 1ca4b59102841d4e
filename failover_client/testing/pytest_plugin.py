"""pytest plugin: the `fake_provider` fixture (a started FakeProviderServer per test).

Registered as a `pytest11` entry point by the package; a test module can also import the
fixture directly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import FakeProviderServer


@pytest.fixture(name="fake_provider")  # the explicit name survives `import ... as ...`
def fake_provider() -> Iterator[FakeProviderServer]:
    """A running fake provider server, stopped (all connections closed) after the test."""
    with FakeProviderServer() as server:
        yield server
