"""``charging-analytics simulate``: feed a topic with simulated OCPP events.

``cli.py`` calls :func:`add_simulate_parser` with its subparsers; the parser sets
``func=cmd_simulate``.  Examples::

    charging-analytics simulate --bootstrap-servers localhost:9092 --topic ocpp.acme.events \\
        --create-topic --stations 50 --rate 200 --speedup 60 --duration 600
    charging-analytics simulate --dry-run --rate 0 --speedup 0 --max-events 1000 --seed 7 \\
        --start-time 2025-03-01T00:00:00.000Z > events.jsonl
    charging-analytics simulate --gateway ws://localhost:9000 --tenant acme --stations 20 \\
        --versions 1.6,2.0.1 --password-file acme-stations.yaml --speedup 600 --duration 60

With ``--gateway`` the stations are real OCPP charge points (``charging_analytics.simulator.chargepoints``)
connected to the gateway instead of a Kafka producer; ``--rate`` then limits OCPP calls per second.
"""

from __future__ import annotations

import argparse
import os
import random
import ssl
import sys
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from ..events import parse_timestamp
from .chargepoints import OCPP_VERSIONS, FleetConfig, OcppVersion, OfflineConfig, run_fleet_sync
from .simulate import JsonLinesProducer, SimulationConfig, SimulationSummary, ensure_topic, run_simulation

DEFAULT_BOOTSTRAP = "localhost:9092"
DEFAULT_TOPIC = "ocpp.events"
COMPRESSION_CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability between 0 and 1")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _timestamp(text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _property(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def add_simulate_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``simulate`` subcommand to ``subparsers``; it dispatches to :func:`cmd_simulate`."""
    p = subparsers.add_parser(
        "simulate",
        help="produce simulated OCPP events to Kafka (or stdout with --dry-run)",
        description=(
            "Simulate a fleet of charging stations and produce its OCPP events (JSON, keyed by "
            "station_id) to a Kafka topic. Events are paced by --rate (events per real second) "
            "and --speedup (simulated seconds per real second); either may be 0 for no limit. "
            "Stops after --duration seconds, --max-events events or Ctrl-C, then flushes."
        ),
    )
    _add_kafka_options(p.add_argument_group("Kafka"))
    _add_pacing_options(p.add_argument_group("pacing and limits"))
    _add_fleet_options(p.add_argument_group("simulated fleet"))
    _add_ocpp_options(p.add_argument_group("OCPP charge points (instead of Kafka)"))
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=cmd_simulate)
    return p


def _add_kafka_options(kafka: argparse._ArgumentGroup) -> None:
    kafka.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP),
        help="host:port[,host:port] (default: $KAFKA_BOOTSTRAP_SERVERS or %(default)s)",
    )
    kafka.add_argument("--topic", default=DEFAULT_TOPIC, help="events topic (default: %(default)s)")
    kafka.add_argument(
        "--create-topic", action="store_true", help="create the topic with the admin client if it is missing"
    )
    kafka.add_argument("--partitions", type=_at_least_one, default=3, help="for --create-topic (default: 3)")
    kafka.add_argument(
        "--replication-factor", type=_at_least_one, default=1, help="for --create-topic (default: 1)"
    )
    kafka.add_argument("--compression", choices=COMPRESSION_CODECS, default="lz4", help="(default: lz4)")
    kafka.add_argument("--linger-ms", type=_count, default=20, help="producer linger.ms (default: 20)")
    kafka.add_argument(
        "-X",
        "--producer-property",
        type=_property,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra librdkafka setting, e.g. -X security.protocol=SASL_SSL (repeatable)",
    )
    kafka.add_argument("--dry-run", action="store_true", help="print JSON lines to stdout instead of Kafka")


def _add_pacing_options(pacing: argparse._ArgumentGroup) -> None:
    pacing.add_argument(
        "--rate", type=_non_negative, default=100.0, help="events per second, 0 = no limit (default: 100)"
    )
    pacing.add_argument(
        "--speedup",
        type=_non_negative,
        default=60.0,
        help="simulated seconds per real second, 0 = as fast as --rate allows (default: 60)",
    )
    pacing.add_argument("--duration", type=_non_negative, default=None, help="stop after this many seconds")
    pacing.add_argument("--max-events", type=_count, default=None, help="stop after this many events")


