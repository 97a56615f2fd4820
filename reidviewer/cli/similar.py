"""``reidviewer similar`` and ``reidviewer export map``: the map of the whole set from the shell.

    reidviewer similar --root DATA --checkpoint FILE --tracklet person007 [--top N] [--json FILE]
    reidviewer similar --results FILE --tracklet q:12
    reidviewer similar --root DATA --checkpoint FILE --tracklet person007 --training
    reidviewer export map --results FILE --color-by camera --method pca --out map.pdf

``--tracklet`` names a query or gallery tracklet: its key, a person name (``person007``: that
person's first query tracklet, else first gallery one), ``person007/cam2`` (person and camera),
or ``q:ROW`` / ``g:ROW`` (a query or gallery row). The nearest tracklets are searched over the
whole set — queries and gallery, and with ``--training`` the split's training tracklets too
(their features extracted with the checkpoint and cached) — not only the query's gallery; each
line says whether it is the same identity (✓/✗). The camera-bias number of the whole set is
printed too.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reidviewer.cli.common import add_dataset, add_device, add_workspace, stderr_progress, workspace_of
from reidviewer.errors import UsageError
from reidviewer.vocabulary import OPTION_HELP


def register(sub: Any) -> None:
    """Add ``similar``."""
    p = sub.add_parser(
        "similar", help="the nearest tracklets to one tracklet over the whole set (query + gallery)",
        description="Find the tracklets nearest to one tracklet among every query and gallery tracklet of a split, "
                    "with distances and whether each is the same identity; also prints the camera-bias number.",
        epilog="examples:\n" + (__doc__.split("\n\n", 2)[1] if __doc__ else ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataset(p, required=False)
    add_workspace(p)
    p.add_argument("--checkpoint", metavar="FILE", default=None, help=OPTION_HELP["checkpoint"])
    p.add_argument("--results", metavar="FILE", default=None, help="a saved results file (.npz) instead")
    p.add_argument("--split", type=int, default=0, metavar="N", help=OPTION_HELP["split"])
    p.add_argument("--tracklet", metavar="ID", required=True,
                   help="key, person name, PERSON/CAMERA, q:ROW or g:ROW")
    p.add_argument("--top", type=int, default=10, help="how many neighbours (default 10)")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the answer as JSON")
    add_training_option(p)
    add_device(p)
    p.set_defaults(func=cmd_similar)


def add_training_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--training", action="store_true",
                   help="add the split's training tracklets (features extracted with the checkpoint, cached "
                        "in the workspace; needs --root and a checkpoint)")


def training_of(args: argparse.Namespace, dataset, results):
    """The split's training tracklets with features (``--training``), else None."""
    if not getattr(args, "training", False):
        return None
    if dataset is None:
        raise UsageError("--training needs the dataset: give --root DIR")
    from reidviewer.demo import default_checkpoint
    from reidviewer.engine.training_set import compute_training_set, settings_of

    checkpoints = args.checkpoint if isinstance(args.checkpoint, list) else (
        [args.checkpoint] if args.checkpoint else [])
    recorded = results.settings.get("checkpoint") if isinstance(results.settings, dict) else None
    ck = Path(checkpoints[0]) if checkpoints else (Path(recorded) if recorded else default_checkpoint())
    if not ck.is_file():
        raise UsageError(f"--training: {ck}: checkpoint file not found (give --checkpoint FILE)")
    return compute_training_set(dataset, int(results.split), ck, workspace_of(args), settings_of(results),
                                device=getattr(args, "device", "auto"),
                                progress=stderr_progress("training features"))


def load(args: argparse.Namespace):
    """``(dataset or None, results, base dataset or None)`` from ``--results`` or
    ``--root``/``--checkpoint`` (``dataset`` is the annotated view; ``base`` as read)."""
    from reidviewer.engine.results import Results

    ws = workspace_of(args)
    results_files = args.results if isinstance(args.results, list) else ([args.results] if args.results else [])
    checkpoints = args.checkpoint if isinstance(args.checkpoint, list) else (
        [args.checkpoint] if args.checkpoint else [])
    if len(results_files) + len(checkpoints) > 1:
        raise UsageError("the map draws one model: give one --checkpoint or one --results")
    dataset = base = None
    if args.root:
        from reidviewer.annotations.apply import open_annotated
        from reidviewer.data.registry import open_dataset

        base = open_dataset(args.root, args.dataset, args.protocol, ws)
        dataset, version = open_annotated(base, ws)
    if results_files:
        results = Results.load(results_files[0])
        if dataset is None and results.dataset_root and Path(results.dataset_root).is_dir():
            from reidviewer.data.registry import open_dataset

            base = dataset = open_dataset(results.dataset_root, results.dataset_name or "auto",
                                          results.protocol or None, ws)
        return dataset, results, base
    if dataset is None:
        raise UsageError("give --results FILE, or --root DIR (with --checkpoint FILE; default: the shipped one)")
    from reidviewer.demo import default_checkpoint
    from reidviewer.engine.evaluate import compute_results

    ck = Path(checkpoints[0]) if checkpoints else default_checkpoint()
    if not ck.is_file():
        raise UsageError(f"{ck}: checkpoint file not found")
    results = compute_results(dataset, args.split, ck, ws, device=args.device,
                              progress=stderr_progress(f"evaluate {ck.name}"), annotation_version=version)
    return dataset, results, base


