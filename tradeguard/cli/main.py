"""``tradeguard``: the one command-line entry point.

    tradeguard broker [--listen 127.0.0.1:PORT] [--kafka]
                                                     embedded broker (or Apache Kafka) in the foreground
    tradeguard topics create [--broker URL]          create every topic, idempotently
    tradeguard worker [--broker URL]                 one engine worker
    tradeguard demo                                  the whole thing on an embedded broker
    tradeguard console [--port N]                    the analyst console (web)
    tradeguard console add-user NAME --role ROLE     add an operator to its local user store
    tradeguard simulate --scenario FILE [--speed X]  produce a simulated scenario to Kafka
    tradeguard evaluate --scenario FILE --out DIR    scorecard: engine vs baselines, report
    tradeguard scorecard SCENARIO... [--seeds 707,808]   closed loop in process: one table
    tradeguard controls release TICKER               end a buy halt by hand
    tradeguard controls release-account ACCOUNT      end a step-up or freeze by hand
    tradeguard audit verify                          check the audit trail's signatures and chains
    tradeguard contract export [--out DIR]           write the JSON Schema files
    tradeguard tail TOPIC [--account A] [--ticker T] [--action X] [--from-beginning]
                                                     follow a topic, one readable line per record
    tradeguard replay --from T1 --to T2 [--policy FILE] [--out DIR] [--lead-in 1h]
                                                     recorded traffic through a policy, compared
    tradeguard replay --compare-shadow --from T1 --to T2   live decisions against the shadow's
    tradeguard warm --from-file HISTORY.jsonl | --from-kafka --days N [--force]
                                                     learn recorded history before the first worker
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from streams.schema import RecordError
from streams.topics import CONTROLS_ACCOUNTS, CONTROLS_TICKERS, STATE_SNAPSHOTS
from tradeguard.broker.embedded import EmbeddedBroker
from tradeguard.kafka.errors import BrokerError
from tradeguard.policy.config import PolicyError
from tradeguard.runtime.settings import Settings, SettingsError
from tradeguard.runtime.signals import Terminated, stop_on_signals

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(broker=getattr(args, "broker", None))


def cmd_broker(args: argparse.Namespace) -> int:
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise SettingsError(f"--listen expects HOST:PORT, got {args.listen!r}")
    if args.kafka:
        from tradeguard.broker.apache_kafka import ApacheKafkaBroker

        print("starting Apache Kafka (the first run resolves its jars from Maven Central)",
              flush=True)
        broker = ApacheKafkaBroker(host=host, port=int(port)).start()
        what = "Apache Kafka"
    else:
        broker = EmbeddedBroker(host=host, port=int(port)).start()
        what = "embedded broker"
    print(f"{what} listening on {broker.url} (pid {broker.process.pid}); "
          "Ctrl-C or SIGTERM stops it", flush=True)
    print(f"clients: export TRADEGUARD_BROKER={broker.url} "
          f"TRADEGUARD_BROKER_PROFILE={broker.profile}", flush=True)
    try:
        while broker.process.poll() is None:
            time.sleep(0.5)
        print(f"broker exited with code {broker.process.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        broker.stop()


def cmd_topics_create(args: argparse.Namespace) -> int:
    from tradeguard.kafka.admin import create_topics

    settings = _settings(args)
    for name, outcome in create_topics(settings).items():
        print(f"{name:24s} {outcome}")
    return 0


def cmd_acls_apply(args: argparse.Namespace) -> int:
    from tradeguard.kafka.acls import apply_acls

    # Credentials (a principal allowed to alter ACLs) come from TRADEGUARD_SASL_* and
    # TRADEGUARD_SSL_CAFILE like every command's: never from argv, which `ps` shows.
    settings = _settings(args)
    count = apply_acls(settings)
    print(f"{count} ACL bindings applied for the principals of streams/principals.py "
          f"(topic prefix {settings.topic_prefix!r})")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from tradeguard.kafka.admin import wait_reachable
    from agents.worker import run_worker

    settings = _settings(args)
    wait_reachable(settings)
    return run_worker(settings)


def cmd_demo(args: argparse.Namespace) -> int:
    from tradeguard.demo.run import run_demo

    return run_demo(quick=args.quick, console=args.console)


def cmd_simulate(args: argparse.Namespace) -> int:
    from tradeguard.simulator import ScenarioError, generate, load_scenario
    from tradeguard.simulator.replay import simulate

    try:
        if args.dump:  # the streams to a file instead of a broker
            session = generate(load_scenario(args.scenario))
            if args.truth:
                session.truth.write(args.truth)
            session.write_jsonl(args.dump)
            print(f"wrote {len(session.records)} records to {args.dump}")
            return 0
        from tradeguard.kafka.admin import wait_reachable

        settings = _settings(args)
        wait_reachable(settings)
        progress = lambda sent, total: print(  # noqa: E731
            f"\rsimulate: {sent}/{total} records", end="", file=sys.stderr, flush=True)
        session, counts = simulate(args.scenario, settings, args.speed, args.truth, progress)
    except ScenarioError as exc:
        print(f"tradeguard: error: {exc}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    for name, n in counts.items():
        print(f"{settings.topic(name):24s} {n}")
    if args.truth:
        print(f"ground truth: {args.truth}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tradeguard.scorecard.run import DEFAULT_SPEED, evaluate
    from tradeguard.simulator import ScenarioError

    speed = DEFAULT_SPEED if args.speed is None else args.speed or None  # 0: flat out
    try:
        if args.in_process:
            from tradeguard.scorecard.inprocess import evaluate_in_process

            if args.broker or args.speed is not None:
                raise ValueError("--in-process runs without a broker, in event time: "
                                 "--broker and --speed do not apply")
            report = evaluate_in_process(args.scenario, args.out)
        else:
            report = evaluate(args.scenario, args.out, broker_url=args.broker, speed=speed)
    except (ScenarioError, ValueError) as exc:
        print(f"tradeguard: error: {exc}", file=sys.stderr)
        return 2
    o = report["orders"]
    print(f"fraudulent orders stopped: {o['fraud_stopped']}/{o['fraudulent']}; legitimate "
          f"stopped per 10,000: {o['legit_stopped_per_10k']}; report: "
          f"{Path(args.out) / 'report.md'}")
    return 0


def cmd_scorecard(args: argparse.Namespace) -> int:
    from tradeguard.policy.config import PolicyFile
    from tradeguard.scorecard.inprocess import REPORTING_SEEDS, scorecard, scorecard_table
    from tradeguard.simulator import ScenarioError

    if args.seeds is None:
        args.seeds = ",".join(map(str, REPORTING_SEEDS))
    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    except ValueError:
        print(f"tradeguard: error: --seeds expects integers separated by commas, got "
              f"{args.seeds!r}", file=sys.stderr)
        return 2
    if not seeds or min(seeds) < 0:
        print(f"tradeguard: error: --seeds needs at least one seed >= 0, got {args.seeds!r}",
              file=sys.stderr)
        return 2
    try:
        policy = PolicyFile(args.policy).current() if args.policy else None
        rows = scorecard(args.scenario, seeds, policy)
    except ScenarioError as exc:
        print(f"tradeguard: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        import orjson

        Path(args.json).write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    print(scorecard_table(rows, definitions=args.markdown), end="")
    return 0


def cmd_controls_release(args: argparse.Namespace) -> int:
    from tradeguard.cli.security import release

    settings = _settings(args)
    record = release(settings, args.kind, args.key, reason=args.reason, operator=args.operator)
    print(f"audited, then published {record['action']} (seq {record['seq']}) for {args.key} to "
          f"{settings.topic(CONTROLS_TICKERS if args.kind == 'ticker' else CONTROLS_ACCOUNTS)}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from tradeguard.cli.security import verify_audit

    verdict = verify_audit(_settings(args))
    for problem in verdict.problems:
        print(problem)
    print(f"{verdict.records} audit records from {verdict.writers} writers: "
          f"{'chains intact, every signature valid' if verdict.ok else f'{len(verdict.problems)} problems'}")
    return 0 if verdict.ok else 1


def cmd_contract_export(args: argparse.Namespace) -> int:
    from streams.export import export

    for path in export(Path(args.out)) if args.out else export():
        print(path)
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    from tradeguard.gateway.tail import Filters, tail

    try:
        filters = Filters(args.topic, account=args.account, ticker=args.ticker,
                          action=args.action)
    except (KeyError, ValueError) as exc:
        print(f"tradeguard: error: {exc.args[0]}", file=sys.stderr)
        return 2
    return tail(_settings(args), args.topic, filters, from_beginning=args.from_beginning,
                limit=args.limit, raw=args.json)


def cmd_replay(args: argparse.Namespace) -> int:
    from tradeguard.kafka.admin import wait_reachable
    from tradeguard.policy.config import PolicyFile
    from tradeguard.replay.report import summary, write_report
    from tradeguard.replay.window import ReplayWindow, WindowError

    settings = _settings(args)
    try:
        window = ReplayWindow.parse(args.start, args.end, args.lead_in, args.settle)
    except WindowError as exc:
        print(f"tradeguard: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out or f"replay-{window.describe()['from'].replace(':', '')}")
    wait_reachable(settings)
    try:
        if args.compare_shadow:
            from tradeguard.replay.shadow import compare_shadow

            report = compare_shadow(settings, window)
        else:
            from tradeguard.replay.run import ReplayRequest, replay

            live_file = args.live_policy or settings.policy_file or None
            live = PolicyFile(live_file).current()
            policy = PolicyFile(args.policy).current() if args.policy else live
            request = ReplayRequest(window, policy, live, args.policy or live_file or "defaults",
                                    live_file or "defaults")
            report = replay(settings, request, progress=not args.quiet)
    except ValueError as exc:  # a bad policy file, topics laid out unlike the live engine's
        print(f"tradeguard: error: {exc}", file=sys.stderr)
        return 2
    write_report(report, out, plots=not args.no_plots)
    print("\n".join(summary(report)))
    print(f"report: {out / 'report.md'}")
    return 0


def cmd_warm(args: argparse.Namespace) -> int:
    from agents.warm import HistoryError, WarmError, warm
    from tradeguard.kafka.admin import wait_reachable

    settings = _settings(args)
    if args.from_kafka and args.days is None:
        print("tradeguard: error: --from-kafka needs --days N (how far back to learn)",
              file=sys.stderr)
        return 2
    if args.from_file and args.days is not None:
        print("tradeguard: error: --days applies to --from-kafka; a file is read whole",
              file=sys.stderr)
        return 2
    wait_reachable(settings)
    try:
        report = warm(settings, history_file=args.from_file, days=args.days, force=args.force)
    except (HistoryError, WarmError, ValueError) as exc:
        print(f"tradeguard: error: {exc}", file=sys.stderr)
        return 2
    for name, n in sorted(report.records.items()):
        print(f"{name:24s} {n} records learned")
    for why, n in sorted(report.skipped.items()):
        print(f"left out ({why}): {n}")
    for example in report.skipped_examples:
        print(f"  {example}")
    print(f"{report.decided} history orders decided and discarded; {report.profiles} ticker "
          f"profiles published; snapshots written for partitions "
          f"{', '.join(map(str, sorted(report.snapshots)))} of {settings.topic(STATE_SNAPSHOTS)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradeguard", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_broker(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--broker", help="Kafka URL, e.g. kafka://127.0.0.1:9092 "
                       "(default: $TRADEGUARD_BROKER or kafka://127.0.0.1:9092)")
        return p

    p = sub.add_parser("broker", help="run the embedded Kafka-compatible broker")
    p.add_argument("--listen", default="127.0.0.1:9092", help="HOST:PORT (default %(default)s)")
    p.add_argument("--kafka", action="store_true",
                   help="run Apache Kafka (KRaft, on the JDK; jars from Maven Central) instead "
                        "of the embedded Tansu")
    p.set_defaults(func=cmd_broker)

    topics = sub.add_parser("topics", help="topic administration")
    topics_sub = topics.add_subparsers(dest="action", required=True, metavar="ACTION")
    with_broker(topics_sub.add_parser("create", help="create every topic")).set_defaults(
        func=cmd_topics_create)

    acls = sub.add_parser("acls", help="access control")
    acls_sub = acls.add_subparsers(dest="action", required=True, metavar="ACTION")
    with_broker(acls_sub.add_parser(
        "apply", help="create the ACLs of streams/principals.py through the admin API "
        "(as a principal allowed to alter ACLs)")).set_defaults(func=cmd_acls_apply)

    with_broker(sub.add_parser("worker", help="run one engine worker")).set_defaults(
        func=cmd_worker)

    p = sub.add_parser("demo", help="broker + worker + a replayed takeover, then a summary")
    p.add_argument("--quick", action="store_true", help="a shorter session (for tests)")
    p.add_argument("--console", action="store_true",
                   help="serve the analyst console while the attack plays (prints its address)")
    p.set_defaults(func=cmd_demo)

    p = with_broker(sub.add_parser("simulate", help="produce a simulated scenario to Kafka"))
    p.add_argument("--scenario", required=True, help="scenario file, e.g. scenarios/short.toml")
    p.add_argument("--speed", type=float, default=None,
                   help="event-time speed-up (1 = real time); default: as fast as possible")
    p.add_argument("--truth", help="write the ground truth (JSON) to this file")
    p.add_argument("--dump", help="write the streams as JSON lines here instead of to Kafka")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("evaluate", help="score the engine and baselines on a scenario")
    p.add_argument("--scenario", required=True, help="scenario file, e.g. scenarios/short.toml")
    p.add_argument("--out", required=True, help="directory for report.json, report.md, plots")
    p.add_argument("--broker", help="Kafka URL to run on (default: an embedded broker)")
    p.add_argument("--speed", type=float, default=None,
                   help="event-time speed-up of the session (default 20; 0 = as fast as "
                        "possible, where a login and its orders may race)")
    p.add_argument("--in-process", action="store_true",
                   help="decide in process in event time, closed loop (the scenario's "
                        "[responses]), no broker: the same report, without latency")
    p.set_defaults(func=cmd_evaluate)

    # The scorecard's module loads the engine (seconds): its constants are not read here.
    p = sub.add_parser(
        "scorecard", help="scenario files at the reporting seeds, in process and closed loop: "
        "one Markdown table of the engine's figures against the baselines",
        description="Each scenario file at each seed, decided in process in event time, "
        "closed loop (customers answer step-ups, analysts label what the engine stopped: the "
        "scenario's [responses]); the engine and the baselines scored. The engine is ahead of a "
        "baseline when it is better on both fraud yen stopped and legitimate orders stopped, "
        "or, where each is better on one, when its cost is lower: fraud yen let through plus "
        "50,000 yen per legitimate order held or blocked (with no attack: fewer legitimate "
        "stops); compared with static_rules_2025 and river_anomaly (no_engine, which stops "
        "nothing, is the floor).")
    p.add_argument("scenario", nargs="+", metavar="SCENARIO", help="scenario files")
    p.add_argument("--seeds", help="comma-separated seeds (default: the reporting seeds, "
                   "REPORTING_SEEDS in tradeguard/scorecard/inprocess.py: 9535,9646; never tune "
                   "on them: the tuning seeds are each file's own seed and TUNING_SEEDS)")
    p.add_argument("--json", metavar="FILE", help="also write every run's full scorecard here")
    p.add_argument("--markdown", action="store_true",
                   help="print the definitions under the table, ready to paste into a README")
    p.add_argument("--policy", metavar="FILE", help="policy file (TOML) to score instead of "
                   "the defaults")
    p.set_defaults(func=cmd_scorecard)

    controls = sub.add_parser("controls", help="manual controls")
    controls_sub = controls.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, kind, what in (("release", "ticker", "TICKER"),
                             ("release-account", "account", "ACCOUNT")):
        p = with_broker(controls_sub.add_parser(name, help=f"release a {kind} control"))
        p.add_argument("key", metavar=what)
        p.add_argument("--reason", default="released by hand")
        p.add_argument("--operator", help="who releases (default: the login name); audited")
        p.set_defaults(func=cmd_controls_release, kind=kind)

    audit = sub.add_parser("audit", help="the operators' audit trail")
    audit_sub = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    with_broker(audit_sub.add_parser(
        "verify", help="check every audit record's signature and each writer's hash chain "
        "(exit 1 on a gap, an insertion, an alteration)")).set_defaults(func=cmd_audit_verify)

    from tradeguard.console.cli import add_console_parser

    add_console_parser(sub, with_broker)

    contract = sub.add_parser("contract", help="the wire contract")
    contract_sub = contract.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = contract_sub.add_parser("export", help="write JSON Schema files")
    p.add_argument("--out", help="directory (default: streams/jsonschema)")
    p.set_defaults(func=cmd_contract_export)

    p = with_broker(sub.add_parser("tail", help="follow a topic, pretty-printed and filtered"))
    p.add_argument("topic", metavar="TOPIC", help="registry name, e.g. decisions, "
                   "controls.tickers (the prefix comes from $TRADEGUARD_TOPIC_PREFIX)")
    p.add_argument("--account", help="only records of this account_id")
    p.add_argument("--ticker", help="only records of this ticker")
    p.add_argument("--action", help="only records with this action (allow, hold, block, "
                   "halt_buys, freeze, ...)")
    p.add_argument("--from-beginning", action="store_true",
                   help="start at the oldest record instead of the next new one")
    p.add_argument("--limit", type=int, help="stop after this many records")
    p.add_argument("--json", action="store_true", help="print each value as it is, one per line")
    p.set_defaults(func=cmd_tail)

    from tradeguard.replay.window import DEFAULT_LEAD_IN, DEFAULT_SETTLE

    p = with_broker(sub.add_parser(
        "replay", help="replay recorded traffic through a policy and compare with what was "
        "published (or compare the shadow policy's decisions with the live ones)"))
    p.add_argument("--from", dest="start", required=True, metavar="T1",
                   help="start of the range (event time): ISO-8601, e.g. "
                        "2025-04-16T09:00:00+09:00 (UTC without an offset), or epoch ms")
    p.add_argument("--to", dest="end", required=True, metavar="T2", help="end of the range "
                   "(exclusive), as --from")
    p.add_argument("--policy", metavar="FILE", help="policy to try (TOML, keys left out keep "
                   "the defaults); default: the live one")
    p.add_argument("--live-policy", metavar="FILE", help="the policy that was live, for the "
                   "fidelity check (default: $TRADEGUARD_POLICY_FILE, else the defaults)")
    p.add_argument("--out", metavar="DIR", help="report directory (default: "
                   "./replay-<from>)")
    p.add_argument("--lead-in", default=DEFAULT_LEAD_IN, metavar="DURATION", help="warm-up before "
                   "--from: 90s, 30m, 1h, 2d, or 'all' for the oldest retained record, which "
                   "reproduces the live state exactly (default %(default)s)")
    p.add_argument("--settle", default=DEFAULT_SETTLE, metavar="DURATION", help="how far past --to "
                   "each partition is read, for late records and late decisions "
                   "(default %(default)s)")
    p.add_argument("--compare-shadow", action="store_true", help="compare decisions with "
                   "decisions.shadow over the range instead (a worker with "
                   "TRADEGUARD_SHADOW_POLICY_FILE writes them)")
    p.add_argument("--no-plots", action="store_true", help="JSON and Markdown only")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=cmd_replay)

    p = with_broker(sub.add_parser(
        "warm", help="learn recorded history (logins, orders, labels, trades) into partition "
        "snapshots before the first worker starts, so no account starts unknown",
        description="Run recorded history through the decision core in event time, in "
        "process, with the workers' partition count and policy; its decisions and controls are "
        "discarded; write one snapshot per partition to state.snapshots, which the workers "
        "restore, and the tickers' latest profiles to tickers.profile. Run it before the first "
        "worker starts (README: State and restarts)."))
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-file", metavar="HISTORY.jsonl", help="JSON lines "
                        '{"topic": ..., "record": ...} as `tradeguard simulate --dump` writes '
                        "them; records already on the input topics count as covered")
    source.add_argument("--from-kafka", action="store_true", help="the input topics' records "
                        "of the last --days days (event time)")
    p.add_argument("--days", type=float, help="with --from-kafka: how many days back")
    p.add_argument("--force", action="store_true", help="replace existing snapshots (and warm "
                   "even though the workers' group has committed offsets)")
    p.set_defaults(func=cmd_warm)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    # SIGTERM (kill, systemd, Kubernetes) unwinds like Ctrl-C: every `finally` below stops
    # the brokers and workers it started. The worker's Faust loop installs its own.
    try:
        with stop_on_signals():
            return args.func(args)
    except (BrokerError, SettingsError, PolicyError, RecordError) as exc:
        print(f"tradeguard: error: {exc}", file=sys.stderr)
        return 2
    except Terminated as exc:
        return exc.exit_status
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
