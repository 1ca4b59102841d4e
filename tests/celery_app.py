"""The Celery apps tests/test_celery.py runs real prefork workers of.

The FailoverClient is made at import time, as a web or task module would make it, so the
worker's parent process holds it before the pool forks its children; ``warm_up`` even makes a
call with it there first.  Each child must then open connections of its own (the transport
checks the process id) instead of sharing the parent's sockets.

Two apps, one per result serializer: ``json_app`` (requests and responses cross as
``to_dict``/``from_dict`` JSON; exceptions are rebuilt by Celery as ``cls(*args)``) and
``pickle_app`` (objects and exceptions cross pickled, with every field).  Configured from the
environment set by the test: FC_CELERY_REDIS (a redis:// URL without database) and
FC_CELERY_FAKE (the fake provider server's root URL).
"""

import inspect
import os

from celery import Celery, signals

from failover_client import (
    Attempt,
    CompletionRequest,
    CompletionResponse,
    FailoverClient,
    FailoverConfig,
    FallbackProvider,
    Message,
    TextBlock,
    errors,
)
from failover_client.health import RedisHealthStore
from failover_client.providers import AnthropicProvider, OpenAIProvider

REDIS = os.environ["FC_CELERY_REDIS"]
FAKE = os.environ["FC_CELERY_FAKE"]
HEALTH_DB = 2

client = FailoverClient(
    FailoverConfig("primary", OpenAIProvider(api_key="sk-test-key-0123456789", base_url=f"{FAKE}/primary/v1"))
    .add_fallback(FallbackProvider("backup", AnthropicProvider(api_key="sk-test-key-0123456789",
                                                               base_url=f"{FAKE}/backup")))
    .with_health_store(RedisHealthStore(f"{REDIS}/{HEALTH_DB}")))


def make_app(name, serializer, db):
    app = Celery(name, broker=f"{REDIS}/{db}", backend=f"{REDIS}/{db}")
    app.conf.update(task_serializer=serializer, result_serializer=serializer,
                    accept_content=[serializer], result_accept_content=[serializer],
                    task_default_queue=name, worker_hijack_root_logger=False,
                    broker_connection_retry_on_startup=True)
    return app


json_app = make_app("json", "json", 0)
pickle_app = make_app("pickle", "pickle", 1)


# a value for every keyword field an exception of failover_client.errors takes
SAMPLE_FIELDS = {
    "provider": "primary", "model": "gpt-4o", "status": 503, "request_id": "req_123", "retry_after": 2.5,
    "body": '{"error": "busy"}', "code": "overloaded", "retryable": True, "spent": 12.5, "budget": 10.0,
    "attempts": [Attempt("primary", "gpt-4o", "error", 12.5, "RateLimitError", "slow down", 429)],
    "partial": CompletionResponse("msg_1", "gpt-4o", [TextBlock("half an ans")]),
}


def sample_error(class_name):
    """An instance of ``class_name`` with every field its classes take filled in."""
    cls = getattr(errors, class_name)
    inits = [vars(klass)["__init__"] for klass in cls.__mro__
             if klass.__module__ == errors.__name__ and "__init__" in vars(klass)]
    names = [parameter.name for init in inits for parameter in inspect.signature(init).parameters.values()
             if parameter.kind is inspect.Parameter.KEYWORD_ONLY]
    return cls(f"a sample {class_name}", **{name: SAMPLE_FIELDS[name] for name in names})


@signals.worker_init.connect
def warm_up(**_):
    """In the worker's parent, before the pool forks: a pooled connection the children inherit."""
    client.complete(CompletionRequest("gpt-4o", [Message.user("warm-up in the parent")]))


@json_app.task(name="json.complete")
def complete_json(request):
    return client.complete(CompletionRequest.from_dict(request)).to_dict(encode_json=True)


@pickle_app.task(name="pickle.complete")
def complete_pickled(request):
    return client.complete(request)


@json_app.task(name="json.raise_error")
def raise_error_json(class_name):
    raise sample_error(class_name)


@pickle_app.task(name="pickle.raise_error")
def raise_error_pickled(class_name):
    raise sample_error(class_name)


@json_app.task(name="json.process")
def process_json():
    return [os.getpid(), os.getppid()]


@pickle_app.task(name="pickle.process")
def process_pickled():
    return [os.getpid(), os.getppid()]
