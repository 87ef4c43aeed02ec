# Event datasets (README "Event datasets"): events from HEK or a CSV -> kept events -> every frame of each event's
# window at native cadence -> sampled, labelled pre/flare/post frames.
#
# How many events a dataset has is known only once HEK (or the CSV) has answered, so the selection is a checkpoint:
# Snakemake re-evaluates the DAG once per event dataset after it and plans one events_frames job per kept event (a
# cluster spreads them). One checkpoint per dataset costs one re-evaluation, not the per-day checkpoints the design
# notes warn about.


checkpoint events_select:
    """Candidate events of one dataset from HEK (sunpy's HEKClient) or its CSV, each kept or dropped with a reason."""
    input:
        get_event_csv,
    output:
        candidates=f"{ROOT}/events/{{name}}/candidates.csv",
        events=f"{ROOT}/events/{{name}}/events.csv",
    params:
        spec=get_event_spec,
    resources:
        runtime=30,
    retries: 2
    log:
        f"{ROOT}/logs/events_select/{{name}}.log",
    benchmark:
        f"{ROOT}/benchmarks/events_select/{{name}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/events_select.py"


rule events_frames:
    """Every frame of one event's window of the dataset's channels at native cadence: one JSOC record set per
    window, fetched (QC, ledger) into the shared raw cache and cleaned; the frame table accounts for each one."""
    input:
        events=get_events_table,
    output:
        frames=f"{ROOT}/events/{{name}}/frames/{{event_id}}.csv",
    params:
        event=get_event_row,
        frames=get_event_frames_params,
    resources:
        jsoc_connections=get_event_jsoc_connections,
        runtime=240,
        mem_mb=2000,
    retries: 2
    log:
        f"{ROOT}/logs/events_frames/{{name}}/{{event_id}}.log",
    benchmark:
        f"{ROOT}/benchmarks/events_frames/{{name}}/{{event_id}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/events_frames.py"


rule events_dataset:
    """Per-minute stratified, seeded sampling of every event's frames: labels, sampling logs, summary, accounting
    and labelled HDF5 cubes (heliocube.events.dataset)."""
    input:
        events=f"{ROOT}/events/{{name}}/events.csv",
        frames=get_event_frame_tables,
    output:
        labels=f"{ROOT}/events/{{name}}/dataset/labels.csv",
        labels_tsv=f"{ROOT}/events/{{name}}/dataset/labels.tsv",
        summary=f"{ROOT}/events/{{name}}/dataset/summary.csv",
        summary_md=f"{ROOT}/events/{{name}}/dataset/summary.md",
        accounting=f"{ROOT}/events/{{name}}/dataset/accounting.csv",
        cube=f"{ROOT}/events/{{name}}/dataset/events.h5",
        per_event=directory(f"{ROOT}/events/{{name}}/dataset/per_event"),
        sampling=directory(f"{ROOT}/events/{{name}}/dataset/sampling"),
    params:
        settings=get_event_sampling,
    resources:
        runtime=60,
        mem_mb=4000,
    log:
        f"{ROOT}/logs/events_dataset/{{name}}.log",
    benchmark:
        f"{ROOT}/benchmarks/events_dataset/{{name}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/events_dataset.py"
