"""gunicorn settings for the DATAide tool (override any of them on the command line).

Production: gunicorn -c config/gunicorn.conf.py "lti_tool:create_app()" behind a TLS proxy.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WEB_CONCURRENCY", min(4, multiprocessing.cpu_count() * 2)))
worker_class = "sync"
timeout = 30
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
access_log_format = (
    # %(U)s is the path without its query string: login hints and invitations stay out.
    '{"remote":"%(h)s","method":"%(m)s","path":"%(U)s","status":%(s)s,"bytes":%(B)s,"ms":%(M)s,'
    '"request_id":"%({x-request-id}o)s"}'
)
# Each worker builds its own app (and database pool) after the fork.
preload_app = False
