"""Commands for nightly jobs: rebuild a lab, list past runs, collect leftovers."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from vmlab.cli.base import (JSON_OPTION, NEW_LAB_OPTION, ON_ERROR_OPTION, _print_json, cli,
                            cli_progress, lab_option)
from vmlab.errors import EXIT_FAILED, UsageError


@cli.command()
@click.option("--profile", "-p", "profile", required=True, metavar="NAME|PATH",
              help="The profile to build the lab from (a name or a path to a .yaml file).")
@NEW_LAB_OPTION
@click.option("--from", "from_stage", metavar="STAGE",
              help="Revert to STAGE's snapshot and replay from there (the lab must exist).")
@click.option("--from-scratch", is_flag=True, help="Destroy and recreate the lab (default).")
@click.option("--changed", is_flag=True,
              help="Run the lab again from the first stage whose plan changed since it ran "
                   "(see `vmlab diff`), reusing the stages before it; from scratch when the "
                   "lab does not exist.")
@click.option("--retries", type=click.IntRange(0, 10), default=0, show_default=True,
              help="Roll a failed stage back and run it again up to N times.")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write junit.xml, run.json and the logs.")
@click.option("--keep-runs", type=click.IntRange(1), metavar="K",
              help="Keep only the K newest runs of this lab.")
@JSON_OPTION
@ON_ERROR_OPTION
def rebuild(profile: str, lab: str | None, from_stage: str | None, from_scratch: bool,
            changed: bool, retries: int, report_dir: Path | None, keep_runs: int | None,
            as_json: bool, on_error: str | None) -> None:
    """Rebuild a lab for a nightly job and write a report a CI server reads.

    Exit codes: 0 every stage passed, 1 a stage failed, 2 usage or profile error,
    3 hypervisor/SSH/image unavailable, 4 the lab is locked.

    \b
    Examples:
      vmlab rebuild --profile newton-aio --retries 1 --keep-runs 14
      vmlab rebuild --profile newton-aio --from keystone --report-dir out/
      vmlab rebuild --profile newton-aio --changed   only what changed since the last run
    """
    from vmlab.rebuild import rebuild as run_rebuild

    if sum(map(bool, (from_stage, from_scratch, changed))) > 1:
        raise UsageError("--from, --from-scratch and --changed exclude each other")
    report = run_rebuild(profile, lab, from_stage=from_stage, retries=retries,
                         report_dir=report_dir, keep_runs=keep_runs, changed=changed,
                         progress=cli_progress())
    if as_json:
        from dataclasses import asdict

        _print_json(asdict(report))
    else:
        for stage in report.stages:
            click.echo(f"  {stage.status:<8} {stage.name} ({stage.attempts} attempt"
                       f"{'s' if stage.attempts != 1 else ''}, {stage.duration:.0f}s)")
        click.echo(f"rebuild {report.status}; report in {report.run_dir}")
    if report.error:  # on stderr in --json mode too: a nightly log shows why it stopped
        click.echo(f"error: {report.error}", err=True)
        for problem in report.problems:
            click.echo(f"  - {problem}", err=True)
        if report.hint:
            click.echo(f"hint: {report.hint}", err=True)
    from vmlab.cli import stagerun

    failed = [stage for stage in report.stages if stage.status == "failed"]
    if failed and (on_error is not None or stagerun.interactive()):
        stagerun.act(report.lab, failed[0].name, failed[0].failure or {}, on_error or "ask")
    sys.exit(report.exit_code)


@cli.command()
@lab_option("Only this lab's runs (default: every lab's).")
@JSON_OPTION
def runs(lab: str | None, as_json: bool) -> None:
    """List past rebuilds with their status and duration.

    \b
    Example:
      vmlab runs --lab newton-aio --json
    """
    from vmlab.rebuild import list_runs

    rows = list_runs(lab)
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        extra = "".join(f" flaky: {', '.join(row['flaky'])}" if row["flaky"] else "")
        extra += f" failed: {', '.join(row['failed'])}" if row["failed"] else ""
        click.echo(f"{row['lab']:<20} {row['run']:<18} {row['status']:<7} "
                   f"{row['duration'] / 60:5.1f} min  {row['mode']}{extra}")
    if not rows:
        click.echo("no runs")


@cli.command()
@click.option("--uri", default="qemu:///system", show_default=True,
              help="The libvirt hypervisor to clean (ignored with --profile).")
@click.option("--profile", "-p", "profile", metavar="NAME|PATH",
              help="Clean the hypervisor of this profile (e.g. a vSphere one).")
@click.option("--older-than", metavar="AGE", help="Also VMs older than AGE (e.g. 2d, 12h).")
@click.option("--images", is_flag=True,
              help="Also the uploaded guest images (base volumes) no disk is built on.")
@click.option("--images-older-than", metavar="AGE", default="1h", show_default=True,
              help="With --images, only images uploaded more than AGE ago (a create may be "
                   "about to build on a newer one).")
@click.option("--yes", is_flag=True, help="Delete; without it, only show what would go.")
@JSON_OPTION
def gc(uri: str, profile: str | None, older_than: str | None, images: bool,
       images_older_than: str, yes: bool, as_json: bool) -> None:
    """Find vmlab-owned VMs, disks and networks whose lab is gone (or too old).

    A dry run unless --yes. Nothing without vmlab's ownership tag is ever touched.
    With --images, also the guest images uploaded for earlier labs that no disk is
    built on any more (after a change of the image recipe, nothing uses the old one).

    \b
    Examples:
      vmlab gc
      vmlab gc --older-than 2d --yes
      vmlab gc --images --yes
    """
    from vmlab import drivers
    from vmlab.gc import collect, collect_images, find_garbage, find_unused_images, parse_age

    age = parse_age(older_than) if older_than else None
    image_age = parse_age(images_older_than)
    if profile:
        from vmlab.lab import open_driver
        from vmlab.profile import load_profile

        driver = open_driver(load_profile(profile).profile.hypervisor)
    else:
        driver = drivers.connect("libvirt", uri=uri)
    with driver:
        rows = find_garbage(driver, age)
        problems = collect(driver, rows) if yes else []
        image_rows = find_unused_images(driver, image_age) if images else []
        problems += collect_images(driver, image_rows) if yes else []
    if as_json:
        _print_json({"deleted": yes, "garbage": rows, "images": image_rows,
                     "problems": problems})
    else:
        for row in rows:
            if "skipped" in row:
                click.echo(f"skipped {row['vm']} ({row['skipped']})")
                continue
            click.echo(f"{'deleted' if yes else 'would delete'} {row['vm']} ({row['reason']})"
                       + (f" with {', '.join(row['with'])}" if row["with"] else ""))
        for row in image_rows:
            if "skipped" in row:
                click.echo(f"skipped image {row['image']} ({row['skipped']})")
                continue
            click.echo(f"{'deleted' if yes else 'would delete'} image {row['image']} "
                       f"({row['reason']}; uploaded {row['created']})")
        if not rows and not image_rows:
            click.echo("nothing to collect")
        elif not yes:
            click.echo("dry run: add --yes to delete")
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if problems:
        sys.exit(EXIT_FAILED)
