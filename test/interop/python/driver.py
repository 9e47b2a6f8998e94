"""Drive Python Celery from the test suites: one JSON command on argv, one JSON answer on stdout."""
import json
import socket
import sys
import threading
from datetime import datetime, timedelta, timezone

from interop_tasks import app


def error_info(exc):
    return {"type": type(exc).__name__, "module": type(exc).__module__, "message": str(exc)}


def send(cmd):
    options = dict(cmd.get("options", {}))
    if "expires_in" in options:
        options["expires"] = datetime.now(timezone.utc) + timedelta(seconds=options.pop("expires_in"))
    # A tuple, as `task.delay(*args)` passes them (argsrepr reads "(2, 3)").
    result = app.send_task(cmd["task"], args=tuple(cmd.get("args", [])), kwargs=cmd.get("kwargs", {}), **options)
    out = {"id": result.id}
    if cmd.get("wait"):
        try:
            out["result"] = result.get(timeout=cmd.get("timeout", 10))
        except Exception as exc:  # the test inspects the remote error
            out["error"] = error_info(exc)
        out["state"] = result.state
    return out


def get(cmd):
    result = app.AsyncResult(cmd["id"])
    try:
        return {"result": result.get(timeout=cmd.get("timeout", 10)), "state": result.state}
    except Exception as exc:
        return {"error": error_info(exc), "state": result.state}


def many(cmd):
    ids = [app.send_task(cmd["task"], args=a, queue=cmd.get("queue")).id for a in cmd["args_list"]]
    return {"ids": ids}


def control(cmd):
    method = cmd["method"]
    kwargs = {"destination": cmd.get("destination"), "timeout": cmd.get("timeout", 2)}
    if method in ("ping", "stats", "registered", "active", "reserved", "scheduled", "active_queues"):
        return {"replies": getattr(app.control.inspect(**kwargs), method)()}
    if method == "revoke":
        return {"replies": app.control.revoke(cmd["id"], terminate=cmd.get("terminate", False), signal=cmd.get("signal", "SIGTERM"), reply=True, **kwargs)}
    if method == "rate_limit":
        return {"replies": app.control.rate_limit(cmd["task"], cmd["rate"], reply=True, **kwargs)}
    raise ValueError(f"unknown control method {method}")


def events(cmd):
    """Capture events for `seconds`, with Celery's own receiver and state (liveness rules)."""
    seen = []
    state = app.events.State()

    def on_event(event):
        state.event(event)
        seen.append(event)

    with app.connection() as conn:
        recv = app.events.Receiver(conn, handlers={"*": on_event})
        threading.Timer(cmd.get("seconds", 3), lambda: setattr(recv, "should_stop", True)).start()
        try:
            recv.capture(limit=None, timeout=None, wakeup=True)
        except socket.timeout:
            pass
    workers = {h: {"alive": w.alive, "active": w.active, "processed": w.processed, "sw_ident": w.sw_ident} for h, w in state.workers.items()}
    tasks = {t.uuid: {"state": t.state, "name": t.name, "result": t.result, "runtime": t.runtime} for t in state.tasks.values()}
    return {"events": seen, "workers": workers, "tasks": tasks}


def build(spec):
    """A canvas from its JSON description: {"task", "args", "kwargs", "queue", "immutable"},
    {"chain": [...]}, {"group": [...]} or {"chord": {"header": [...], "body": {...}}}."""
    from celery import chain, chord, group, signature

    if "chain" in spec:
        return chain(*[build(s) for s in spec["chain"]])
    if "group" in spec:
        return group([build(s) for s in spec["group"]])
    if "chord" in spec:
        return chord([build(s) for s in spec["chord"]["header"]], build(spec["chord"]["body"]))
    options = {"queue": spec["queue"]} if spec.get("queue") else {}
    return signature(spec["task"], args=tuple(spec.get("args", [])), kwargs=spec.get("kwargs", {}),
                     immutable=spec.get("immutable", False), app=app, **options)


def canvas(cmd):
    """Build a canvas as Celery does, send it, and wait for its result when asked."""
    result = build(cmd["canvas"]).apply_async()
    out = {"id": result.id}
    if cmd.get("save"):
        result.save()
    if cmd.get("wait"):
        try:
            out["result"] = result.get(timeout=cmd.get("timeout", 20))
        except Exception as exc:
            out["error"] = error_info(exc)
    return out


def restore_group(cmd):
    """Read a group saved by GroupResult.save() (here or by Celeriac) and wait for its results."""
    from celery.result import GroupResult

    restored = GroupResult.restore(cmd["id"], app=app)
    if restored is None:
        return {"found": False}
    return {"found": True, "ids": [r.id for r in restored.results],
            "result": restored.get(timeout=cmd.get("timeout", 20))}


def main():
    cmd = json.loads(sys.argv[1])
    handler = {
        "send": send,
        "get": get,
        "many": many,
        "control": control,
        "events": events,
        "canvas": canvas,
        "restore_group": restore_group,
    }[cmd["op"]]
    try:
        out = handler(cmd)
    except StopIteration:
        out = {}
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
