"""Settings of a one-page Django project answering from OpenAI, failing over to Anthropic.

FAILOVER_CLIENT is read by failover_client.contrib.django (its format is documented in
failover_client.contrib._config).  Optional environment: OPENAI_BASE_URL / ANTHROPIC_BASE_URL
(a proxy, or the fake provider in tests), REDIS_URL (one circuit breaker for all workers),
FAILOVER_LOG (JSON log lines of every attempt).
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list = []
MIDDLEWARE: list = []
ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
USE_TZ = True


def _provider(model, base_url_variable):
    base_url = os.environ.get(base_url_variable)
    return {"model": model, "options": {"base_url": base_url}} if base_url else {"model": model}


FAILOVER_CLIENT = {
    "providers": [_provider("openai/gpt-5.5", "OPENAI_BASE_URL"),
                  _provider("anthropic/claude-opus-5", "ANTHROPIC_BASE_URL")],
    "deadline": 30,  # and the web profile (the default): at most 2 s of sleeping per call
    "health_store": os.environ.get("REDIS_URL"),
}

if os.environ.get("FAILOVER_LOG"):  # one JSON line per attempt, safe for every worker to append to
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "failover_client.log.JsonFormatter"}},
        "filters": {"redact": {"()": "failover_client.log.RedactingFilter"}},
        "handlers": {"attempts": {"class": "concurrent_log_handler.ConcurrentRotatingFileHandler",
                                  "filename": os.environ["FAILOVER_LOG"], "formatter": "json", "filters": ["redact"]}},
        "loggers": {"failover_client": {"handlers": ["attempts"], "level": "INFO"}},
    }
