"""The Celery app tests/test_celery_executor.py runs a fleet of: the ``failover_client``
tasks registered with a client made in each worker process, whose primary has an rpm limit
counted in Redis (so the fleet shares it) and whose fallback has none.

Configured from the environment set by the test: FC_CELERY_REDIS (a redis:// URL without
database), FC_CELERY_FAKE (the fake provider server's root URL), FC_CELERY_RPM (the primary's
limit).
"""

import os

from celery import Celery

from failover_client import FailoverClient, FailoverConfig, FallbackProvider
from failover_client.contrib.celery import register
from failover_client.health import RedisHealthStore
from failover_client.providers import AnthropicProvider, OpenAIProvider

REDIS = os.environ["FC_CELERY_REDIS"]
FAKE = os.environ["FC_CELERY_FAKE"]
RPM = int(os.environ["FC_CELERY_RPM"])
BROKER_DB, HEALTH_DB = 6, 7

app = Celery("batch", broker=f"{REDIS}/{BROKER_DB}", backend=f"{REDIS}/{BROKER_DB}")
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                task_default_queue="batch", worker_hijack_root_logger=False, broker_connection_retry_on_startup=True,
                worker_prefetch_multiplier=4)


def make_client():
    key = "sk-test-key-0123456789"
    return FailoverClient(
        FailoverConfig("primary", OpenAIProvider(api_key=key, base_url=f"{FAKE}/primary/v1"))
        .add_fallback(FallbackProvider("backup", AnthropicProvider(api_key=key, base_url=f"{FAKE}/backup")))
        .with_health_store(RedisHealthStore(f"{REDIS}/{HEALTH_DB}"))
        .with_rate_limit("primary", rpm=RPM))


complete = register(app, make_client)
