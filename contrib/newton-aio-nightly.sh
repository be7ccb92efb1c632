#!/bin/sh
# newton-aio end to end, nightly, on a host with internet access and KVM, and a report to
# send back (see docs/newton-aio.md, "Status"). Install as
# /usr/local/bin/vmlab-newton-aio-nightly and run it from
# contrib/systemd/vmlab-newton-aio-nightly.timer (or cron).
#
# Each run leaves REPORTS/<UTC time>/ and REPORTS/<UTC time>.tar.gz holding:
#   version.txt     vmlab's version and the host's kernel
#   preflight.json  `vmlab preflight --json`: every URL, KVM, subnets, firewall, room
#   rebuild/        `vmlab rebuild --report-dir`: junit.xml, run.json, every stage's log
#   status.json     `vmlab status --json` of the lab afterwards
# Exit status: the preflight's when it fails (nothing is built), else the rebuild's.
set -u
profile=${VMLAB_NIGHTLY_PROFILE:-newton-aio}
reports=${VMLAB_NIGHTLY_REPORTS:-$HOME/vmlab-reports/$profile}
out=$reports/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out" || exit 3

{ vmlab --version; uname -srm; } > "$out/version.txt" 2>&1
vmlab preflight --profile "$profile" --json > "$out/preflight.json" 2> "$out/preflight.err"
result=$?
if [ "$result" -eq 0 ]; then
    vmlab rebuild --profile "$profile" --retries 1 --report-dir "$out/rebuild" \
        > "$out/rebuild.out" 2>&1
    result=$?
fi
vmlab status --lab "$profile" --json > "$out/status.json" 2> "$out/status.err"

tar -C "$reports" -czf "$out.tar.gz" "$(basename "$out")"
echo "vmlab nightly $profile: exit $result; report $out.tar.gz"
exit "$result"
