"""Cost of an answer: cached reads, cache writes, reasoning, long-context tiers and batch.

Every expected figure is worked out by hand below from the prices the providers publish (the
page is named next to each), not read from the registry, so a wrong catalogue row or a wrong
cost rule both fail here.
"""

import pytest

from failover_client import CompletionRequest, InvalidArgumentError, Message, Usage, collect
from failover_client.models import ModelInfo, cost, cost_of, lookup
from failover_client.testing import Reply
from tests.support import make_provider

# platform.claude.com/docs/en/about-claude/pricing: Claude Sonnet 4.5 is $3 input, $3.75 5-minute
# cache writes, $0.30 cache hits, $15 output per million tokens; batch is 50% off.
SONNET_USAGE = Usage(input_tokens=10_000, output_tokens=1_000, cache_read_tokens=6_000, cache_write_tokens=2_000)
SONNET_COST = (2_000 * 3 + 6_000 * 0.30 + 2_000 * 3.75 + 1_000 * 15) / 1e6  # = 0.0303


def test_cached_reads_and_writes_are_billed_at_their_own_rates():
    assert SONNET_COST == pytest.approx(0.0303)
    assert cost(SONNET_USAGE, lookup("anthropic/claude-sonnet-4-5")) == pytest.approx(0.0303)


def test_cache_pricing_is_not_the_full_input_rate():
    full_rate = (10_000 * 3 + 1_000 * 15) / 1e6  # what billing every prompt token at $3 would say: 0.045
    assert cost(SONNET_USAGE, lookup("claude-sonnet-4-5")) == pytest.approx(full_rate - 0.0147)


def test_openai_cached_input_is_a_tenth_on_the_gpt5_family():
    # developers.openai.com pricing: gpt-5.4 $2.50 input, $0.25 cached input, $15 output.
    usage = Usage(input_tokens=50_000, output_tokens=2_000, cache_read_tokens=40_000)
    assert cost(usage, lookup("gpt-5.4")) == pytest.approx((10_000 * 2.50 + 40_000 * 0.25 + 2_000 * 15) / 1e6)
    assert cost(usage, lookup("gpt-5.4")) == pytest.approx(0.065)


def test_reasoning_tokens_are_billed_as_output_when_not_priced_apart():
    # o3: $2 input, $8 output; 2,500 of the 3,000 output tokens were reasoning.
    usage = Usage(input_tokens=5_000, output_tokens=3_000, reasoning_tokens=2_500)
    assert cost(usage, lookup("o3")) == pytest.approx((5_000 * 2 + 3_000 * 8) / 1e6)
    assert cost(usage, lookup("o3")) == pytest.approx(0.034)


def test_reasoning_priced_apart_uses_its_own_rate():
    model = ModelInfo("example", "thinker", input_price=1.0, output_price=4.0, reasoning_price=10.0)
    usage = Usage(input_tokens=1_000, output_tokens=600, reasoning_tokens=500)
    assert cost(usage, model) == pytest.approx((1_000 * 1 + 100 * 4 + 500 * 10) / 1e6)


def test_batch_results_get_the_batch_discount():
    # gpt-5.2: $1.75 input, $0.175 cached, $14 output; the Batch API costs 50% of Standard.
    usage = Usage(input_tokens=2_000, output_tokens=500, cache_read_tokens=1_000)
    standard = (1_000 * 1.75 + 1_000 * 0.175 + 500 * 14) / 1e6
    assert cost(usage, lookup("gpt-5.2")) == pytest.approx(standard)
    assert cost(usage, lookup("gpt-5.2"), batch=True) == pytest.approx(standard / 2)
    assert cost_of(usage, "gpt-5.2", batch=True) == pytest.approx(0.0044625)


def test_long_prompts_pay_the_long_context_tier_for_the_whole_request():
    # gpt-6.2-sol: $2 / $0.10 cached / $10; above 272K input tokens input and cache double and
    # output costs 1.5x, for the whole request.  Exactly 272K is still short-context.
    sol = lookup("gpt-6.2-sol")
    assert cost(Usage(272_000, 1_000), sol) == pytest.approx((272_000 * 2 + 1_000 * 10) / 1e6)
    assert cost(Usage(300_000, 1_000, cache_read_tokens=100_000), sol) == pytest.approx(
        (200_000 * 4 + 100_000 * 0.20 + 1_000 * 15) / 1e6)
    # Claude Haiku 5.5: $0.10 / $0.50 up to 100K prompt tokens, $0.50 / $2.50 above.
    haiku = lookup("claude-haiku-5-5")
    assert cost(Usage(100_000, 1_000), haiku) == pytest.approx((100_000 * 0.10 + 1_000 * 0.50) / 1e6)
    assert cost(Usage(100_001, 1_000), haiku) == pytest.approx((100_001 * 0.50 + 1_000 * 2.50) / 1e6)


def test_unknown_prices_give_no_cost_rather_than_a_guess():
    assert lookup("gpt-5.3-chat-latest").input_price is None
    assert cost(Usage(10, 10), lookup("gpt-5.3-chat-latest")) is None
    # DeepSeek publishes no batch discount.
    assert cost(Usage(10, 10), lookup("deepseek-flash"), batch=True) is None
    # A cache read on a model without a published cache price has no known cost.
    assert cost(Usage(100, 10, cache_read_tokens=50), lookup("groq/llama-3.3-70b-versatile")) is None
    assert cost_of(Usage(10, 10), "no-such-model-anywhere") is None


def test_zero_tokens_cost_nothing_even_without_prices():
    assert cost(Usage(), ModelInfo("example", "unpriced")) == 0.0


def test_inconsistent_usage_is_a_clear_error():
    with pytest.raises(InvalidArgumentError, match="input_tokens must include cache reads"):
        cost(Usage(input_tokens=10, cache_read_tokens=20), lookup("gpt-4o"))
    with pytest.raises(InvalidArgumentError, match="reasoning"):
        cost(Usage(output_tokens=5, reasoning_tokens=6), lookup("o3"))


def test_response_cost_for_a_real_answer_and_a_folded_stream(fake_provider):
    # gpt-4o: $2.50 input, $1.25 cached input, $10 output.
    usage = {"input": 1_200, "output": 300, "cache_read": 1_000, "cache_write": 0, "reasoning": 0}
    expected = (200 * 2.50 + 1_000 * 1.25 + 300 * 10) / 1e6
    fake_provider.set_default("openai-route", Reply(text="hi there", usage=usage, model="gpt-4o-2024-08-06"))
    request = CompletionRequest(model="gpt-4o", messages=[Message.user("hello")])
    with make_provider(fake_provider, "openai-route", "openai") as provider:
        answer = provider.complete(request)
        folded = collect(provider.complete_stream(request))
    assert answer.usage.cache_read_tokens == 1_000
    assert answer.cost == pytest.approx(expected)
    assert folded.cost == pytest.approx(expected)


def test_response_cost_is_none_for_an_unknown_model(fake_provider):
    fake_provider.set_default("route", Reply(text="hi", model="my-private-finetune"))
    with make_provider(fake_provider, "route", "openai") as provider:
        answer = provider.complete(CompletionRequest(model="my-private-finetune", messages=[Message.user("x")]))
    assert answer.usage.total_tokens > 0
    assert answer.cost is None
