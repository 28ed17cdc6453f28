"""``charging-analytics``: render, validate, plan and apply tenants without Kubernetes; generate
the CRD; simulate OCPP traffic; run the OCPP gateway; run the operator."""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib.abc
import importlib.metadata
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import ledger
from .apply import TargetRunner
from .catalog import CatalogSnapshot
from .crd import CRD_FILENAME, render_crd_yaml
from .dashboard import DashboardError, dashboard_json
from .decide import Decision, Facts, decide
from .gateway.cli import add_gateway_parser
from .pipeline import SecretStore
from .plan import Plan, PlanOptions, build_plan
from .preview_cli import add_preview_parser
from .render import DesiredObject, Digester, RenderOptions, render, statements_text
from .rw.capabilities import Capabilities
from .simulator.cli import add_simulate_parser
from .spec import ChargingAnalytics
from .validation import ManifestError, Manifests, load_file

if TYPE_CHECKING:
    from .rw.client import RisingWaveClient

#: Exit codes: 1 invalid input or a refused operation, 2 usage or an unreadable file,
#: 3 RisingWave unreachable, 141 output closed early (128 + SIGPIPE, as a shell reports it).
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_BROKEN_PIPE = 141


class CliError(Exception):
    """A failure to report as one line, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def _load(paths: Sequence[str]) -> Manifests:
    """Every ``-f`` file, in order, as one set of manifests (issues of all files reported)."""
    merged = Manifests()
    issues = []
    for path in paths:
        try:
            manifests = load_file(Path(path))
        except OSError as err:
            raise CliError(f"{path}: {err.strerror or err}") from err
        except ManifestError as err:
            issues.extend(err.issues)
            continue
        merged.resources.extend(manifests.resources)
        merged.secrets.update(manifests.secrets)
    if issues:
        raise ManifestError(issues)
    if not merged.resources:
        raise ManifestError([])
    return merged


def _owner(resource: ChargingAnalytics) -> str:
    return ledger.owner_id(resource.metadata.effective_namespace, resource.metadata.name)


def cmd_render(args: argparse.Namespace) -> int:
    manifests = _load(args.file)
    digester = Digester()
    for resource in manifests.resources:
        creds, _ = asyncio.run(manifests.credentials_for(resource))
        options = RenderOptions(secret_store=args.secret_store, credentials=creds, digester=digester)
        objects = render(resource.spec, options)
        print(f"-- tenant {resource.spec.tenant} ({_owner(resource)})\n")
        print(statements_text(objects))
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    resources = _load(args.file).resources
    if args.tenant is not None:
        resources = [r for r in resources if r.spec.tenant == args.tenant]
        if not resources:
            files = ", ".join(args.file)
            print(f"error: no resource with tenant {args.tenant!r} in {files}", file=sys.stderr)
            return 1
    if len(resources) > 1:
        tenants = ", ".join(r.spec.tenant for r in resources)
        message = f"{', '.join(args.file)} hold several tenants ({tenants}); choose one with --tenant"
        print(f"error: {message}", file=sys.stderr)
        return 1
    try:
        print(dashboard_json(resources[0].spec))
    except DashboardError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    manifests = _load(args.file)
    for resource in manifests.resources:
        # the read-only user's Secret is written by the operator: it is never "missing"
        found = asyncio.run(manifests.resolve(resource, generated=False))
        note = f" (Secrets not in this file: {', '.join(found.absent)})" if found.absent else ""
        if found.unusable:
            note += f" (unusable Secrets: {'; '.join(found.unusable)})"
        print(f"{_owner(resource)}: valid (tenant {resource.spec.tenant}){note}")
    return 0


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "tenant": plan.tenant,
        "hash": plan.hash,
        "destructive": plan.destructive,
        "summary": plan.summary(),
        "actions": [
            {
                "type": a.type,
                "kind": a.kind,
                "name": a.name,
                "reason": a.reason,
                "destructive": a.destructive,
                "sql": a.sql,
            }
            for a in plan.actions
        ],
        "drift": [d.describe() for d in plan.drift],
    }


def _print_plan(plan: Plan, output: str) -> None:
    if output == "json":
        print(json.dumps(_plan_json(plan), indent=2))
        return
    print(f"-- plan for tenant {plan.tenant}: {plan.summary()} (hash {plan.hash})")
    for d in plan.drift:
        print(f"-- drift: {d.describe()}")
    for a in plan.actions:
        print(f"\n-- {a.describe()}\n{a.sql};")


def _unresolved(qualified: str, objects: list[DesiredObject]) -> tuple[str, ...]:
    return next((o.unresolved for o in objects if o.qualified == qualified), ())


async def _plan_for(
    resource: ChargingAnalytics,
    manifests: Manifests,
    snapshot: CatalogSnapshot,
    store: SecretStore,
    capabilities: Capabilities,
    digester: Digester,
) -> tuple[Plan, list[str], list[DesiredObject]]:
    creds, missing = await manifests.credentials_for(resource)
    rendering = RenderOptions(
        secret_store=store, credentials=creds, capabilities=capabilities, digester=digester
    )
    objects = render(resource.spec, rendering)
    catalog = snapshot.tenant(resource.spec.tenant)
    options = PlanOptions(
        owner=_owner(resource),
        ledger_exists=snapshot.ledger_exists,
        correct_drift=resource.spec.on_drift == "Correct",
    )
    return build_plan(objects, catalog, options), missing, objects


async def _with_client(args: argparse.Namespace, apply: bool) -> int:
    from .rw.capabilities import UnsupportedRisingWaveVersion
    from .rw.client import Endpoint, RisingWaveClient

    manifests = _load(args.file)
    try:
        endpoint = Endpoint.from_dsn(args.dsn)
    except ValueError as err:
        raise CliError(f"--dsn: {err}") from err
    status = 0
    digester = Digester()
    async with RisingWaveClient(endpoint) as client:
        capabilities = await client.capabilities()
        try:
            capabilities.require_supported(endpoint.key)
        except UnsupportedRisingWaveVersion as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        for resource in manifests.resources:
            ok = await _plan_or_apply(args, client, resource, manifests, capabilities, digester, apply=apply)
            status = status if ok else 1
    return status


async def _plan_or_apply(
    args: argparse.Namespace,
    client: RisingWaveClient,
    resource: ChargingAnalytics,
    manifests: Manifests,
    capabilities: Capabilities,
    digester: Digester,
    *,
    apply: bool,
) -> bool:
    """Print one resource's plan and, for ``apply``, apply it if the rules allow (decide.py)."""
    from .apply import ApplyError, apply_plan

    snapshot = await client.snapshot()
    me, tenant = _owner(resource), resource.spec.tenant
    owner = snapshot.owners.get(tenant)
    if decide(Facts(me=me, owner=owner)) is Decision.NOT_OWNER:
        return _refused(f"tenant {tenant} on {client.endpoint.key} is owned by {owner}")
    plan, missing, objects = await _plan_for(
        resource, manifests, snapshot, args.secret_store, capabilities, digester
    )
    _print_plan(plan, args.output)
    unresolved = missing or sorted({role for a in plan.actions for role in _unresolved(a.name, objects)})
    facts = Facts(
        me=me,
        owner=owner,
        mode="Apply" if apply else "Plan",
        plan=plan,
        unresolved=unresolved,
        approved=getattr(args, "approve", None),
    )
    decision = decide(facts)
    if decision is Decision.CREDENTIALS_MISSING:
        return _refused(f"cannot apply without {', '.join(unresolved)}")
    if decision is Decision.AWAITING_APPROVAL:
        return _refused(f"the plan is destructive; re-run with --approve {plan.hash}")
    if decision is not Decision.APPLY:
        return True  # plan only, or nothing to change
    try:
        result = await apply_plan(client, plan, target=await _alerts_target(resource, manifests))
    except ApplyError as err:
        return _refused(str(err))
    print(f"-- applied {len(result.applied)} actions in {result.seconds:.1f}s")
    return True


