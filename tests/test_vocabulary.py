"""One vocabulary: the command line's options, the app's labels and the JSON keys use the same
words for the same things (``reidviewer.vocabulary.TERMS``)."""
from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

from reidviewer.cli import build_parser
from reidviewer.engine.recipes import TrainConfig
from reidviewer.vocabulary import TERMS


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001 - argparse keeps them here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


SUBCOMMANDS = _subparsers(build_parser())


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_command_names_a_concept_by_its_one_option(command):
    sub = SUBCOMMANDS[command]
    for action in sub._actions:  # noqa: SLF001
        term = TERMS.get(action.dest)
        if term is None or not action.option_strings:
            continue
        assert term.option in action.option_strings, (command, action.dest, action.option_strings)
        assert action.help, f"{command} {term.option} has no help"


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_command_has_a_description_and_every_option_help(command):
    sub = SUBCOMMANDS[command]
    assert sub.description, f"reidviewer {command} --help has no description"
    for action in sub._actions:  # noqa: SLF001
        if action.option_strings and action.dest not in ("help",):
            assert action.help, f"{command} {action.option_strings} has no help"


def test_training_settings_use_the_same_names_as_the_options():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for concept in ("dataset", "root", "protocol", "split", "head", "iterations", "recipe", "epochs", "minutes", "lr",
                    "eval_every", "device", "seed"):
        assert TERMS[concept].key in fields
        assert TERMS[concept].option == "--" + TERMS[concept].key.replace("_", "-")


def test_json_output_uses_the_vocabulary(synth_root, random_checkpoint, tmp_path, capsys):
    from reidviewer.cli import main

    out = tmp_path / "m.json"
    assert main(["evaluate", "--root", str(synth_root), "--checkpoint", str(random_checkpoint),
                 "--workspace", str(tmp_path / "ws"), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    for concept in ("dataset", "protocol", "split", "checkpoint", "root"):
        assert TERMS[concept].key in report
    capsys.readouterr()
    assert main(["info", "--root", str(synth_root), "--json", "--workspace", str(tmp_path / "ws")]) == 0
    info = json.loads(capsys.readouterr().out)
    for concept in ("dataset", "protocol", "root", "identities", "tracklets"):
        assert TERMS[concept].key in info
    # Splits are numbered as --split takes them.
    assert [s[TERMS["split"].key] for s in info["splits"]] == list(range(len(info["splits"])))


def test_the_training_form_labels_are_the_vocabulary(qtbot, tmp_path):
    pytest.importorskip("PySide6")
    from PySide6.QtWidgets import QFormLayout, QLabel

    from reidviewer.app.training_panel import TrainingPanel
    from reidviewer.workspace import Workspace

    panel = TrainingPanel(Workspace(tmp_path / "ws"))
    qtbot.addWidget(panel)
    form = panel.findChild(QFormLayout)
    labels = set()
    for i in range(form.rowCount()):
        item = form.itemAt(i, QFormLayout.ItemRole.LabelRole)
        if item is not None and isinstance(item.widget(), QLabel):
            labels.add(item.widget().text())
    for concept in ("dataset", "root", "recipe", "head", "epochs", "lr", "seed", "device", "eval_every"):
        assert TERMS[concept].label in labels, (concept, labels)
    assert "Reader" not in labels  # the CLI says --dataset, so the app says Dataset


def test_one_spelling_of_dataset_everywhere_a_user_reads():
    from pathlib import Path

    import reidviewer

    root = Path(reidviewer.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if "data set" in p.read_text(encoding="utf-8")]
    assert offenders == []
