"""Run: choose models, task sources and methods; see the plan; start, join, watch and cancel jobs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st
import yaml

from precompute import jobs
from taskspace_app import auth, jobs_panel, reading, widgets
from taskspace_app.auth import current_user
from taskspace_app.validation import check_local_dir, check_model_name, check_revision, server_mode
from taskspace_core import limits, methods, tasksets
from taskspace_core.configs import config_errors, default_config

# model suites: (name, size label) x steps; revision "step{N}" as Pythia names its checkpoints
SUITES = {
    "Pythia (deduped)": {
        "models": [
            ("EleutherAI/pythia-70m-deduped", "70M"),
            ("EleutherAI/pythia-160m-deduped", "160M"),
            ("EleutherAI/pythia-410m-deduped", "410M"),
        ],
        "steps": [0, 1000, 8000, 33000, 143000],
    },
}

st.title("Run an analysis")
DEFAULT = default_config()  # configs/default.yaml: the one source of every default below
PROBE, SCORING, FTGD = (DEFAULT.get(k) or {} for k in ("probe", "scoring", "ftgd"))
if "run_models" not in st.session_state:
    st.session_state["run_models"] = [
        {"name": m["name"], "revision": m.get("revision"), "size": str(m.get("size") or ""), "step": m.get("step"),
         "step0": bool(m.get("step0", False))}
        for m in DEFAULT["models"]
    ]  # fmt: skip
models: list[dict] = st.session_state["run_models"]

st.subheader("1 · Models")
with st.expander("Add a hub model or a local folder"):
    c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
    name = c1.text_input("Name or path", placeholder="EleutherAI/pythia-70m", key="add_name")
    rev = c2.text_input("Revision (branch, tag, commit)", placeholder="step1000", key="add_rev")
    size = c3.text_input("Size", placeholder="70M", key="add_size")
    step = c4.number_input("Step", min_value=-1, value=-1, help="-1: not a checkpoint", key="add_step")
    if st.button("Add model", key="add_model"):
        err = check_model_name(name) or check_revision(rev)
        if err:
            st.error(f"Not added: {widgets.md(err)}")
        else:
            models.append(
                {
                    "name": name.strip(),
                    "revision": rev.strip() or None,
                    "size": size.strip(),
                    "step": int(step) if step >= 0 else None,
                    "step0": False,
                }
            )
with st.expander("Add a model suite"):
    suite = st.selectbox("Suite", list(SUITES), key="suite")
    spec = SUITES[suite]
    sizes = st.multiselect("Sizes", [s for _, s in spec["models"]], default=[spec["models"][0][1]], key="suite_sz")
    steps = st.multiselect("Checkpoints (steps)", spec["steps"], default=spec["steps"][:2], key="suite_st")
    if st.button("Add suite", key="add_suite"):
        for mname, msize in spec["models"]:
            if msize in sizes:
                models.extend(
                    {"name": mname, "revision": f"step{s}", "size": msize, "step": s, "step0": False} for s in steps
                )
if models:
    st.dataframe(pd.DataFrame(models), hide_index=True, width="stretch")
    if st.button("Clear models", key="clear_models"):
        models.clear()
        st.rerun()
else:
    st.info("No model chosen yet.")

st.subheader("2 · Tasks")
tasks: list[str] = []
try:
    from taskspace_core.builtin import paradigm_names

    builtin_names, builtin_err = paradigm_names(), ""
except Exception as exc:  # noqa: BLE001 - the suite may be missing or mid-edit
    builtin_names, builtin_err = [], str(exc)
default_builtin = [t for src in DEFAULT["tasks"] if src.startswith("builtin:") for t in src[8:].split(",")]
if builtin_names:
    chosen = widgets.bound_multi("Built-in paradigms", builtin_names, "builtin", default_builtin or builtin_names[:8])
    if chosen:
        tasks.append("builtin:" + ",".join(chosen))
else:
    st.caption(f"Built-in suite unavailable: {widgets.md(builtin_err[:200])}")
saved = tasksets.list_sets(reading.cache_path(), owner=auth.set_owner())  # on a server: only this user's
if saved:
    tasks += [f"set:{s}" for s in widgets.bound_multi("Your saved task sets", saved, "sets", [])]
c1, c2 = st.columns(2)
blimp_dir = c1.text_input("BLiMP folder (the *.jsonl files)", placeholder="/data/blimp", key="blimp_dir")
blimp_hub = c2.toggle("BLiMP from the hub (needs network)", key="blimp_hub")
blimp_only = st.text_input("BLiMP paradigms (comma-separated; empty = all 67)", key="blimp_only").replace(" ", "")
if blimp_dir.strip():
    err = check_local_dir(blimp_dir.strip(), "BLiMP folder")
    if err or not Path(blimp_dir.strip()).is_dir():
        st.error(widgets.md(err) if err else "That BLiMP folder does not exist.")
    else:
        tasks.append(f"blimp:{blimp_dir.strip()}" + (f":{blimp_only}" if blimp_only else ""))
if blimp_hub:
    tasks.append("hub:blimp" + (f":{blimp_only}" if blimp_only else ""))

st.subheader("3 · Methods")
choices = {m.config_name: m.label for m in methods.methods() if m.config_name}
methods_box = st.container()
methods_on = widgets.bound_multi(
    "Methods", list(choices), "methods", DEFAULT.get("methods") or [], container=methods_box
)
with st.expander("Switches", expanded=False):
    c1, c2, c3, c4 = st.columns(4)
    box = {}  # config field -> the column its widget is in (its error is shown there)
    metric = widgets.bound(
        "selectbox", "Metric", ["mean_margin", "accuracy"], "metric", PROBE.get("metric"), container=c1
    )
    transfer = widgets.bound(
        "selectbox", "Transfer", ["exact", "first_order"], "transfer", PROBE.get("transfer"), container=c2
    )
    n_tune = c3.number_input("Tune pairs", 4, 2000, int(PROBE.get("n_tune", 48)), key="n_tune")
    n_eval = c4.number_input("Eval pairs", 4, 2000, int(PROBE.get("n_eval", 48)), key="n_eval")
    box.update({"probe.metric": c1, "probe.transfer": c2, "probe.n_tune": c3, "probe.n_eval": c4, "probe": c1})
    f_steps = c1.number_input("FTGD steps", 0, 1000, int(FTGD.get("steps", 10)), key="f_steps")
    lr = c2.number_input("Learning rate", 0.0, 1e-1, float(FTGD.get("lr", 2e-4)), format="%.1e", key="f_lr")
    mask_pairs = c3.number_input("Mask pairs", 1, 2000, int(FTGD.get("mask_pairs", 32)), key="f_mask_pairs")
    batch = c4.number_input("Batch size", 1, 512, int(FTGD.get("batch_size", 8)), key="f_batch")
    box.update({"ftgd.steps": c1, "ftgd.lr": c2, "ftgd.mask_pairs": c3, "ftgd.batch_size": c4, "ftgd": c1})
    frac = c1.number_input(
        "Mask fraction k", 0.0, 1.0, float(FTGD.get("mask_fraction", 0.01)), format="%.4f", key="f_frac"
    )
    reductions = ["sum", "mean"]
    reduction = c2.selectbox(
        "Sentence score", reductions, reductions.index(SCORING.get("reduction", "sum")), key="reduction"
    )
    devices, dtypes = ["auto", "cpu", "cuda"], ["auto", "float32", "bfloat16", "float16"]
    device = c3.selectbox("Device", devices, devices.index(DEFAULT.get("device", "auto")), key="device")
    dtype = c4.selectbox("Dtype", dtypes, dtypes.index(DEFAULT.get("dtype", "auto")), key="dtype")
    box.update({"ftgd.mask_fraction": c1, "scoring": c2, "scoring.reduction": c2, "dtype": c4})
    halves = c1.toggle(
        "Tuning-noise reliability",
        bool(PROBE.get("tuning_halves", False)),
        key="tuning_halves",
        help="Also tune each task on the two halves of its tune split (2N more tunings, 2N² more transfers): "
        "the noise ceiling then counts tuning noise as well as eval noise.",
    )
    box["probe.tuning_halves"] = c1
c1, c2 = st.columns(2)
cfg_name = c1.text_input("Run name", value="my-run", key="cfg_name")
series = c2.text_input("Series (groups models in the size/checkpoint views)", value="my-series", key="cfg_series")

config = {
    "name": cfg_name.strip() or "my-run",
    "series": series.strip() or "my-series",
    "models": models,
    "tasks": tasks,
    "methods": methods_on,
    "probe": {
        "n_tune": int(n_tune),
        "n_eval": int(n_eval),
        "metric": metric,
        "transfer": transfer,
        **({"tuning_halves": True} if halves else {}),
    },
    "scoring": {"reduction": reduction},
    "ftgd": {
        **{k: v for k, v in FTGD.items() if k not in ("steps", "lr", "mask_pairs", "batch_size", "mask_fraction")},
        "steps": int(f_steps),
        "lr": float(lr),
        "mask_pairs": int(mask_pairs),
        "batch_size": int(batch),
        "mask_fraction": float(frac),
    },
    "device": device,
    "dtype": dtype,
}
# validated on every change, by the same code the runner uses; messages go next to their widget
empty = {"models": not models, "tasks": not tasks, "methods": not methods_on}  # said once, below
errors = {k: v for k, v in config_errors(config).items() if not empty.get(k.split("[")[0].split(".")[0])}
for fld, msg in errors.items():
    where = methods_box if fld == "methods" else box.get(fld) or box.get(fld.split(".")[0]) or st
    where.error(widgets.md(msg))
missing = [w for w, ok in (("a model", models), ("a task source", tasks), ("a method", methods_on)) if not ok]

st.subheader("4 · Plan and start")
with st.expander("Config (YAML)"):
    st.code(yaml.safe_dump(config, sort_keys=False), language="yaml")
refused = limits.check_request(config, server_mode()) if not missing else []  # config/header reads only
if missing:
    st.warning("Choose " + ", ".join(missing) + " first.")
elif errors:
    st.warning("Fix the switches marked above first.")
elif refused:
    st.error("Not runnable on this server: " + widgets.md("; ".join(refused)))
else:
    c1, c2 = st.columns(2)
    _, plan = jobs_panel.plan_panel(config, c1, key="plan", state="run_plan")
    may_start = auth.require_login("start work")
    if may_start and c2.button("Start", type="primary", key="start", icon=":material/play_arrow:"):
        try:
            eta = plan.get("estimated_seconds") if plan else None
            status, joined = jobs.start_job(config, user=current_user(), eta_s=eta)
            queued = f"queued ({jobs_panel.queue_text(status)})" if status.state == "queued" else "started"
            st.toast("joined the job already running or waiting for this plan" if joined else f"job {queued}")
        except (OSError, jobs.JobError) as exc:
            st.error(f"Could not start: {widgets.md(str(exc))}")

st.subheader("Jobs")
if jobs.list_jobs():
    jobs_panel.jobs_panel("run", limit=10)
else:
    st.caption("No job has run on this machine yet.")