def _add_fleet_options(fleet: argparse._ArgumentGroup) -> None:
    fleet.add_argument(
        "--seed",
        type=int,
        default=None,
        help="RNG seed (default: random, printed so the run can be replayed)",
    )
    fleet.add_argument(
        "--start-time",
        type=_timestamp,
        default=None,
        help="simulated start, e.g. 2025-03-01T00:00:00.000Z (default: now)",
    )
    fleet.add_argument("--stations", type=_at_least_one, default=10, help="(default: 10)")
    fleet.add_argument(
        "--fault-probability",
        type=_probability,
        default=0.02,
        help="chance that a connector cycle (a session or an idle period) ends in a fault (default: 0.02)",
    )
    fleet.add_argument(
        "--stall-probability",
        type=_probability,
        default=0.02,
        help="chance that a session falls silent for longer than --stall-time (default: 0.02)",
    )
    fleet.add_argument(
        "--stall-time",
        type=_positive,
        default=600.0,
        help="simulated seconds a stall lasts at least (default: 600)",
    )
    fleet.add_argument(
        "--meter-interval",
        type=_positive,
        default=60.0,
        help="simulated seconds between MeterValues (default: 60)",
    )


def _add_ocpp_options(ocpp: argparse._ArgumentGroup) -> None:
    ocpp.add_argument(
        "--gateway",
        metavar="URL",
        help="ws://HOST:PORT or wss://HOST:PORT of the OCPP gateway: connect as charge points",
    )
    ocpp.add_argument(
        "--tenant", help="tenant of the stations (the URL is <gateway>/ocpp/<tenant>/<station>)"
    )
    ocpp.add_argument(
        "--versions",
        type=_versions,
        default=OCPP_VERSIONS,
        help="OCPP versions, assigned to stations in turn (default: 1.6,2.0.1)",
    )
    ocpp.add_argument(
        "--password-file",
        type=Path,
        help="YAML/JSON mapping station id -> password (the gateway's credentials file)",
    )
    ocpp.add_argument(
        "--password-env",
        metavar="VAR",
        help="environment variable holding one password for every station",
    )
    ocpp.add_argument(
        "--ca-file", type=Path, help="CA bundle to verify a wss:// gateway (default: system CAs)"
    )
    ocpp.add_argument(
        "--offline-per-hour",
        type=_offline_rate,
        default=0.0,
        help="chance per simulated hour that a station goes offline and queues its messages (default: 0)",
    )
    ocpp.add_argument(
        "--simulated-duration",
        type=_positive,
        default=None,
        help="simulated seconds to play; the stations then disconnect (default: until --duration)",
    )
    ocpp.add_argument(
        "--hold-open",
        action="store_true",
        help="stay connected after the simulated duration, until --duration",
    )


def _versions(text: str) -> tuple[OcppVersion, ...]:
    """``1.6,2.0.1``: the versions in the order given (stations take them in turn)."""
    chosen: list[OcppVersion] = []
    for name in (v.strip() for v in text.split(",")):
        version = next((v for v in OCPP_VERSIONS if v == name), None)
        if version is None:
            raise argparse.ArgumentTypeError(
                f"--versions takes 1.6 and/or 2.0.1, comma-separated (got {text!r})"
            )
        if version not in chosen:
            chosen.append(version)
    return tuple(chosen)


def _offline_rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be at least 0 and below 1")
    return value


