"""What the ``openr2v`` command shows: progress, tasks, shot plans and estimates, with rich."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from openr2v.client.types import BaseTask, TaskStatus

__all__ = ["TaskProgress", "estimate_table", "plan_table", "task_details", "task_table"]

STATUS_STYLE = {"PENDING": "yellow", "RUNNING": "cyan", "SUCCEEDED": "green", "FAILED": "red",
                "CANCELED": "magenta", "UNKNOWN": "red"}


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


class TaskProgress:
    """A progress bar with the task's status, its percentage and the elapsed time."""

    def __init__(self, console: Console, *, enabled: bool = True) -> None:
        self.console = console
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                  TaskProgressColumn(), TimeElapsedColumn(), console=console,
                                  disable=not enabled, transient=False)
        self._bar = self._progress.add_task("submitting", total=100)
        self._last: tuple[str, int | None] | None = None
        self.started = time.monotonic()

    def __enter__(self) -> TaskProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def note(self, text: str) -> None:
        self._progress.update(self._bar, description=text)

    def update(self, task: BaseTask) -> None:
        status = str(task.status)
        percent = 100 if task.status == TaskStatus.SUCCEEDED else task.progress
        self._progress.update(self._bar, description=f"{task.task_id[:8]} {_status(status)}",
                              completed=percent if percent is not None else 0)
        # Without a live terminal (pipes, CI) the bar is off: print each status change instead.
        if self._progress.disable and (self._last is None or self._last[0] != status):
            elapsed = time.monotonic() - self.started
            self.console.print(f"{task.task_id} {status} after {elapsed:.1f} s")
        self._last = (status, percent)


def task_table(tasks: list[Any]) -> Table:
    table = Table(title="tasks", show_lines=False)
    for name in ("task_id", "model", "status", "submitted (UTC)", "finished (UTC)"):
        table.add_column(name, no_wrap=name == "task_id")
    for t in tasks:
        table.add_row(t.task_id, t.model or "", _status(str(t.status)), (t.submit_time or "")[:19],
                      (t.end_time or "")[:19])
    return table


def task_details(task: BaseTask) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows: list[tuple[str, str]] = [("task_id", task.task_id), ("status", _status(str(task.status)))]
    for name in ("model", "submit_time", "scheduled_time", "end_time", "code", "message", "orig_prompt",
                 "actual_prompt", "video_url"):
        value = getattr(task, name)
        if value:
            rows.append((name, str(value)))
    if task.usage is not None:
        u = task.usage
        rows.append(("usage", f"{u.duration:g} billed s = {u.input_video_duration:g} s input video + "
                              f"{u.output_video_duration:g} s output; {u.size} ({u.sr}P)"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def plan_table(plan: dict[str, Any]) -> Table:
    table = Table(title=f"shot plan: {plan['mode']}, {len(plan['shots'])} shot(s), {plan['duration']:g} s",
                  show_lines=True)
    for name in ("shot", "time", "framing", "camera", "on screen", "dialogue", "action"):
        table.add_column(name, overflow="fold")
    for s in plan["shots"]:
        lines = "\n".join(f"{ln['speaker'] or 'voice'}{' to ' + ln['addressee'] if ln.get('addressee') else ''}: "
                          f"“{ln['text']}” ({ln['start']:g}-{ln['end']:g} s)" for ln in s["lines"])
        table.add_row(str(s["index"]), f"{s['start']:g}-{s['end']:g} s", s["framing"], s.get("camera") or "",
                      ", ".join(s["on_screen"]), lines, s["text"])
    return table


def estimate_table(est: dict[str, Any]) -> Table:
    table = Table(title=f"estimate: {est['model']}, {est['size']}, {est['duration']} s, "
                        f"{'audio' if est['audio'] else 'silent'}")
    for name in ("reference", "label", "kind", "seconds", "billed s"):
        table.add_column(name, overflow="fold")
    for r in est["references"]:
        seconds = f"{r['seconds']:.2f}" if r["seconds"] is not None else ("" if r["kind"] == "image" else "unknown")
        table.add_row(r["name"], r["label"], r["kind"] or "unknown", seconds, f"{r['billed_seconds']:g}")
    table.add_section()
    table.add_row("input video", "", "", "", f"{est['input_video_duration']:g}")
    table.add_row("output video", "", "", "", f"{est['output_video_duration']:g}")
    bound = "" if est["exact"] else " (at most)"
    table.add_row("[bold]billed[/]", "", "", "", f"[bold]{est['billed_seconds']:g}[/]")
    table.caption = (f"cost ${est['cost_usd']:.4f}{bound} at ${est['unit_price_usd']}/s"
                     + ("" if est["exact"] else "; a reference's length is unknown, billed at its cap"))
    return table