def resolve_tracklet(text: str, ms, dataset=None) -> int:
    """The point ``--tracklet`` names (see the module docstring)."""
    from reidviewer.engine.embedding_map import MapError

    try:
        return ms.find(text)
    except MapError:
        pass
    if dataset is not None:
        tr = dataset.tracklets
        person, _, camera = text.partition("/")
        hits = [i for i, d in enumerate(ms.dataset_indices)
                if tr[int(d)].person == person and (not camera or tr[int(d)].camera == camera)]
        if hits:
            return hits[0]  # queries come first
    what = "query, gallery or training" if ms.num_training else "query or gallery"
    raise UsageError(f"--tracklet {text}: no {what} tracklet has that key, person name or "
                     "PERSON/CAMERA (or give q:ROW / g:ROW)")


def cmd_similar(args: argparse.Namespace) -> int:
    """``reidviewer similar``: print (and optionally save) the nearest tracklets."""
    from reidviewer.engine import embedding_map as em

    dataset, results, base = load(args)
    ms = em.whole_set(results, training_of(args, dataset, results))
    names = em.point_names(ms, dataset)
    a = resolve_tracklet(args.tracklet, ms, dataset)
    sim = em.find_similar(ms.features, a, args.top, ms.pids)
    bias = em.camera_bias(ms.features, ms.camids, ms.pids)

    def entry(i: int) -> dict:
        return {"key": ms.keys[i], "name": names[i], "pid": int(ms.pids[i]), "camid": int(ms.camids[i]),
                "role": ms.role(i), "query_row": int(ms.query_rows[i]), "gallery_row": int(ms.gallery_rows[i])}

    out = {
        "anchor": entry(a),
        "neighbours": [
            {**entry(int(i)), "rank": r + 1, "distance": float(d), "is_match": bool(m) if k else None}
            for r, (i, d, m, k) in enumerate(zip(sim.points, sim.distances, sim.is_match, sim.known))],
        "whole_set": len(ms),
        "camera_bias": bias.as_dict(),
    }
    what = "query, gallery and training" if ms.num_training else "query and gallery"
    print(f"nearest to {names[a]} ({ms.keys[a]}, {ms.role(a)}) among {len(ms)} {what} tracklets:")
    for n in out["neighbours"]:
        mark = "?" if n["is_match"] is None else ("✓" if n["is_match"] else "✗")
        print(f"  #{n['rank']:<3} {mark} {n['distance']:8.4f}  {n['name']:<28} {n['role']:<16} {n['key']}")
    print(bias.text())
    print(em.CAMERA_BIAS_EXPLANATION)
    if args.json:
        from reidviewer.cli.evaluate import write_json

        write_json(args.json, out)
    return 0


# ---------------------------------------------------------------------------- export map
def add_map_options(p: argparse.ArgumentParser) -> None:
    """``export map``'s own options (added to the ``export`` parser)."""
    from reidviewer.engine.embedding_map import COLOR_BY, METHODS

    p.add_argument("--color-by", default="identity", choices=COLOR_BY, help="map: what colours the points")
    p.add_argument("--method", default="pca", choices=METHODS,
                   help="map: projection (umap needs: pip install \"reidviewer[map]\")")
    p.add_argument("--seed", type=int, default=0, help="map: random seed of the projection (default 0)")
    add_training_option(p)


def cmd_export_map(args: argparse.Namespace) -> int:
    """``reidviewer export map``: the map figure, coloured as in the app."""
    from reidviewer.engine import embedding_map as em
    from reidviewer.figures.map import export_map

    dataset, results, base = load(args)
    ws = workspace_of(args)
    ms = em.whole_set(results, training_of(args, dataset, results))
    coords = em.projection(results, args.method, args.seed, ws, ms, progress=stderr_progress(args.method))
    highlight = None
    if args.queries:
        from reidviewer.figures import parse_queries

        highlight = parse_queries(args.queries, dataset, results)[0]
    name = (dataset.name if dataset is not None else results.dataset_name) or "results"
    out = Path(args.out) if args.out else ws.figures_dir / f"map-{name}-split{results.split}.pdf"
    flagged = flagged_indices(ws, ms, base) if args.color_by == "flag" else None
    path = export_map(out, results, coords, ms, dpi=args.dpi, color_by=args.color_by, dataset=dataset,
                      size=args.size, highlight_query=highlight, method=args.method, flagged=flagged)
    print(f"wrote {path}")
    return 0


def flagged_indices(ws, ms, dataset) -> set[int]:
    """Dataset indices of the map's tracklets with a flag (a frame flag or a tracklet flag) in
    the workspace's annotation store of ``dataset`` (as its reader opened it); empty when there
    is no store (none is created)."""
    if dataset is None:
        return set()
    from reidviewer.annotations.store import AnnotationError, AnnotationStore, store_filename

    name, fp = getattr(dataset, "name", ""), getattr(dataset, "fingerprint", "")
    if not fp or not (ws.annotations_dir / store_filename(name, fp)).is_file():
        return set()
    try:
        store = AnnotationStore.open(ws, fp, name)
        try:
            keys = set(store.frame_flags()) | set(store.tracklet_flags())
        finally:
            store.close()
    except AnnotationError:
        return set()
    return {int(d) for k, d in zip(ms.keys, ms.dataset_indices) if k in keys}
