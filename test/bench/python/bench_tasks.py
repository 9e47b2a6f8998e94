"""Python Celery side of the benchmark: the same no-op task, counting completions in Redis."""
import os

import redis
from celery import Celery

app = Celery("bench", broker=os.environ["BROKER"])
app.conf.update(task_ignore_result=True, worker_prefetch_multiplier=4)
counter = redis.Redis.from_url(os.environ.get("COUNTER", "redis://127.0.0.1:6379/15"))


@app.task(name="bench.count")
def count():
    counter.incr("bench:done")
