"""`vmlab preflight`: the checks of a create, as a table (or JSON), in seconds."""
from __future__ import annotations

import click

from vmlab.cli.base import JSON_OPTION, NEW_LAB_OPTION, _print_json, cli
from vmlab.errors import EXIT_FAILED

STATUS_STYLE = {"ok": ("ok", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "red")}


@cli.command()
@click.option("--profile", "-p", "profile", required=True, metavar="NAME|PATH",
              help="The profile to check (see `vmlab profiles`).")
@NEW_LAB_OPTION
@click.option("--no-urls", is_flag=True,
              help="Skip the URL checks (the install ISO, trees, repositories, images).")
@click.option("--timeout", type=click.FloatRange(0.5, 60), default=5.0, show_default=True,
              metavar="SECONDS", help="How long each URL may take to answer.")
@JSON_OPTION
def preflight(profile: str, lab: str | None, no_urls: bool, timeout: float,
              as_json: bool) -> int:
    """Check in seconds what creating a lab from PROFILE needs, before a build that takes
    most of an hour; nothing is made or changed.

    \b
    Checked: every URL the plan fetches (the ISO and its size, the install tree's
    .treeinfo, every yum repository's repomd.xml, the Debian mirror's Release files,
    the Glance test image); the hypervisor answers and has KVM; the lab's subnets
    collide with no libvirt network or host route; the install server's address and
    the firewall (firewalld's libvirt zone) in front of it; room in the storage pool or
    datastore and in the download cache; memory and CPUs; on vSphere the login, the
    datastore and the port groups.

    Exit status 1 when a check fails (`create` would stop there), 0 when every check
    passes or only warns. `vmlab create` runs the same checks first (without the URL
    checks with --no-preflight).

    \b
    Examples:
      vmlab preflight --profile newton-aio
      vmlab preflight --profile ./my-lab.yaml --lab test1 --json
      vmlab preflight --profile demo --no-urls
    """
    from vmlab.names import check_lab_name
    from vmlab.preflight import run
    from vmlab.profile import load_profile

    loaded = load_profile(profile)
    name = check_lab_name(lab if lab is not None else loaded.profile.name)
    report = run(name, loaded, urls=not no_urls, timeout=timeout)
    if as_json:
        _print_json(report.to_json())
    else:
        _print_table(report)
    return EXIT_FAILED if report.failures else 0


def _print_table(report) -> None:
    width = max((len(c.name) for c in report.checks), default=10)
    click.echo(f"preflight of profile {report.profile} (lab {report.lab}) on "
               f"{report.hypervisor}")
    for check in report.checks:
        label, colour = STATUS_STYLE[check.status]
        click.echo(f"  {click.style(f'{label:<4}', fg=colour)}  {check.name:<{width}}  "
                   f"{check.detail}")
        if check.fix and check.status != "ok":
            click.echo(f"        {'':<{width}}  fix: {check.fix}")
    failures, warnings = len(report.failures), len(report.warnings)
    verdict = (f"{failures} failed" if failures else "ready to create") + \
        (f", {warnings} warning{'s' * (warnings != 1)}" if warnings else "")
    click.echo(f"{len(report.checks)} checks in {report.seconds:.1f}s: {verdict}")
