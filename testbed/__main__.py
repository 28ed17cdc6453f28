#!/usr/bin/env python3
"""Run the test bed outside pytest (for the demo and for poking at it by hand).

python3 -m testbed up [--namespace tenants] [--apply FILE ...] [--env-file PATH]
    Start etcd + kube-apiserver (CRDs from crds/ installed), Kafka and PostgreSQL -- the same
    code the test fixtures run (testbed/) -- create the namespace, server-side apply the
    files into it, write the connection settings as shell assignments to --env-file, and keep
    everything running until SIGTERM/SIGINT (or until the parent process dies), then tear down.

python3 -m testbed get [--namespace tenants] [--kubeconfig PATH]
    Print the ChargingAnalytics resources like `kubectl get cha -o wide` (server-side table).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from charging_analytics import constants as c  # noqa: E402
from testbed.bed import Testbed  # noqa: E402
from testbed.controlplane import KubeApiError, KubeRest  # noqa: E402
from testbed.process import set_parent_death_signal  # noqa: E402
from testbed.tools import InfraError  # noqa: E402

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def log(message: str) -> None:
    print(f"[testbed] {message}", file=sys.stderr, flush=True)


def write_env(path: Path, values: dict[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items()), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)  # atomic: a reader never sees half a file


def cmd_up(args: argparse.Namespace) -> int:
    # Tear down cleanly if whoever started us goes away (e.g. demo.sh killed).
    set_parent_death_signal(signal.SIGTERM)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())

    bed = Testbed()
    failed = False
    try:
        t0 = time.monotonic()
        services = set(args.services.split(","))
        env: dict[str, str] = {"TESTBED_DIR": str(bed.root), "TESTBED_NAMESPACE": args.namespace}
        if "k8s" in services:
            cp = bed.control_plane()
            log(f"kube-apiserver {cp.rest.version()['gitVersion']} at {cp.server}; CRDs installed")
            cp.create_namespace(args.namespace)
            for manifest in args.apply:
                for obj in cp.apply_manifest(Path(manifest), args.namespace):
                    log(f"applied {obj['kind']} {args.namespace}/{obj['metadata']['name']}")
            env["KUBECONFIG"] = str(cp.kubeconfig)
        if "kafka" in services:
            env["KAFKA_BOOTSTRAP_SERVERS"] = bed.kafka().bootstrap
            log(f"kafka at {env['KAFKA_BOOTSTRAP_SERVERS']}")
        if "postgres" in services:
            pg = bed.postgres()
            env["POSTGRES_DSN"] = pg.conninfo()
            env["ALERTS_DSN"] = pg.alerts_conninfo()
            log(f"postgres at {pg.host}:{pg.port} (database {pg.alerts_db}, user {pg.alerts_user})")
        times = ", ".join(f"{k} {v:.1f}s" for k, v in bed.startup.items())
        log(f"ready in {time.monotonic() - t0:.1f}s ({times})")
        if args.env_file:
            write_env(Path(args.env_file), env)
        else:
            print("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()), flush=True)
        stop.wait()
        log("stopping")
        return 0
    except (InfraError, KubeApiError) as exc:
        failed = True
        log(f"error: {exc}")
        for name, path in bed.log_files().items():
            log(f"log {name}: {path}")
        return 1
    finally:
        bed.close(keep=failed or args.keep)
        if bed.kept:
            log(f"logs and data kept in {bed.root}")


def cmd_get(args: argparse.Namespace) -> int:
    kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG")
    if not kubeconfig:
        log("error: --kubeconfig or $KUBECONFIG is required")
        return 2
    rest = KubeRest.from_kubeconfig(Path(kubeconfig))
    path = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{args.namespace}/{c.PLURAL}"
    table = rest.get(path, headers={"Accept": TABLE})
    headers = [col["name"].upper() for col in table["columnDefinitions"]]
    rows = [["" if cell is None else str(cell) for cell in row["cells"]] for row in table["rows"]]
    if not rows:
        print(f"No resources found in {args.namespace} namespace.")
        return 0
    widths = [max(len(x) for x in col) for col in zip(headers, *rows, strict=True)]
    for line in [headers, *rows]:
        print("   ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the test bed and keep it running until signalled")
    up.add_argument("--namespace", default="tenants")
    up.add_argument("--apply", nargs="*", default=[], metavar="FILE", help="manifests to apply")
    up.add_argument("--env-file", help="write KUBECONFIG=..., KAFKA_BOOTSTRAP_SERVERS=... here")
    up.add_argument("--services", default="k8s,kafka,postgres", help="comma-separated subset")
    up.add_argument("--keep", action="store_true", help="keep logs and data after stopping")
    up.set_defaults(func=cmd_up)
    get = sub.add_parser("get", help="list ChargingAnalytics like `kubectl get cha -o wide`")
    get.add_argument("--namespace", default="tenants")
    get.add_argument("--kubeconfig")
    get.set_defaults(func=cmd_get)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
