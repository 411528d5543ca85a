"""Imported first in the job forkserver (serving.jobs): lower its CPU priority, so importing the
app there, and every job forked from it, yields the CPU to the web workers' page requests.

    ATTN_JOB_NICE   10   the nice value of the forkserver and the jobs
"""
import os

import settings

try:
    os.setpriority(os.PRIO_PROCESS, 0, max(0, min(19, int(settings.get("ATTN_JOB_NICE", "10")))))
except (OSError, ValueError):
    pass