def _passwords(args: argparse.Namespace) -> Mapping[str, str] | str | None:
    """Station passwords from --password-file or --password-env (never from the command line)."""
    if args.password_env:
        value = os.environ.get(args.password_env)
        if value is None:
            raise ValueError(f"--password-env: ${args.password_env} is not set")
        return value
    if args.password_file is None:
        return None
    try:
        data = yaml.safe_load(args.password_file.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"--password-file {args.password_file}: {err}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ValueError(f"--password-file {args.password_file}: must map station ids to password strings")
    return data


def _config(args: argparse.Namespace, seed: int) -> SimulationConfig:
    return SimulationConfig(
        seed=seed,
        stations=args.stations,
        start_time=args.start_time,
        meter_interval=timedelta(seconds=args.meter_interval),
        fault_probability=args.fault_probability,
        stall_probability=args.stall_probability,
        stall_time=timedelta(seconds=args.stall_time),
        max_events=args.max_events,
        duration=None if args.simulated_duration is None else timedelta(seconds=args.simulated_duration),
    )


def _run_charge_points(args: argparse.Namespace, config: SimulationConfig) -> int:
    """``simulate --gateway``: the fleet as OCPP charge points; 0 when every call was answered."""
    if not args.tenant:
        print("error: --gateway needs --tenant", file=sys.stderr)
        return 2
    if args.max_events is not None or args.dry_run or args.create_topic:
        print("error: --max-events, --dry-run and --create-topic are Kafka-mode options", file=sys.stderr)
        return 2
    try:
        passwords = _passwords(args)
        context = None
        if args.gateway.startswith("wss://"):
            context = ssl.create_default_context(cafile=str(args.ca_file) if args.ca_file else None)
        fleet = FleetConfig(
            gateway=args.gateway,
            tenant=args.tenant,
            simulation=config,
            versions=args.versions,
            passwords=passwords,
            speedup=args.speedup,
            rate_per_s=args.rate or None,
            duration_s=args.duration,
            offline=OfflineConfig(per_hour=args.offline_per_hour),
            hold_open=args.hold_open,
            ssl_context=context,
        )
    except (ValueError, OSError, ssl.SSLError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.duration is None and args.simulated_duration is None:
        print("simulate: no --duration or --simulated-duration: runs until Ctrl-C", file=sys.stderr)
    try:
        summary = run_fleet_sync(fleet)
    except KeyboardInterrupt:
        return 130
    if not args.quiet:
        print(f"simulate: {summary.describe()}", file=sys.stderr)
    return 0 if summary.ok else 1


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run the ``simulate`` subcommand; 0 when every event was delivered, 1 otherwise, 130 on Ctrl-C."""
    from confluent_kafka import KafkaException

    seed: int = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    try:
        config = _config(args, seed)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.gateway:
        if not args.quiet:
            print(f"simulate: seed {seed}, {args.stations} charge points -> {args.gateway}", file=sys.stderr)
        return _run_charge_points(args, config)
    if not args.quiet:
        print(f"simulate: seed {seed}, {args.stations} stations", file=sys.stderr)
    try:
        summary = _run_kafka(args, config, seed)
    except KafkaException as err:
        print(f"error: Kafka: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # outside the produce loop (topic creation, flush)
        return 130
    except BrokenPipeError:  # --dry-run | head
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0

    if not args.quiet:
        print(f"simulate: {summary.describe()}", file=sys.stderr)
    for sample in summary.error_samples:
        print(f"error: delivery failed: {sample}", file=sys.stderr)
    if summary.interrupted:
        return 130
    return 0 if summary.ok else 1


def _run_kafka(args: argparse.Namespace, config: SimulationConfig, seed: int) -> SimulationSummary:
    """The fleet's events to the topic (or stdout with --dry-run), the topic created first if asked."""
    extra: dict[str, Any] = dict(args.producer_property)
    if args.create_topic and not args.dry_run:
        created = ensure_topic(
            args.bootstrap_servers,
            args.topic,
            partitions=args.partitions,
            replication_factor=args.replication_factor,
            admin_config=extra,
        )
        if not args.quiet:
            state = "created" if created else "exists"
            print(f"simulate: topic {args.topic} {state}", file=sys.stderr)
    return run_simulation(
        args.bootstrap_servers,
        args.topic,
        args.rate,
        args.duration,
        seed,
        config=config,
        speedup=args.speedup,
        linger_ms=args.linger_ms,
        compression=args.compression,
        producer_config=extra,
        producer=JsonLinesProducer(sys.stdout) if args.dry_run else None,
        progress=None if args.quiet else sys.stderr,
    )

__all__ = ["add_simulate_parser", "cmd_simulate"]
