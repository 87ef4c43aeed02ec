"""Event datasets: flare windows from HEK (sunpy's HEKClient) or a CSV table, every frame of each window at native
cadence through the query/fetch/clean code, then pre/flare/post sampling, labels and labelled cubes.

Modules: :mod:`.settings` (the config's ``events`` entries), :mod:`.hek` and :mod:`.table` (candidates in),
:mod:`.selection` (kept or dropped, with reasons), :mod:`.frames` (one event's frames), :mod:`.run` (job entry
points), and the sampling side (:mod:`.partition`, :mod:`.sampling`, :mod:`.labels`, :mod:`.summary`,
:mod:`.labelled_cube`, :mod:`.dataset`). Nothing is imported here, so the Snakefile's parse stays cheap.
"""
