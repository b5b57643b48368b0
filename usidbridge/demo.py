"""The main job on the bundled fixtures: convert, validate, preview, export to every format, round-trip.

`run(fixtures, out)` does it for every file in `fixtures/` (each made by its peer library, see
fixtures/make_fixtures.py) and returns the tables to print and whether everything held.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from . import api, registry
from .errors import UsidBridgeError
from .preview import preview
from .roundtrip import FEATURES, FidelityReport, roundtrip
from .rules import validate

STATUS_ORDER = ("lost", "refused", "encoded", "kept")
STATUS_STYLE = {"kept": "green", "encoded": "cyan", "refused": "yellow", "lost": "red"}


@dataclass
class DemoResult:
    conversions: Table
    fidelity: Table
    failures: list[str] = field(default_factory=list)


def fidelity_table(reports: list, title: str, features: tuple[str, ...]) -> Table:
    """Formats × features: kept, encoded, refused, lost (a loss the profile does not declare is marked !)."""
    table = Table(title=escape(title), title_justify="left")
    for column in ("dataset", "format", *features, "note"):
        table.add_column(column, overflow="fold" if column == "note" else "ellipsis")
    for report in reports:
        refused = {result.detail for result in report.features.values() if result.status == "refused"}
        losses = report.undeclared_losses()
        note = next(iter(refused), "") or "; ".join(f"{name}: {detail}" for name, detail in losses.items())
        cells = []
        for feature in features:
            result = report.features.get(feature)
            if result is None:
                cells.append("")
                continue
            mark = "" if result.declared else " !"
            cells.append(f"[{STATUS_STYLE[result.status]}]{result.status}{mark}[/]")
        table.add_row(escape(report.dataset), report.format, *cells, escape(note))
    return table


def fidelity_summary(reports: list[FidelityReport]) -> Table:
    """Formats × features over every dataset: how often each was kept, encoded, refused, lost (! = undeclared)."""
    formats = sorted({report.format for report in reports})
    datasets = len(reports) // max(1, len(formats))
    table = Table(title=f"fidelity of {datasets} dataset(s) in {len(formats)} formats: how often each feature was kept, encoded, refused or lost", title_justify="left")
    table.add_column("format")
    for feature in FEATURES:
        table.add_column(feature)
    for format_name in formats:
        row = [format_name]
        for feature in FEATURES:
            results = [report.features[feature] for report in reports if report.format == format_name and feature in report.features]
            counts = Counter(result.status for result in results)
            bugs = sum(not result.declared for result in results)
            cell = " ".join(f"[{STATUS_STYLE[status]}]{status} {counts[status]}[/]" for status in STATUS_ORDER if counts[status])
            row.append(cell + (f" [bold red]! {bugs}[/]" if bugs else ""))
        table.add_row(*row)
    return table


def run(fixtures: Path, out: Path) -> DemoResult:
    inputs = sorted(path for path in fixtures.iterdir() if path.is_file() and path.suffix not in (".py", ".md"))
    if not inputs:
        raise UsidBridgeError("no input files in the fixtures folder", fixtures)
    out.mkdir(parents=True, exist_ok=True)
    conversions = Table(title=escape(f"usidbridge demo: {len(inputs)} fixture(s) → h5USID, previews and exports in {out}"), title_justify="left")
    for column in ("input", "format", "datasets", "h5USID", "USID rules", "preview"):
        conversions.add_column(column)
    result = DemoResult(conversions, Table())
    reports: list[FidelityReport] = []
    for path in inputs:
        try:
            format = registry.detect(path)
            datasets = api.read(path, format.name, lazy=True)
            target = api.write(datasets, out / f"{path.stem}.h5", "h5usid", overwrite=True)
            report = validate(target)
            verdict = f"[green]compliant[/], {len(report.warnings)} warning(s)" if report.ok else f"[red]{len(report.errors)} error(s)[/]"
            if not report.ok:
                result.failures.append(f"{target}: not USID-compliant")
            picture = preview(api.read(target, lazy=True), out / f"{path.stem}.png")
            reports += roundtrip(target, keep_in=out / "exports" / path.stem)
            conversions.add_row(escape(path.name), format.name, str(len(datasets)), escape(target.name), verdict, escape(picture.name))
        except UsidBridgeError as error:
            result.failures.append(str(error))
            conversions.add_row(escape(path.name), "?", "", "", f"[red]{escape(error.message)}[/]", "")
    result.failures += [f"{report.dataset} via {report.format}: undeclared loss of {report.undeclared_losses()}" for report in reports if not report.ok]
    result.fidelity = fidelity_summary(reports)
    return result
