"""No call outlives its deadline: stalls, trickles, retries, with and without hedging, for
complete() and complete_stream().  How late a cut comes (the promise: at most 10% + 50 ms) is
measured by benchmarks/deadline_overshoot.py, not asserted here."""

import time

import pytest

from failover_client import AllProvidersFailedError, FailoverClientError, StreamInterruptedError
from failover_client.failover import FailoverClient
from failover_client.testing import Fault, Reply

from chains import call, chain
from support import assert_cut_by_deadline

DEADLINE = 0.5
SLOW = Reply(text="slow " * 200)
# scenario -> what primary and backup do (the deadline runs out somewhere in there)
SCENARIOS = {
    "both stall before headers": (Fault.stall_before_headers(30), Fault.stall_before_headers(30)),
    "stall before the first output, then a stall": (Fault.stall_mid_stream(1, 30, reply=SLOW),
                                                    Fault.stall_before_headers(30)),
    "stall after output": (Fault.stall_mid_stream(4, 30, reply=SLOW), Fault.stall_before_headers(30)),
    "trickle past the deadline": (Fault.trickle(0.05, SLOW), Fault.trickle(0.05, SLOW)),
    "fail fast, then trickle": (Fault.status(503), Fault.trickle(0.05, SLOW)),
    "retry after 0.3 s, then stall": (Fault.rate_limit(retry_after=0.3), Fault.stall_before_headers(30)),
}


@pytest.mark.parametrize("hedge_after", [None, 0.1], ids=["unhedged", "hedged"])
@pytest.mark.parametrize("mode", ["complete", "stream"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_call_outlives_its_deadline(fake_provider, scenario, mode, hedge_after):
    primary, backup = SCENARIOS[scenario]
    fake_provider.script("primary", primary, primary)  # twice: the retry meets the same
    fake_provider.script("backup", backup)
    config = chain(fake_provider, "primary", "backup", sleeps=time.sleep).with_deadline(DEADLINE)
    client = FailoverClient(config.retry_primary(1).with_hedging(hedge_after))
    started = time.monotonic()
    with pytest.raises(FailoverClientError) as info:
        call(client, mode)
    assert_cut_by_deadline(started, DEADLINE)
    assert isinstance(info.value, (AllProvidersFailedError, StreamInterruptedError))


@pytest.mark.parametrize("mode", ["complete", "stream"])
def test_the_shorter_of_timeout_and_deadline_wins(fake_provider, mode):
    fake_provider.set_default("primary", Fault.stall_before_headers(30))
    fake_provider.set_default("backup", Fault.stall_before_headers(30))
    client = FailoverClient(chain(fake_provider, "primary", "backup").with_deadline(30))
    started = time.monotonic()
    with pytest.raises(AllProvidersFailedError, match="deadline"):
        call(client, mode, timeout=0.3)
    assert_cut_by_deadline(started, 0.3)
