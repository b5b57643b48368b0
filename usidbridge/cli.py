"""The `usidbridge` command: convert, validate, info, formats, demo.

Exit codes: 0 success (compliant), 1 not compliant or some work failed, 2 unreadable input or
bad usage. Errors are one line naming the file and the problem; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.resources
import importlib.util
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__, api, progress, registry
from .errors import UsidBridgeError
from .hdf import has_hdf5_signature
from .isolation import DEFAULT_TIMEOUT, isolated
from .model import Dataset, Dimension
from .rules import Report, validate

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

FIXTURES = Path(str(importlib.resources.files("usidbridge.fixtures")))  # shipped as package data: the demo runs from any install
TREE_LIMIT = 200
FEATURES = {"preview": ("matplotlib", "preview"), "batch on a dask scheduler": ("distributed", "batch"), "dask arrays": ("dask", "batch"), "sidpy bridge": ("sidpy", "sidpy")}  # feature: (library, extra)


@functools.cache
def stdout_console() -> Console:
    """The standard output's rich console, made on first use: importing rich costs a fresh process
    30 ms that ``convert`` does not need. No wrapping of tables in logs and pipes."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)


@functools.cache
def stderr_console() -> Console:
    """The standard error's rich console, made on first use."""
    from rich.console import Console

    return Console(stderr=True)


def escape(text: str) -> str:
    """`text` with rich's markup escaped: data (names, units, paths) printed as it is."""
    from rich.markup import escape as escape_markup

    return escape_markup(text)


class _Commands(click.Group):
    """Turns every expected error into one line and exit code 2 (a traceback only with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except UsidBridgeError as error:
            if ctx.params.get("debug"):
                raise
            stderr_console().print(f"usidbridge: error: {error}", markup=False, highlight=False, soft_wrap=True)
            ctx.exit(2)
        except ModuleNotFoundError as error:  # an optional library a command needs is not installed
            if ctx.params.get("debug") or not error.name:
                raise
            module = error.name.split(".")[0]
            stderr_console().print(f"usidbridge: error: this needs the package {module!r}, which is not installed: pip install 'usidbridge[{_extra_for(module)}]'", markup=False, highlight=False, soft_wrap=True)
            ctx.exit(2)
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            stderr_console().print(
                f"usidbridge: unexpected {type(error).__name__}: {error} (rerun with --debug for the traceback)",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            ctx.exit(2)


def _extra_for(module: str) -> str:
    """The extra that installs `module`: a feature's (matplotlib: preview), a format's (xarray:
    netcdf), else ``all``."""
    for library, extra in FEATURES.values():
        if library == module:
            return extra
    for format in registry.formats():
        if format.dependency and format.dependency.split(".")[0] == module:
            return format.extra or format.name
    return "all"


@click.group(cls=_Commands)
@click.option("--debug", is_flag=True, help="Show the full traceback of errors (also accepted after the subcommand).")
@click.option("-v", "--verbose", is_flag=True, help="Say which reader and writer were chosen, and why.")
@click.version_option(__version__, prog_name="usidbridge")
def cli(debug: bool, verbose: bool) -> None:
    """Move spectroscopy and imaging data between USID/h5USID and other formats, and check USID files."""
    warnings.showwarning = _show_warning
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("usidbridge: %(message)s"))
        logger = logging.getLogger("usidbridge")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        return
    # What the libraries read through say (HyperSpy's log lines in colour, their warnings) is theirs,
    # not ours: shown with -v only. Our own warnings stay.
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"usidbridge(\.|$)")


@functools.cache
def _our_folders() -> tuple[Path, ...]:
    """Where usidbridge's modules live (the converters may sit apart from the hub in a development install)."""
    converters = importlib.util.find_spec("usidbridge.converters")
    return (Path(__file__).resolve().parent, *(Path(folder).resolve() for folder in (converters.submodule_search_locations or []) if converters))


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: str | None = None) -> None:
    """A warning as one line: ours as ``usidbridge: warning: ...``, a library's (with -v) with its category and place."""
    ours = any(Path(filename).resolve().is_relative_to(folder) for folder in _our_folders())
    text = f"usidbridge: warning: {message}" if ours else f"usidbridge: {category.__name__} from {filename}:{lineno}: {message}"
    stderr_console().print(text, markup=False, highlight=False, soft_wrap=True)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@cli.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--from", "from_", metavar="F", help="Input format (default: detected from the content).")
