"""The keyboard registry: every shortcut of the app, in one place, shown by the help dialog (? / F1)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shortcut:
    """A named action and its key sequences (Qt portable text, e.g. ``"Alt+Down"``)."""

    action: str
    keys: tuple[str, ...]
    description: str
    group: str


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("play_pause", ("Space",), "Play / pause both players", "Playback"),
    Shortcut("step_back", ("Left",), "Previous frame", "Playback"),
    Shortcut("step_forward", ("Right",), "Next frame", "Playback"),
    Shortcut("first_frame", ("Home",), "First frame", "Playback"),
    Shortcut("last_frame", ("End",), "Last frame", "Playback"),
    Shortcut("prev_query", ("PgUp",), "Previous query in the list", "Navigation"),
    Shortcut("next_query", ("PgDown",), "Next query in the list", "Navigation"),
    Shortcut("prev_iteration", ("Alt+Up",), "Highlight the previous refinement iteration (wraps around)",
             "Attention"),
    Shortcut("next_iteration", ("Alt+Down",), "Highlight the next refinement iteration (wraps around)", "Attention"),
    Shortcut("toggle_saliency", ("S",), "Show / hide the saliency overlay on both players", "Attention"),
    Shortcut("flag_occluded", ("Q",), "Flag the current probe frame as occluded", "Annotation"),
    Shortcut("flag_bad", ("O",), "Flag the current probe frame as a bad crop", "Annotation"),
    Shortcut("merge_identity", ("M",), "Merge the selected retrieval into the query's identity", "Annotation"),
    Shortcut("undo", ("Ctrl+Z",), "Undo the last annotation", "Annotation"),
    Shortcut("redo", ("Ctrl+Shift+Z",), "Redo", "Annotation"),
    Shortcut("export_figure", ("Ctrl+E",), "Export the current view as a figure", "File"),
    Shortcut("open_dataset", ("Ctrl+O",), "Open a dataset", "File"),
    Shortcut("swap_models", ("Ctrl+B",), "Compare mode: swap models A and B", "Compare"),
    # --- find similar (issue 21) ---
    Shortcut("find_similar", ("F",), "Find similar: the probe's nearest tracklets over the whole set", "Map"),
    Shortcut("find_similar_gallery", ("Shift+F",), "Find similar to the tracklet in the gallery player", "Map"),
    # --- end find similar ---
    Shortcut("quit", ("Ctrl+Q",), "Quit", "File"),
    Shortcut("show_viewer", ("Ctrl+1",), "Show the Viewer page", "View"),
    Shortcut("show_training", ("Ctrl+2",), "Show the Training page", "View"),
    Shortcut("help", ("?", "F1"), "Show this list of shortcuts", "Help"),
)

BY_ACTION = {s.action: s for s in SHORTCUTS}


def help_rows() -> list[tuple[str, str, str]]:
    """(group, keys, description) rows for the help dialog, in registry order."""
    return [(s.group, " / ".join(s.keys), s.description) for s in SHORTCUTS]
