"""The WSGI entry point: gunicorn --worker-class gthread --workers 2 --threads 8 --preload
--chdir examples/django_project project.wsgi"""

import os

from django.core.wsgi import get_wsgi_application

from failover_client.contrib.django import get_client

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
application = get_wsgi_application()
# A bad FAILOVER_CLIENT setting (or a missing key) fails the deploy rather than the first
# request.  Under --preload this client is the master's: each worker builds its own.
get_client()
