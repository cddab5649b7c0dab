"""The one summary of a dataset, as plain lines: what ``check-data`` prints and the Data page shows.

It reads ``MedDataset.summary()`` (also stored in dataset.json and report.json): the layout recognised and why,
classes with counts per split, where the splits came from, files ignored and why, duplicates and leaks found.
"""

from __future__ import annotations

from dataclasses import dataclass

from meddistill.data.volumes import volume_lines


def describe_splits(origin: dict | str) -> str:
    """One line on where the splits came from."""
    if isinstance(origin, str):  # an npz: "file" or "val carved from train (seed S)"
        return "given by the file" if origin == "file" else origin
    given, made = origin.get("given", []), origin.get("made", [])
    text = f"{', '.join(given)} given by the dataset" if given else "none given by the dataset"
    if made:
        text += f"; {', '.join(made)} made {origin.get('method', '')} with seed {origin.get('seed')}"
    if origin.get("group_key"):
        groups = origin.get("groups", {})
        counts = ", ".join(f"{split} {n}" for split, n in groups.items())
        text += f"; patient key from the {origin['group_key']} ({counts} patients or groups)"
    return text


WARNING, NOTE = "warning", "note"  # a data check's level


@dataclass(frozen=True)
class DataCheck:
    """One finding of the duplicate and leakage checks.

    Attributes:
        kind: ``exact_within_split``, ``exact_across_splits``, ``near_across_splits``, ``patients_in_two_splits``,
            ``dropped`` or ``clean``.
        level: ``WARNING`` (the test figures may be flattered) or ``NOTE`` (for information).
        text: One sentence for people.
    """

    kind: str
    level: str
    text: str


def leakage_checks(leakage: dict) -> list[DataCheck]:
    """The duplicate and leakage findings, or one note saying none were found."""
    checks = []
    for split, found in leakage.get("exact_within_split", {}).items():
        example = " and ".join(found["examples"][0]) if found.get("examples") else ""
        text = (
            f"{found['count']} exact duplicate(s) within {split}"
            + (f", {found['conflicting_labels']} with conflicting labels" if found.get("conflicting_labels") else "")
            + (f" (e.g. {example})" if example else "")
        )
        checks.append(DataCheck("exact_within_split", WARNING, text))
    for key, kind in (("exact_across_splits", "exact"), ("near_across_splits", "near")):
        for pair, found in leakage.get(key, {}).items():
            first, second = pair.split("-")
            pair_example = found.get("examples", [None])[0]
            example = f"{first} {pair_example[0]} = {second} {pair_example[1]}" if pair_example else ""
            text = (
                f"{found['count']} {second} image(s) are {kind} duplicates of {first} images"
                + (f" (e.g. {example})" if example else "")
                + "; --drop-duplicates removes them"
            )
            checks.append(DataCheck(key, WARNING, text))
    for pair, count in leakage.get("patients_in_two_splits", {}).items():
        first, second = pair.split("-")
        text = f"{count} patient or group key(s) appear in both {first} and {second}"
        checks.append(DataCheck("patients_in_two_splits", WARNING, text))
    for split, count in leakage.get("dropped", {}).items():
        text = f"dropped {count} {split} image(s) that duplicate an earlier split (--drop-duplicates)"
        checks.append(DataCheck("dropped", NOTE, text))
    if not checks:
        text = f"no duplicates or leaks found (exact, and near: {leakage.get('near_method', '')})"
        checks.append(DataCheck("clean", NOTE, text))
    return checks


def findings_checks(provenance: dict) -> list[DataCheck]:
    """Warnings for several findings per image: a finding with no positive image in val or test (its AUC there is
    undefined and the macro AUC leaves it out)."""
    checks = []
    for split, names in (provenance.get("findings") or {}).get("absent", {}).items():
        one = len(names) == 1
        text = (
            f"{', '.join(names)} {'has' if one else 'have'} no positive image in {split}: {'its' if one else 'their'} "
            f"{split} AUC is undefined and the macro AUC on {split} leaves {'it' if one else 'them'} out"
        )
        checks.append(DataCheck("finding_absent", WARNING, text))
    return checks


def leakage_warnings(leakage: dict) -> list[str]:
    """The sentences of the checks whose level is ``WARNING``."""
    return [check.text for check in leakage_checks(leakage) if check.level == WARNING]


def leakage_lines(leakage: dict) -> list[str]:
    """Every check as a line, warnings marked ``warning:`` (what ``check-data`` prints)."""
    return [f"warning: {c.text}" if c.level == WARNING else c.text for c in leakage_checks(leakage)]


def describe(summary: dict) -> list[str]:
    """The summary as plain lines (no trailing newline)."""
    provenance = summary.get("provenance", {})
    lines = [f"layout: {provenance.get('layout') or provenance.get('kind', 'unknown')}"]
    findings = provenance.get("findings")
    if findings:
        lines.append(f"several findings per image ({findings['rule']}): {', '.join(summary['classes'])}")
        if findings.get("uncertain"):
            lines.append(f"uncertain labels (-1) read as: {findings['uncertain']}")
    else:
        lines.append(f"classes: {', '.join(summary['classes'])}")
    if summary.get("spatial_dims") == 3:
        lines += volume_lines(summary)
    else:
        lines.append(f"channels: {summary['channels']}, typical image size: {summary['image_size']} px")
    sizes = summary.get("sizes", {})
    for split, counts in summary["counts"].items():
        per_class = ", ".join(f"{c}: {n}" for c, n in zip(summary["classes"], counts))
        unit = "volumes" if summary.get("spatial_dims") == 3 else "images"
        lines.append(f"{split:<5} {sizes.get(split, sum(counts)):>7} {unit}  {per_class}")
    lines.append(f"splits: {describe_splits(provenance.get('splits', ''))}")
    copies = provenance.get("copies_within_class_dropped") or {}
    if copies:
        lines.append(
            "exact copies within a class folder counted once: "
            + ", ".join(f"{split} {n}" for split, n in copies.items())
        )
    ignored = provenance.get("ignored") or {}
    if ignored.get("count"):
        reasons = "; ".join(f"{n} {reason}" for reason, n in ignored["by_reason"].items())
        examples = ", ".join(path for path, _ in ignored["examples"][:3])
        lines.append(f"ignored {ignored['count']} file(s): {reasons} (e.g. {examples})")
    if "leakage" in provenance:
        lines += leakage_lines(provenance["leakage"])
    lines += [f"warning: {check.text}" for check in findings_checks(provenance)]
    return lines
