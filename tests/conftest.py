"""Shared fixtures."""

import pytest

from support import PROTOCOLS


@pytest.fixture(params=sorted(PROTOCOLS))
def protocol(request):
    return request.param
