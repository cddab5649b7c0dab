"""``meddistill trust``: a run's calibration, operating points, referral, subgroups and leak-free figures, with the
operating point chosen again on val (another target sensitivity or specificity) without retraining."""

from __future__ import annotations

import argparse
import json

from meddistill.evaluation.trust import TrustSettings
from meddistill.pipeline.trust import reassess, refresh
from meddistill.reports.trust import trust_text
from meddistill.store.index import RunStore, open_run
from meddistill.store.report import _plain


def add_commands(commands) -> None:
    """Add ``trust`` to the sub-parsers ``commands``."""
    trust = commands.add_parser(
        "trust", help="a run's calibration, operating point, referral, subgroup and leak-free figures"
    )
    trust.add_argument("run", help="run id (or prefix) or run folder")
    target = trust.add_mutually_exclusive_group()
    target.add_argument("--youden", action="store_true", help="choose the threshold of maximal Youden's J on val")
    target.add_argument("--target-sensitivity", type=float, help="choose the threshold on val for this sensitivity")
    target.add_argument("--target-specificity", type=float, help="choose the threshold on val for this specificity")
    trust.add_argument("--positive-class", help="two classes: the class called positive (default: the run's)")
    trust.add_argument(
        "--refresh",
        action="store_true",
        help="predict val and test again from the weights and write the trust section into report.json (runs made "
        "before the val predictions were kept; uses the run's own settings)",
    )
    trust.add_argument("--json", action="store_true", help="print the trust section as JSON")
    trust.set_defaults(func=cmd_trust)


def cmd_trust(args: argparse.Namespace) -> int:
    folder = open_run(args.run, RunStore())
    if args.refresh:
        found = refresh(folder)
        print(f"Trust section of run {folder.path.name} written from its weights.")
    if args.target_sensitivity is not None:
        settings = TrustSettings("sensitivity", args.target_sensitivity, args.positive_class)
    elif args.target_specificity is not None:
        settings = TrustSettings("specificity", args.target_specificity, args.positive_class)
    elif args.youden:
        settings = TrustSettings("youden", None, args.positive_class)
    else:  # the run's own rule (its --target-sensitivity / --target-specificity), the positive class as given
        own = folder.config().trust_settings()
        settings = TrustSettings(own.rule, own.target, args.positive_class or own.positive)
    if not args.refresh or settings != folder.config().trust_settings():
        found = reassess(folder, settings)
    print(json.dumps(_plain(found), indent=2) if args.json else trust_text(found))
    return 0
