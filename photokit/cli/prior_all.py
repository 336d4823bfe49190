"""`photokit prior build --all [--ray [ADDRESS]]`: every named person's prior, here or on Ray workers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from photokit.cli.common import console, database_from, print_json, settings_from, user_text
from photokit.reporting import Reporter, format_duration

if TYPE_CHECKING:
    from photokit.prior.build_all import AllPriorsPlan, AllPriorsSummary, BuildRequest
    from photokit.prior.schedule import BuildOptions
    from photokit.settings import Settings


def build_all(
    ctx: typer.Context,
    options: BuildOptions,
    device: str,
    generator: Path | None,
    json_out: bool,
    ray: str | None,
    workers: int | None,
) -> None:
    """`prior build --all`: the plan and its cost up front, then the builds (here, or on Ray workers)."""
    from photokit.cli.reporters import RichReporter
    from photokit.prior.build_all import BuildRequest, build_all_priors, plan_all_priors

    if ray is not None:
        from photokit.distributed import require_ray

        require_ray()
    db, settings = database_from(ctx), settings_from(ctx)
    request = BuildRequest(options, device, str(generator.expanduser().resolve()) if generator is not None else None)
    with RichReporter(enabled=not json_out, notes=True) as reporter:  # the plan and cost, also with --json
        plan = plan_all_priors(db, settings, request, reporter)
        for line in _plan_lines(plan):
            reporter.note(line)
        if ray is None:
            summary = build_all_priors(db, settings, plan, request, reporter)
        else:
            summary = _on_ray(db, settings, plan, request, ray, workers, reporter)
    if json_out:
        print_json(summary.to_json())
    else:
        for item in summary.built:
            console.print(f"built: {user_text(item['name'])} -> {user_text(item['folder'])}", highlight=False)
        for item in summary.skipped:
            console.print(f"skipped: {user_text(item['name'])}: {user_text(item['reason'])}", highlight=False)
        for item in summary.failed:
            console.print(f"[red]failed:[/] {user_text(item['name'])}: {user_text(item['error'])}", highlight=False)
        console.print(
            f"{len(summary.built)} built, {len(summary.already_built)} built before, {len(summary.skipped)} skipped, "
            f"{len(summary.failed)} failed"
        )
    if summary.failed:
        raise typer.Exit(1)


def _on_ray(
    db,
    settings: Settings,
    plan: AllPriorsPlan,
    request: BuildRequest,
    address: str,
    workers: int | None,
    reporter: Reporter,
) -> AllPriorsSummary:
    from photokit.distributed.cluster import connect, wants_gpu, worker_count
    from photokit.distributed.priors import PriorBuildFactory, build_priors_on_ray

    info = connect(address)
    gpu = wants_gpu(request.device, info)
    count = worker_count(info, workers, gpu)
    reporter.note(f"{info.describe()}; up to {count} build workers{' with a GPU each' if gpu else ''}")
    if plan.to_build:
        share = plan.estimate_s / min(count, len(plan.to_build))
        reporter.note(
            f"about {format_duration(share)} with {count} workers like this machine"
            + (" (GPU workers are faster)" if gpu and plan.measured_on != "cuda" else "")
        )
    factory = PriorBuildFactory(settings, replace(request, device="cuda") if gpu else request)
    return build_priors_on_ray(db, plan, factory, count, num_gpus=1 if gpu else 0, reporter=reporter)


def _plan_lines(plan: AllPriorsPlan) -> list[str]:
    """Who is built at what cost, who is not and why."""
    lines = [
        f"{len(plan.to_build)} priors to build, about {format_duration(plan.estimate_s)} in all "
        f"(timed on {plan.measured_on} here)"
        if plan.to_build
        else "0 priors to build"
    ]
    lines += [f"  {p.name}: {p.refs} references, about {format_duration(p.estimate_s)}" for p in plan.to_build]
    before = [p.name for p in plan.people if p.has_prior]
    if before:
        lines.append(f"  built before (not rebuilt; --restart rebuilds them): {', '.join(map(str, before))}")
    lines += [f"  skipped {p.name}: {p.skipped}" for p in plan.people if p.skipped is not None]
    if plan.unnamed:
        lines.append(f"  skipped {plan.unnamed} unnamed people: priors are built for named people only")
    return lines