@click.option("--to", metavar="F", help="Output format (default: from the extension of TARGET).")
@click.option("--dataset", metavar="PATH", help="Convert only the dataset with this name or internal path.")
@click.option("--lazy/--eager", default=True, show_default=True, help="Stream the data instead of reading it into memory.")
@click.option("--compression", type=click.Choice(["gzip", "lzf", "none"]), help="HDF5 compression of the Main data.")
@click.option("--overwrite", is_flag=True, help="Replace TARGET if it exists.")
@click.option("-r", "--read-option", "read_options", multiple=True, metavar="KEY=VALUE", help="Reader option, e.g. frames=position or series=true.")
@click.option("-w", "--write-option", "write_options", multiple=True, metavar="KEY=VALUE", help="Writer option of the output format.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--isolate/--no-isolate", default=None, help="--isolate: the whole conversion in a child process. Default: an HDF5 file's structure is walked in a child first, so a crash or hang in libhdf5 becomes an error, and a file decoded by compiled code that trusts its bytes (a Bruker .bcf) is read in a child. --no-isolate: none of this.")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True, help="With --isolate: seconds without progress before the reading is stopped.")
def convert(
    source: Path,
    target: Path,
    from_: str | None,
    to: str | None,
    dataset: str | None,
    lazy: bool,
    compression: str | None,
    overwrite: bool,
    read_options: tuple[str, ...],
    write_options: tuple[str, ...],
    quiet: bool,
    isolate: bool | None,
    timeout: float,
) -> None:
    """Convert SOURCE to TARGET (reader → USID Dataset → writer)."""
    writer_options = _options(write_options)
    if compression:
        writer_options["compression"] = compression
    arguments = {"to": to, "from_": from_, "dataset": dataset, "lazy": lazy, "overwrite": overwrite, "isolate": isolate is not False, "read_options": _options(read_options), **writer_options}
    with _progress_bar(f"converting {source.name}", quiet) as bar:
        with progress.reporting(lambda done, total: bar(done, total)):
            if isolate:
                written = isolated(api.convert, source, target, path=source, timeout=timeout, **arguments)
            else:
                written = api.convert(source, target, **arguments)
    click.echo(f"wrote {written}")


def _may_be_terminal() -> bool:
    """False when rich would surely find no terminal (standard output a file or pipe, and no
    FORCE_TERMINAL or TTY_COMPATIBLE asking for one): a conversion in a script or a batch job then
    does not import rich (15 ms of a fresh process)."""
    return sys.stdout.isatty() or bool(os.environ.get("FORCE_TERMINAL") or os.environ.get("TTY_COMPATIBLE"))