def _refused(message: str) -> bool:
    print(f"error: {message}", file=sys.stderr)
    return False


async def _alerts_target(resource: ChargingAnalytics, manifests: Manifests) -> TargetRunner | None:
    """Clears the PostgreSQL alert table before its sink is recreated (credentials from the file)."""
    from .operator.checks import run_on_alerts_db

    creds, _ = await manifests.credentials_for(resource)
    if resource.spec.alerts.sinks.postgres is None or creds.alerts_db is None:
        return None
    return functools.partial(run_on_alerts_db, resource.spec, creds.alerts_db, 10.0, tls=creds.alerts_db_tls)


def cmd_plan(args: argparse.Namespace) -> int:
    return asyncio.run(_with_client(args, apply=False))


def cmd_apply(args: argparse.Namespace) -> int:
    return asyncio.run(_with_client(args, apply=True))


def cmd_crds(args: argparse.Namespace) -> int:
    """Print the CRD, or write it to each output (a ``.yaml``/``.yml`` file, or else a directory
    to hold CRD_FILENAME); ``--check``: exit 1 if an output differs from what would be written."""
    text = render_crd_yaml()
    if not args.outputs:
        if args.check:
            raise CliError("crds --check: name the CRD files (or directories) to check")
        sys.stdout.write(text)
        return 0
    targets = [p if p.suffix in (".yaml", ".yml") else p / CRD_FILENAME for p in map(Path, args.outputs)]
    if args.check:
        stale = [t for t in targets if not t.exists() or t.read_text(encoding="utf-8") != text]
        for t in stale:
            print(f"out of date: {t} (run `charging-analytics crds {t}`)", file=sys.stderr)
        return 1 if stale else 0
    for t in targets:
        t.parent.mkdir(parents=True, exist_ok=True)
        t.write_text(text, encoding="utf-8")
        print(f"wrote {t}")
    return 0


