"""Back-off, Retry-After parsing and deadlines, with injected clocks and randomness."""

from email.utils import formatdate

import pytest

from failover_client.retry import Deadline, RetryPolicy, parse_retry_after


@pytest.mark.parametrize("headers, seconds", [
    ({"retry-after": "2"}, 2.0),
    ({"retry-after": "1.5"}, 1.5),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the millisecond header wins
    ({"retry-after-ms": "junk", "retry-after": "3"}, 3.0),
    ({"retry-after": "0"}, 0.0),
    ({}, None),
    ({"retry-after": "soon"}, None),
    # unreadable, so the normal back-off applies rather than "retry at once"
    ({"retry-after": "-4"}, None),
    ({"retry-after": "-1"}, None),
    ({"retry-after": "nan"}, None),
    ({"retry-after": "-inf"}, None),
    ({"retry-after": "inf"}, None),
    ({"retry-after-ms": "nan"}, None),
    ({"retry-after-ms": "nan", "retry-after": "2"}, 2.0),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),  # a date long past
])
def test_parse_retry_after(headers, seconds):
    assert parse_retry_after(headers) == seconds


def test_parse_retry_after_http_date():
    now = 1_800_000_000.0
    headers = {"retry-after": formatdate(now + 30, usegmt=True)}
    assert parse_retry_after(headers, now=lambda: now) == pytest.approx(30, abs=1)


def test_backoff_is_exponential_capped_and_fully_jittered():
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, jitter=False)
    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    jittered = RetryPolicy(base_delay=0.5, max_delay=8.0)
    assert jittered.delay(3, rand=lambda: 0.25) == 0.5
    assert jittered.delay(3, rand=lambda: 0.0) == 0.0


def test_server_hint_is_honoured_up_to_the_cap_then_refused():
    policy = RetryPolicy(max_retry_after=10)
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=60.0) is None


def test_policy_is_immutable():
    with pytest.raises(AttributeError):
        RetryPolicy().base_delay = 2  # type: ignore[misc]


def test_deadline_with_fake_clock():
    now = [100.0]
    deadline = Deadline(5, clock=lambda: now[0])
    assert deadline.remaining() == 5 and not deadline.expired()
    assert deadline.cap(600) == 5 and deadline.cap(2) == 2
    now[0] = 106.0
    assert deadline.remaining() == 0 and deadline.expired()
    assert Deadline(None).remaining() is None and not Deadline(None).expired()
