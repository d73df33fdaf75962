"""The host name Airflow records for a task instance (``[core] hostname_callable``).

Several Celery workers on one machine share its host name; ``infra/airflow.sh`` starts each with
``KTREC_WORKER_NAME`` set, so the task instances say which worker ran them (the servers test checks that the
``gpu`` queue's tasks ran only on the ``gpu`` worker). Without the variable it is the machine's FQDN.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("KTREC_WORKER_NAME") or socket.getfqdn()
