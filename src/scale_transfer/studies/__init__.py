"""The lab: measures the package; the library never imports it.

- sample-size study (the paper's Figure B): :mod:`.study` runs it, :mod:`.study_grid` draws
  its subsamples, :mod:`.study_fits` makes one fit's table rows, :mod:`.study_tables` reads
  and summarises the table, :mod:`.study_plots` draws the figure;
- held-out validation: :mod:`.validation` runs it, :mod:`.validation_methods` fits and scores
  each method (baselines and Bayesian fits), :mod:`.validation_scores` holds the scores the
  library's self-check (:mod:`scale_transfer.selfcheck`) lacks, :mod:`.validation_plots`
  draws the figure;
- calibration on simulated data with known truth: :mod:`.calibration`;
- benchmark: :mod:`.bench` runs it, :mod:`.bench_cases` says what runs, :mod:`.bench_table`
  derives ratios, targets and the text table;
- many fits at once in JAX: :mod:`.batch`;
- the job runner shared by them (local processes, a Dask cluster, child processes):
  :mod:`.runner`.

These modules read posteriors made by the library; only the command line reaches into them.
Studies on a Dask cluster and the benchmark's memory records need the ``studies`` extra.
"""
