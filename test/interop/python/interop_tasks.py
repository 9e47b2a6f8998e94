"""Python Celery side of the interop suites: a real Celery 5 app whose tasks mirror examples/tasks.ts."""
import itertools
import os
import time

from celery import Celery

app = Celery(
    "interop",
    broker=os.environ.get("BROKER", "redis://127.0.0.1:6379/3"),
    backend=os.environ.get("BACKEND", "redis://127.0.0.1:6379/4"),
)
app.conf.update(
    task_default_queue=os.environ.get("QUEUE", "celery"),
    task_queue_max_priority=int(os.environ["MAX_PRIORITY"]) if os.environ.get("MAX_PRIORITY") else None,
    task_send_sent_event=True,
    worker_send_task_events=True,
    result_extended=True,
    broker_connection_retry_on_startup=True,
)


@app.task(name="tasks.add")
def add(x, y):
    return x + y


@app.task(name="tasks.mul")
def mul(x, y):
    return x * y


@app.task(name="tasks.fail")
def fail(message):
    raise ValueError(message)


@app.task(name="tasks.tsum")
def tsum(numbers):
    return sum(numbers)


@app.task(name="py.double")
def double(x):
    """Only Python workers have this task: a mixed chain runs it there."""
    return x * 2


@app.task(name="tasks.sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@app.task(name="tasks.echo")
def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@app.task(name="interop.whoami", bind=True)
def whoami(self, n):
    return {"n": n, "worker": self.request.hostname}


_sequence = itertools.count(1)


@app.task(name="interop.stamp")
def stamp(label):
    return {"label": label, "at": time.time(), "seq": next(_sequence)}


@app.task(name="tasks.flaky", bind=True, max_retries=None)
def flaky(self, failures):
    """Fails `failures` times, retrying after 1 s each time, then succeeds (as examples/tasks.ts)."""
    if self.request.retries < failures:
        raise self.retry(countdown=1, exc=KeyError(f"failure {self.request.retries + 1} of {failures}"))
    return f"ok after {self.request.retries} retries"


@app.task(name="interop.give_up", bind=True, max_retries=1)
def give_up(self):
    """Retries once, then fails with the error it retried for."""
    raise self.retry(countdown=0.2, exc=KeyError("gave up"))


@app.task(name="interop.hop", bind=True)
def hop(self, target, payload):
    """Fails its first run and retries on the `target` queue, where the other side may run it."""
    if self.request.retries == 0:
        raise self.retry(queue=target, countdown=0.2, exc=KeyError("hop"))
    return {"lang": "py", "retries": self.request.retries, "payload": payload, "worker": self.request.hostname}


@app.task(name="interop.park", bind=True)
def park(self, queue):
    """Retries onto `queue`, which no worker consumes, so the retry message can be read there."""
    raise self.retry(queue=queue, countdown=60, exc=KeyError("parked"))
