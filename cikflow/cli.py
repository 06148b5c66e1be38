"""``cikflow`` command line: argument parsing only; each sub-command calls one function.

Errors that bad input causes are printed as ``cikflow: <ErrorName>: <message>``
with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from cikflow import __version__
from cikflow.exceptions import CikflowError

__all__ = ["main"]

log = logging.getLogger("cikflow")


def _simulate(args: argparse.Namespace) -> int:
    from cikflow.steps import simulate_demo

    sheet = simulate_demo(
        args.out,
        n_batches=args.batches,
        days=tuple(args.days),
        n_events=args.events,
        seed=args.seed,
        preset=args.preset,
        fcs_prefix=args.fcs_prefix,
    )
    log.info(
        "wrote %d FCS files (preset %s), truth.tsv, simulation.json and samples.tsv to %s",
        len(sheet),
        args.preset,
        args.out,
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    from cikflow.check import check_inputs
    from cikflow.io.config import read_config

    base = Path(args.directory)
    config = read_config(base / args.config)
    problems = check_inputs(config, base_dir=base)
    for problem in problems:
        print(f"cikflow: {problem}", file=sys.stderr)
    errors = sum(p.fatal for p in problems)
    warnings = len(problems) - errors
    verdict = "failed" if errors else "passed"
    log.info("check %s: %d errors, %d warnings (%s)", verdict, errors, warnings, base / args.config)
    return 2 if errors else 0


def _scan(args: argparse.Namespace) -> int:
    from cikflow.io.samplesheet import DEFAULT_PATTERN, scan_folder
    from cikflow.io.tables import write_table

    sheet = scan_folder(args.folder, pattern=args.pattern or DEFAULT_PATTERN)
    if sheet.empty:  # a header-only sheet would only fail later, further from the cause
        from cikflow.exceptions import SampleSheetError

        raise SampleSheetError(
            f"{args.folder}: no readable FCS file (*.fcs, any case, searched recursively; "
            "unreadable ones are named above); no sheet written"
        )
    if args.out:
        write_table(sheet, args.out)
        log.info("drafted %d rows into %s; fill in weight, volumes and beads", len(sheet), args.out)
    else:
        sheet.to_csv(sys.stdout, sep="\t", index=False, lineterminator="\n")
    return 0


def _gate(args: argparse.Namespace) -> int:
    from cikflow.io.config import read_config
    from cikflow.steps import gate_file

    config = read_config(args.config) if args.config else {}
    status = gate_file(
        args.fcs,
        template_path=args.template,
        out_dir=args.out,
        config=config,
        events_table=args.events,
    )
    if status["status"] != "ok":
        return 2  # the error was logged, naming the file and the defect
    log.info("wrote gate table to %s", Path(args.out) / "gates.tsv")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from cikflow.io import read_fcs

    worst = 0
    for name in args.files:
        try:
            fcs = read_fcs(name, strict=args.strict)
        except CikflowError as exc:
            print(f"{name}\t{type(exc).__name__}: {exc}")
            worst = max(worst, 2)
            continue
        except Exception as exc:  # a reader bug: report it, do not hide the other files
            print(f"{name}\tunexpected {type(exc).__name__}: {exc}")
            worst = 3
            continue
        notes = (
            f"\t{len(fcs.warnings)} warning(s): {'; '.join(fcs.warnings)}" if fcs.warnings else ""
        )
        print(f"{name}\tok {fcs.n_events}x{len(fcs.pnn)}{notes}")
    return worst


def _verify(args: argparse.Namespace) -> int:
    from cikflow.verify import stale_samples, verify_results

    stale = stale_samples(args.results)
    if stale:
        print(
            f"{len(stale)} stale samples ignored (results of samples no longer in the run: "
            f"{', '.join(stale)}); remove them with `cikflow clean {args.results}`"
        )
    table = verify_results(args.results, base_dir=args.base)
    if table.empty:
        print(f"{args.results}: no provenance records found")
        return 2
    for row in table.itertuples():
        if row.status == "ok" and not args.all:
            continue
        detail = ""
        if row.status in ("changed", "inconsistent"):
            detail = f"  recorded {row.recorded_sha256}, now {row.current_sha256}"
        print(f"{row.status:<12} {row.path}{detail}")
    counts = table["status"].value_counts().to_dict()
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"{len(table)} inputs checked: {summary}")
    audit_ok = _verify_audit(args.results)
    bad = {"changed", "missing", "appeared", "inconsistent"}
    return 1 if bad & set(counts) or not audit_ok else 0


def _verify_audit(results: str) -> bool:
    """Print the audit trail's check (chain, then signatures); True when it holds."""
    from cikflow.verify import verify_audit

    check = verify_audit(results)
    if check.broken is not None:
        print(f"BROKEN       {Path(results) / 'audit.jsonl'}: {check.broken}")
        return False
    for s in check.signatures:
        r = s.record
        who = f"line {s.line}: {r.get('meaning')} by {r.get('by')} "
        who += f"({r.get('batch')}, {r.get('time')})"
        if s.changed:
            state = "superseded" if s.superseded else "BROKEN"
            print(f"{state:<12} signature {who}: no longer matches: {', '.join(s.changed)} changed")
        elif s.superseded:
            print(f"{'ok':<12} signature {who} (signed again later)")
        else:
            print(f"{'ok':<12} signature {who}")
    print(
        f"audit trail: {check.records} records, chain intact, {len(check.signatures)} signatures"
        + ("" if check.ok else ", a signature no longer matches")
    )
    return check.ok