class _NoKubernetesClient(importlib.abc.MetaPathFinder):
    """Refuses to import the synchronous ``kubernetes`` client. The operator talks to the API
    through Kopf and its own aiohttp session; Kopf imports ``kubernetes`` whenever it is
    installed (only to recognise its model classes, which the operator never passes it), and
    the library is most of an idle operator's memory (Kopf's docs: ~60 %)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "kubernetes" or fullname.startswith("kubernetes."):
            raise ModuleNotFoundError(f"{fullname} is not used by the operator process", name=fullname)
        return None


def keep_kubernetes_client_out() -> None:
    """Make the ``kubernetes`` package unimportable in this process (the operator's)."""
    if not any(isinstance(finder, _NoKubernetesClient) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NoKubernetesClient())


def cmd_operator(args: argparse.Namespace) -> int:
    keep_kubernetes_client_out()
    from .operator.main import run

    return run(args)


def _version() -> str:
    try:
        return importlib.metadata.version("charging-analytics-operator")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _with_file(p: argparse.ArgumentParser, *, secret_store: bool = True) -> None:
    p.add_argument(
        "-f",
        "--file",
        required=True,
        action="append",
        help="YAML manifest(s), multi-document accepted; repeat -f for several files",
    )
    if secret_store:
        p.add_argument(
            "--secret-store",
            choices=["inline", "risingwave"],
            default="inline",
            help="credentials as RisingWave SECRETs (licensed) or inline (default)",
        )


def _add_offline(sub: Any) -> None:
    """The commands that read manifests and need no RisingWave: render, validate, dashboard."""
    p = sub.add_parser("render", help="print the tenant's statements in apply order")
    _with_file(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("validate", help="check manifests against the CRD's rules")
    _with_file(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("dashboard", help="print the tenant's Grafana dashboard JSON")
    _with_file(p, secret_store=False)
    p.add_argument("--tenant", help="the tenant to print when the files hold several")
    p.set_defaults(func=cmd_dashboard)


def _add_crds(sub: Any) -> None:
    p = sub.add_parser("crds", help="print or write the CRD generated from the resource model")
    p.add_argument(
        "outputs",
        nargs="*",
        metavar="OUTPUT",
        help=f"a .yaml file, or a directory to hold {CRD_FILENAME} (repeatable); none: print it",
    )
    p.add_argument("--check", action="store_true", help="exit 1 if an OUTPUT is out of date")
    p.set_defaults(func=cmd_crds)


def _add_remote(sub: Any) -> None:
    """plan and apply, against a RisingWave."""
    for name, func, text in (
        ("plan", cmd_plan, "show what apply would do"),
        ("apply", cmd_apply, "apply the plan to RisingWave"),
    ):
        p = sub.add_parser(name, help=text)
        _with_file(p)
        p.add_argument("--dsn", required=True, help="postgresql://user[:password]@host:4566/dev")
        p.add_argument("-o", "--output", choices=["text", "json"], default="text", help="plan format")
        if name == "apply":
            p.add_argument("--approve", metavar="PLAN_HASH", help="approve a destructive plan by its hash")
        p.set_defaults(func=func)


def _add_operator(sub: Any) -> None:
    p = sub.add_parser("operator", help="run the Kubernetes operator (Kopf)")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="serve every namespace")
    p.add_argument("-n", "--namespace", action="append", default=[], help="serve this namespace (repeatable)")
    p.add_argument("--standalone", action="store_true", help="no peering (single replica)")
    p.add_argument("--peering", default=None, help="peering object name (replicas > 1)")
    p.add_argument(
        "--liveness", default="http://0.0.0.0:8080/healthz", help="URL of the liveness endpoint to serve"
    )
    p.set_defaults(func=cmd_operator)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="charging-analytics", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_offline(sub)
    _add_remote(sub)
    _add_crds(sub)
    add_simulate_parser(sub)
    add_gateway_parser(sub)
    add_preview_parser(sub)
    _add_operator(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .rw.client import RisingWaveUnavailable

    if not args.debug and args.command != "operator":
        # the pool logs every failed connection attempt; the one-line error below says it once
        logging.getLogger("psycopg").setLevel(logging.CRITICAL)

    try:
        return int(args.func(args))
    except ManifestError as err:
        if not err.issues:
            print("error: no ChargingAnalytics resource in the input", file=sys.stderr)
        for issue in err.issues:
            print(f"error: {issue}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:
        # the reader went away (``| head``): stop quietly; point stdout at nothing so the
        # interpreter's final flush does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        code = EXIT_UNAVAILABLE if isinstance(err, RisingWaveUnavailable) else getattr(err, "code", 1)
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"error: {text} (--debug shows the traceback)", file=sys.stderr)
        return int(code) if isinstance(code, int) else EXIT_INVALID


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
