"""Check an output tree against the digests its stages recorded, and arrange the rebuild of whatever differs.

What is checked (``heliocube verify ROOT``):

- **raw files**: every file a day receipt (``raw/{product}/{YYYY}/{YYYY-MM-DD}.receipt.json``) or an event's
  receipt (``events/{name}/frames/{event_id}/{product}.receipt.json``) names, the slots' chosen files and every file
  the QC gate judged, against the SHA-256 recorded when it was downloaded;
- **handoffs**: every decoded frame a QC verdict kept for the clean stage (:mod:`heliocube.handoff`), against the
  SHA-256 the receipt recorded beside the raw file's; a missing one is no mismatch (the clean stage decodes);
- **event frames**: every cleaned frame an event's frame table (``events/{name}/frames/{event_id}.csv``) lists as
  ``ok``, its file against the table's ``sha256`` (:mod:`heliocube.events.frames`), and every frame the labelled
  cubes of an event dataset hold (``events/{name}/dataset/events.h5`` and ``per_event/*.h5``), its file against the
  cube's ``/provenance/sha256`` (:mod:`heliocube.events.labelled_cube`): a dataset built from an older frame than
  its table names differs here;
- **event dataset rows**: every row of those cubes whose frame is intact, against that frame's pixels;
- **cleaned frames**: every frame a month index (``frames/{variant}/{product}/{YYYY-MM}.index.csv``) lists, its
  file and HDU, against the ``frame_sha256`` the clean stage recorded (:func:`heliocube.clean.frame_digest`);
- **cubes**: every row of the per-year cubes (``cubes/{variant}/{product}/{YYYY}.h5``) and seeded cubes against the
  ``frames/frame_sha256`` it carries; every present row of a synced file's products that are not running
  differences likewise. Masters hold no pixels of their own (virtual datasets over the years' cubes).

A file that does not open (a truncated HDF5 or FITS file, a receipt that is not JSON) or a row that does not read
(a damaged chunk) is a mismatch like a changed one, named with what was found, and repaired the same way.

The repair (:func:`arrange_rebuild`) downloads nothing and rewrites nothing itself: it removes workflow outputs so
that Snakemake rebuilds the mismatched file and everything built from it, and the next run of the workflow does the
work with its own jobs, logs and ledgers. Snakemake reruns a job whose output is missing only when that output is a
target of the run or is needed by a job that runs anyway (a missing intermediate file is otherwise left missing),
so what is removed is, or leads to, a target of ``rule all``:

- a raw file: the slot table of each month whose receipts name it (a target): the fetch job reruns, finds the
  file changed, notes ``cache_mismatch`` in its ledger, downloads it again, and everything downstream follows; for
  each event whose receipt names it, what an event frame's repair removes;
- an event frame: the event's frame table and its dataset's ``labels.csv`` (a target, whose job needs the table
  again): the event's job fetches (a changed raw file again), cleans and records every frame of its window anew;
- a frame whose digest only an event dataset's cube recorded, or a row of such a cube: the dataset's
  ``labels.csv`` (a target; the dataset's job writes every cube of the dataset again);
- a handoff: the handoff file itself (the clean stage then decodes the raw file; the next fetch run makes it again);
- a frame: its month's frame index (its clean job writes the month's clean ledger, a target);
- a row of a per-year cube: that cube and the product's master (a target, which needs the year again);
- a row of a seeded cube or a synced file: that file (a target).
"""


from .mismatch import READABLE, Mismatch
from .tree import Verification, arrange_rebuild, verify_tree

__all__ = ["READABLE", "Mismatch", "Verification", "arrange_rebuild", "verify_tree"]