def _sign(args: argparse.Namespace) -> int:
    from cikflow.steps.audit import sign_results

    record = sign_results(
        args.results, by=args.by, meaning=args.meaning, batch=args.batch, reason=args.reason
    )
    log.info(
        "signed %s (%s, batch %s) as %s at %s: release.tsv %s…; report updated",
        args.results,
        record["meaning"],
        record["batch"],
        record["by"],
        record["time"],
        record["release_sha256"][:12],
    )
    return 0


def _clean(args: argparse.Namespace) -> int:
    from cikflow.verify import remove_stale, stale_samples

    if args.dry_run:
        for sample in stale_samples(args.results):
            print(f"stale: {sample}")
        return 0
    removed = remove_stale(args.results)
    for path in removed:
        print(f"removed {path}")
    log.info("%d stale result paths removed from %s", len(removed), args.results)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from cikflow.evaluate import compare_to_truth
    from cikflow.io import read_table

    table = compare_to_truth(read_table(args.summary), read_table(args.truth))
    wide = table.pivot_table(index=["batch", "day"], columns="population", values="abs_error_pp")
    print("absolute error of percent_of_base vs truth (percentage points)")
    print(wide.round(2).to_string())
    print(f"mean {table['abs_error_pp'].mean():.2f} pp, max {table['abs_error_pp'].max():.2f} pp")
    return 0