@contextlib.contextmanager
def _progress_bar(description: str, quiet: bool, unit: str = "") -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on a terminal (unless `quiet`), with the rate in `unit`s per second when
    given, and the estimated time left; elsewhere a callback that does nothing."""
    if quiet or not _may_be_terminal() or not stdout_console().is_terminal:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, Progress, ProgressColumn, TaskProgressColumn, TimeRemainingColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:.1f} {unit}/s" if task.speed else "")

    rate = [RateColumn()] if unit else []
    with Progress("[progress.description]{task.description}", BarColumn(), TaskProgressColumn(), *rate, TimeRemainingColumn(), console=stdout_console(), transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE pairs as options; true/false, numbers and JSON values are parsed, anything else stays text."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        if not separator or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return options


def _report_table(report: Report) -> Table:
    verdict = "[green]USID-compliant[/]" if report.ok else "[red]NOT USID-compliant[/]"
    from rich.table import Table

    table = Table(title=f"{escape(report.file)}: {verdict}, {len(report.main_datasets)} Main dataset(s)", title_justify="left")
    for column in ("rule", "severity", "path", "message"):
        table.add_column(column, overflow="fold")
    colours = {"error": "red", "warning": "yellow", "info": "cyan"}
    for finding in report.findings:
        table.add_row(finding.rule, f"[{colours[finding.severity]}]{finding.severity}[/]", escape(finding.path), escape(finding.message))
    return table


@cli.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
@click.option("--strict", is_flag=True, help="Count warnings as failures too.")
@click.option("--isolate/--no-isolate", default=True, show_default=True, help="Read each file in a child process, so a crash or hang in the HDF5 library is reported, not suffered.")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True, help="Seconds a file may take (with --isolate).")
def validate_command(files: tuple[Path, ...], as_json: bool, strict: bool, isolate: bool, timeout: float) -> None:
    """Check FILES against the USID rules: exit 0 compliant, 1 not compliant, 2 unreadable."""
    results, status = [], 0
    for path in files:
        try:
            report = isolated(validate, path, path=path, timeout=timeout) if isolate else validate(path)
        except UsidBridgeError as error:
            results.append({"file": str(path), "error": error.message})
            if not as_json:
                stderr_console().print(f"usidbridge: error: {error}", markup=False, highlight=False, soft_wrap=True)
            status = 2
            continue
        passed = report.ok_strictly() if strict else report.ok
        status = max(status, 0 if passed else 1)
        results.append(report.to_dict())
        if not as_json:
            if report.findings:
                stdout_console().print(_report_table(report))
            else:
                stdout_console().print(f"{escape(report.file)}: [green]USID-compliant[/], {len(report.main_datasets)} Main dataset(s), no findings")
    if as_json:
        _print_json(results[0] if len(results) == 1 else results)
    sys.exit(status)


def _dim_dict(dimension: Dimension) -> dict[str, Any]:
    values = dimension.values
    return {
        "name": dimension.name,
        "units": dimension.units,
        "size": dimension.size,
        "first": float(values[0]),
        "last": float(values[-1]),
        "uniform": dimension.is_uniform,
        "step": dimension.scale if dimension.is_uniform else None,
    }


def _dataset_dict(dataset: Dataset) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": dataset.name,
        "source": dataset.source,
        "quantity": dataset.quantity,
        "units": dataset.units,
        "dtype": str(dataset.dtype),
        "shape": list(dataset.shape),
        "grid": dataset.is_grid,
    }
    for side, ancillary in (("position", dataset.pos), ("spectroscopic", dataset.spec)):
        if ancillary.is_grid:
            entry[side] = [_dim_dict(dim) for dim in ancillary.dims]
        else:
            entry[side] = [{"name": label, "units": unit, "non_grid_rows": ancillary.size} for label, unit in zip(ancillary.labels, ancillary.units)]
    return entry


METADATA_GROUPS = frozenset({"Metadata", "metadata", "original_metadata", "usidbridge_metadata"})  # USID's, HyperSpy's and our NeXus collection


def _hdf5_tree(path: Path, convertible: set[str], metadata: bool = False) -> list[str]:
    """Up to TREE_LIMIT lines describing the groups and datasets of an HDF5 file (whole paths), then "… N more".

    Datasets in `convertible` (HDF5 paths) are marked: they can be given to ``--dataset``. The
    insides of metadata groups are counted, not listed, unless `metadata`.
    """
    import h5py

    lines: list[str] = []
    count = 0
    folded: dict[str, int] = {}

    def visit(name: str, obj: Any) -> None:
        nonlocal count
        parts = name.split("/")
        inside = next((index for index, part in enumerate(parts[:-1]) if part in METADATA_GROUPS), None)
        if inside is not None and not metadata:
            group = "/".join(parts[: inside + 1])
            folded[group] = folded.get(group, 0) + 1
            return
        count += 1
        if len(lines) >= TREE_LIMIT:
            return
        if isinstance(obj, h5py.Dataset):
            mark = "  ← convertible" if f"/{name}" in convertible else ""
            lines.append(f"/{name}  {obj.shape} {obj.dtype}{mark}")
        else:
            lines.append(f"/{name}/")

    with h5py.File(path, "r") as file:
        file.visititems(visit)
    lines = [f"{line}  ({folded[line.strip('/')]} items: --metadata lists them)" if line.strip("/") in folded else line for line in lines]
    if count > len(lines):
        lines.append(f"… {count - len(lines)} more")
    return lines


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
@click.option("--metadata", is_flag=True, help="List the insides of metadata groups in the HDF5 tree too.")
def info(file: Path, as_json: bool, metadata: bool) -> None:
    """Describe FILE: its format, every Main dataset with its dims, then its HDF5 tree."""
    format = registry.detect(file)
    datasets = api.read(file, format.name, lazy=True)
    with open(file, "rb") as handle:
        tree = _hdf5_tree(file, {api.internal_path(dataset) for dataset in datasets}, metadata) if has_hdf5_signature(handle.read(2056)) else []
    if as_json:
        _print_json({"file": str(file), "format": format.name, "tree": tree, "datasets": [_dataset_dict(d) for d in datasets]})
        return
    from rich.table import Table
    from rich.tree import Tree

    stdout_console().print(f"[bold]{escape(str(file))}[/]  format: {format.name}, {len(datasets)} dataset(s)")
    for dataset in datasets:
        entry = _dataset_dict(dataset)
        units = f" ({entry['units']})" if entry["units"] else ""
        table = Table(title=escape(f"{entry['source']}: {entry['quantity']}{units}, {entry['dtype']}, shape {tuple(entry['shape'])}"), title_justify="left")
        for column in ("side", "dim", "units", "size", "first", "last", "step"):
            table.add_column(column)
        for side in ("position", "spectroscopic"):
            for dim in entry[side]:
                if "non_grid_rows" in dim:
                    table.add_row(side, escape(dim["name"]), escape(dim["units"]), f"{dim['non_grid_rows']} (non-grid)", "", "", "")
                else:
                    step = f"{dim['step']:g}" if dim["uniform"] else "non-uniform"
                    table.add_row(side, escape(dim["name"]), escape(dim["units"]), str(dim["size"]), f"{dim['first']:g}", f"{dim['last']:g}", step)
        stdout_console().print(table)
    if tree:
        root = Tree("/")
        for line in tree:
            root.add(escape(line))
        stdout_console().print(root)


@cli.command("roundtrip")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--via", default="all", show_default=True, metavar="F|all", help="The format to go through, or every writable one.")
@click.option("--json", "as_json", is_flag=True, help="Print the fidelity reports as JSON.")
def roundtrip_command(file: Path, via: str, as_json: bool) -> None:
    """Write every dataset of FILE in other formats, read it back, and say what survived (exit 1 on an undeclared loss)."""
    from .demo import fidelity_table
    from .roundtrip import FEATURES, roundtrip

    reports = roundtrip(file, via=via)
    if as_json:
        _print_json([report.to_dict() for report in reports])
    else:
        stdout_console().print(fidelity_table(reports, f"round trips of {file}", FEATURES))
    sys.exit(0 if all(report.ok for report in reports) else 1)


@cli.command("preview")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Picture to write (default: FILE's name with .png, here).")
@click.option("--overwrite", is_flag=True, help="Replace the picture if it exists.")
def preview_command(file: Path, out: Path | None, overwrite: bool) -> None:
    """Draw each Main dataset of FILE: an image, a line, or a map with its mean spectrum."""
    from .preview import preview

    written = preview(api.read(file, lazy=True), out or Path(file.name).with_suffix(".png"), overwrite=overwrite)
    click.echo(f"wrote {written}")


@cli.command("clean")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
def clean_command(folders: tuple[Path, ...]) -> None:
    """Remove the partial outputs (.NAME.PID.XXXX.partial) that killed conversions left in FOLDERS."""
    from .output import remove_stale_partials

    removed = [path for folder in folders for path in remove_stale_partials(folder)]
    for path in removed:
        click.echo(f"removed {path}")
    click.echo(f"{len(removed)} partial output(s) removed")


@cli.command("formats")
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
def formats_command(as_json: bool) -> None:
    """List the registered formats: read/write, extensions, library and whether it is installed."""
    rows = [
        {
            "name": format.name,
            "description": format.description,
            "reads": format.can_read,
            "writes": format.can_write,
            "extensions": list(format.extensions),
            "library": format.dependency,
            "installed": format.installed,
            "profile": format.profile.support(),
            "read_options": dict(format.read_options) if format.can_read else {},
            "write_options": dict(format.write_options) if format.can_write else {},
        }
        for format in registry.formats()
    ]
    if as_json:
        _print_json(rows)
        return
    from rich.table import Table

    table = Table(title="usidbridge formats", title_justify="left")
    for column in ("format", "reads", "writes", "extensions", "library", "status"):
        table.add_column(column)
    for row, format in zip(rows, registry.formats()):
        status = "[green]installed[/]" if row["installed"] else "[red]missing[/]: " + escape(f"pip install 'usidbridge[{format.extra or format.name}]'")
        table.add_row(row["name"], "yes" if row["reads"] else "no", "yes" if row["writes"] else "no", " ".join(row["extensions"]), row["library"] or "(built in)", status)
    stdout_console().print(table)
    features = Table(title="features beyond the formats", title_justify="left")
    for column in ("feature", "library", "status"):
        features.add_column(column)
    for feature, (library, extra) in FEATURES.items():
        installed = importlib.util.find_spec(library) is not None
        features.add_row(feature, library, "[green]installed[/]" if installed else "[red]missing[/]: " + escape(f"pip install 'usidbridge[{extra}]'"))
    stdout_console().print(features)
    options = Table(title="reader (-r KEY=VALUE) and writer (-w KEY=VALUE) options", title_justify="left")
    for column in ("format", "side", "option", "help"):
        options.add_column(column, overflow="fold" if column == "help" else "ellipsis")
    for row in rows:
        for side in ("read", "write"):
            for key, text in row[f"{side}_options"].items():
                options.add_row(row["name"], side, key, escape(text))
    stdout_console().print(options)


@cli.command("batch")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--to", required=True, metavar="F", help="Output format.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--workers", type=int, help="Local worker processes, each living for the whole batch (default: one per core).")
@click.option("--scheduler", metavar="ADDRESS", help="Use an existing dask scheduler, e.g. tcp://host:8786.")
@click.option("--overwrite", is_flag=True, help="Replace outputs that exist.")
@click.option("--skip-existing", is_flag=True, help="Skip inputs whose output exists (resume an interrupted batch).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Write the summary as JSON: each file's output, datasets, USID verdict (h5USID) and seconds, or its error or reason for skipping.")
@click.option("--compression", type=click.Choice(["gzip", "lzf", "none"]), help="HDF5 compression of the outputs.")
@click.option("-r", "--read-option", "read_options", multiple=True, metavar="KEY=VALUE", help="Reader option for every file, e.g. frames=position.")
@click.option("-w", "--write-option", "write_options", multiple=True, metavar="KEY=VALUE", help="Writer option of the output format.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def batch_command(inputs: tuple[Path, ...], to: str, out: Path, workers: int | None, scheduler: str | None, overwrite: bool, skip_existing: bool, report: Path | None,
                  compression: str | None, read_options: tuple[str, ...], write_options: tuple[str, ...], quiet: bool) -> None:
    """Convert many INPUTS (files, or folders with their sub-folders) in parallel; the output tree mirrors the input tree.

    Files no format reads are skipped; a file that crashes or hangs a reader fails alone. Exit 1 if any file failed.
    """
    from .batch import batch

    if workers and scheduler:
        raise click.BadParameter("give --workers or --scheduler, not both")
    if overwrite and skip_existing:
        raise click.BadParameter("give --overwrite or --skip-existing, not both")
    with _progress_bar(f"converting files to {to}", quiet, unit="files") as bar:
        writer_options = _options(write_options) | ({"compression": compression} if compression else {})
        result = batch(inputs, to, out, workers=workers, scheduler=scheduler, overwrite=overwrite, on_done=bar, skip_existing=skip_existing,
                       read_options=_options(read_options), write_options=writer_options, check=report is not None)
    for source, reason in result.skipped:
        click.echo(f"skipped {source}: {reason}")
    click.echo(f"converted {len(result.converted)} file(s) to {out}, {len(result.skipped)} skipped, {len(result.failed)} failed")
    if report:
        report.write_text(json.dumps(result.to_dict(), indent=2))
    for source, message in result.failed:
        stderr_console().print(f"usidbridge: failed: {message if source in message else f'{source}: {message}'}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(1 if result.failed else 0)


@cli.command()
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"), show_default=True, help="Folder for the outputs.")
@click.option("--fixtures", type=click.Path(exists=True, file_okay=False, path_type=Path), default=FIXTURES, show_default=True, help="Folder of input files.")
def demo(out: Path, fixtures: Path) -> None:
    """Convert every fixture to h5USID, validate, preview, export to every format and round-trip it."""
    from .demo import run

    result = run(fixtures, out)
    stdout_console().print(result.conversions)
    stdout_console().print(result.fidelity)
    for failure in result.failures:
        stderr_console().print(f"usidbridge: demo: {failure}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(1 if result.failures else 0)


GLOBAL_FLAGS = ("--debug", "-v", "--verbose")


def main(arguments: list[str] | None = None) -> None:
    """Console-script entry point. ``--debug`` and ``-v`` are accepted anywhere, since error messages
    tell users to "rerun with --debug" after the subcommand they typed."""
    arguments = list(sys.argv[1:] if arguments is None else arguments)
    flags = [argument for argument in arguments if argument in GLOBAL_FLAGS]
    rest = [argument for argument in arguments if argument not in GLOBAL_FLAGS]
    cli(args=flags + rest, prog_name="usidbridge")