def _add_audit_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``verify`` and ``sign`` sub-commands."""
    p = sub.add_parser(
        "verify",
        help="recompute recorded input hashes; name what changed; check audit.jsonl",
    )
    p.add_argument("results", help="results folder (searched for provenance records)")
    p.add_argument("--base", help="folder relative input paths start from (default: its parent)")
    p.add_argument("--all", action="store_true", help="also list unchanged inputs")
    p.set_defaults(func=_verify)

    p = sub.add_parser(
        "sign", help="sign a results folder's release: a signature record in audit.jsonl"
    )
    p.add_argument("results", help="results folder (with release.tsv and report/index.html)")
    p.add_argument("--by", required=True, help="the signer's name")
    p.add_argument(
        "--meaning", required=True, help="what the signature means: reviewed or approved"
    )
    p.add_argument("--batch", help="the batch signed for (default: all batches)")
    p.add_argument("--reason", default="", help="a comment recorded with the signature")
    p.set_defaults(func=_sign)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cikflow`` command."""
    parser = argparse.ArgumentParser(
        prog="cikflow", description="Flow-cytometry QC of CIK cell cultures."
    )
    parser.add_argument("--version", action="version", version=f"cikflow {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write a simulated CIK culture batch (FCS + truth)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--batches", type=int, default=3, help="number of cultures (default 3)")
    p.add_argument("--days", type=int, nargs="+", default=[0, 7, 14, 21], help="culture days")
    p.add_argument(
        "--events",
        type=int,
        default=None,
        help="approximate events per file (default: the preset's, 30000; hard 2000)",
    )
    p.add_argument("--seed", type=int, default=20120801, help="random seed")
    p.add_argument(
        "--preset",
        choices=["clean", "realistic", "hard"],
        default="realistic",
        help="how hard the tubes are (default realistic: calibrated to real files; clean: the "
        "original simulator, byte for byte; hard: every difficulty at the edge)",
    )
    p.add_argument("--fcs-prefix", default="", help="prefix of the sample sheet's fcs paths")
    p.set_defaults(func=_simulate)

    p = sub.add_parser(
        "check",
        help="check config, sheet, template, release spec and every file's panel (keywords only)",
    )
    p.add_argument(
        "--directory",
        default=".",
        help="workflow directory the config's paths start from (as snakemake --directory)",
    )
    p.add_argument(
        "--config", default="config/config.yaml", help="configuration, relative to --directory"
    )
    p.set_defaults(func=_check)

    p = sub.add_parser("scan", help="draft a sample sheet from a folder of FCS files")
    p.add_argument("folder", help="folder searched recursively for *.fcs")
    p.add_argument("--out", help="sample sheet to write (default: standard output)")
    p.add_argument("--pattern", help="regex with named groups batch and day, matched to file names")
    p.set_defaults(func=_scan)

    p = sub.add_parser("gate", help="gate one FCS file with a template, without Snakemake")
    p.add_argument("fcs", help="FCS file")
    p.add_argument("--template", required=True, help="YAML or GatingML 2.0 template")
    p.add_argument("--out", required=True, help="output folder (gates.tsv …)")
    p.add_argument("--config", help="config.yaml for panel aliases and compensation")
    p.add_argument(
        "--events",
        action="store_true",
        help="also write per-event membership: qc_removed, then one 0/1 column per gate "
        "(empty for events acquisition QC removed)",
    )
    p.set_defaults(func=_gate)

    p = sub.add_parser("inspect", help="read FCS files: 'ok <events>x<channels>' or the error")
    p.add_argument("files", nargs="+", help="FCS files")
    p.add_argument("--strict", action="store_true", help="refuse files that need a repair")
    p.set_defaults(func=_inspect)

    _add_audit_parsers(sub)

    p = sub.add_parser(
        "clean", help="remove results of samples no longer in the run (stale sample folders)"
    )
    p.add_argument("results", help="results folder")
    p.add_argument("--dry-run", action="store_true", help="only list the stale samples")
    p.set_defaults(func=_clean)

    p = sub.add_parser("compare", help="absolute error of a summary.tsv against a truth.tsv")
    p.add_argument("summary", help="results/summary.tsv")
    p.add_argument("truth", help="truth.tsv written by the simulator")
    p.set_defaults(func=_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``cikflow`` command; return its exit status."""
    args = build_parser().parse_args(argv)
    # our own handler on the package logger (not basicConfig), removed on return, so
    # that repeated calls in one process neither duplicate nor lose messages
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("cikflow: %(message)s"))
    package_log = logging.getLogger("cikflow")
    package_log.addHandler(handler)
    package_log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        return int(args.func(args))
    except CikflowError as exc:
        print(f"cikflow: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        # the recipe of Python's signal docs: point stdout at devnull so that the flush
        # at exit does not fail again, and exit 1 as Python does on EPIPE
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    finally:
        package_log.removeHandler(handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
